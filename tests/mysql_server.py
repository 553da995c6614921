"""A throwaway MySQL server for the tests: MariaDB (what Debian's `default-mysql-server` and
`mariadb-server` install), its own data directory in a temporary folder, listening on 127.0.0.1 (and a
unix socket in that folder) only, without grant tables (no passwords: nothing else can reach it) and
without binary log or flush on commit; stopped and removed at the end. Nothing here touches a system
MySQL service. The same interface as tests/postgres_server.py:

    with MySQLServer() as server:
        if server.reason:          # no binaries, no PyMySQL, the server would not start, ...: why
            ...
        url = server.fresh_database()  # mysql+pymysql://nas@127.0.0.1:PORT/nas_1
        server.stop(); server.start()  # an outage: the same data directory, the same port
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers import DATABASE, USER, ThrowawayServer, free_port, last_line

SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"])


def find_binaries() -> tuple[str, str] | None:
    """``(install_db, server)``: MariaDB's ``mariadb-install-db`` (or ``mysql_install_db``) and
    ``mariadbd`` (or ``mysqld``), from PATH or the sbin folders; ``None`` without both."""
    install = shutil.which("mariadb-install-db", path=SEARCH_PATH) or shutil.which("mysql_install_db", path=SEARCH_PATH)
    server = shutil.which("mariadbd", path=SEARCH_PATH) or shutil.which("mysqld", path=SEARCH_PATH)
    return (install, server) if install and server else None


class MySQLServer(ThrowawayServer):
    """One throwaway MariaDB server (data/, server.sock and server.log in its folder)."""

    scheme = "mysql+pymysql"

    def __init__(self) -> None:
        super().__init__()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # ---- life cycle --------------------------------------------------------------------------
    def setup(self) -> MySQLServer:
        """Find the binaries, create a fresh data directory, start the server, create the ``nas``
        database. On any failure: :attr:`reason` says why, and nothing is left behind."""
        if not self.has_driver("pymysql", "PyMySQL", "mysql"):  # SQLAlchemy's driver for mysql+pymysql:// URLs
            return self
        self._binaries = find_binaries()
        if self._binaries is None:
            self.reason = "MariaDB's mariadb-install-db and mariadbd (or mysql_install_db and mysqld) were not found (apt-get install mariadb-server-core mariadb-client-core)"
            return self
        self.root = Path(tempfile.mkdtemp(prefix="nas-mysql-"))
        atexit.register(self.close)  # a session ended some other way still stops the server
        user = ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses root unless told who to run as
        install = subprocess.run([self._binaries[0], "--no-defaults", f"--datadir={self.root / 'data'}", "--skip-test-db",
                                  "--skip-name-resolve", "--auth-root-authentication-method=normal", *user], cwd=self.root, capture_output=True, text=True,
                                 timeout=180, stdin=subprocess.DEVNULL)
        if install.returncode != 0:
            self.reason = f"{Path(self._binaries[0]).name} failed (exit {install.returncode}): {last_line(install.stderr or install.stdout)}"
            self.close()
            return self
        self.port = free_port()
        try:
            self.start()
            self.create_database(DATABASE)
        except Exception as exc:  # it would not start, or cannot be reached: say so, and leave nothing running
            self.reason = f"the MySQL server did not come up on 127.0.0.1:{self.port}: {last_line(str(exc))}"
            self.close()
        return self

    def start(self, timeout: float = 60) -> None:
        """Start the server on :attr:`port` (again, after :meth:`stop`: the same data, the same port)
        and wait until it answers."""
        assert self._binaries is not None and self.root is not None and self.port is not None
        user = ["--user=root"] if os.geteuid() == 0 else []
        command = [self._binaries[1], "--no-defaults", f"--datadir={self.root / 'data'}", f"--socket={self.root / 'server.sock'}",
                   f"--port={self.port}", "--bind-address=127.0.0.1", "--skip-grant-tables", "--skip-name-resolve", "--skip-log-bin",
                   "--innodb-flush-log-at-trx-commit=0", "--max-connections=300", f"--pid-file={self.root / 'server.pid'}",
                   f"--log-error={self.log}", *user]
        self.process = subprocess.Popen(command, cwd=self.root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connect().close()
                return
            except Exception as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    tail = self.log.read_text(errors="replace") if self.log.exists() else str(exc)
                    self.stop("immediate")
                    raise RuntimeError(f"mariadbd did not start: {last_line(tail)}") from exc
                time.sleep(0.2)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: a clean shutdown on SIGTERM; ``immediate``: SIGKILL); its data
        stays for :meth:`start`."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM if mode != "immediate" else signal.SIGKILL)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        """Stop the server if it runs and remove its folder. Safe to call twice."""
        self.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
        atexit.unregister(self.close)

    # ---- databases ---------------------------------------------------------------------------
    def connect(self, database: str | None = None):
        import pymysql

        return pymysql.connect(host="127.0.0.1", port=self.port, user=USER, database=database, connect_timeout=5, autocommit=True)

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE name``; its URL."""
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", name), name
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE `{name}`")
        finally:
            connection.close()
        return self.url_of(name)
