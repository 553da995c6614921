"""A throwaway PostgreSQL server for the tests: its own data directory in a temporary folder, listening
on 127.0.0.1 (and a unix socket in that folder) only, trust authentication, no fsync; stopped and
removed at the end. Nothing here touches a system PostgreSQL service.

    with PostgresServer() as server:
        if server.reason:          # no binaries, no psycopg2, initdb failed, ...: why it cannot run
            ...
        url = fresh_database(server)   # postgresql+psycopg2://nas@127.0.0.1:PORT/nas_1
        server.stop(); server.start()  # an outage: the same data directory, the same port

``initdb`` refuses to run as root: as root the folder is handed to the ``postgres`` user and the
server's commands run through ``runuser -u postgres --``.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.servers import DATABASE, USER, ThrowawayServer, free_port, last_line

SYSTEM_USER = "postgres"  # who runs the server when we are root


def find_binaries() -> tuple[str, str] | None:
    """``(initdb, pg_ctl)``: from PATH, else the newest /usr/lib/postgresql/*/bin; ``None`` if neither has both."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl

    def version(folder: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(folder).parent.name)) or (0,)

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        initdb, pg_ctl = os.path.join(folder, "initdb"), os.path.join(folder, "pg_ctl")
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return initdb, pg_ctl
    return None


class PostgresServer(ThrowawayServer):
    """One throwaway PostgreSQL server (data/, sock/ and server.log in its folder)."""

    scheme = "postgresql+psycopg2"

    def __init__(self) -> None:
        super().__init__()
        self.running = False
        self._prefix: list[str] = []     # runuser -u postgres -- (as root)

    # ---- where things are --------------------------------------------------------------------
    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None
        return self.root / "sock"

    # ---- life cycle --------------------------------------------------------------------------
    def setup(self) -> PostgresServer:
        """Find the binaries, initdb a fresh data directory, start the server, create the ``nas``
        database. On any failure: :attr:`reason` says why, and nothing is left behind."""
        if not self.has_driver("psycopg2", "psycopg2", "postgresql"):  # SQLAlchemy's driver for postgresql+psycopg2:// URLs
            return self
        self._binaries = find_binaries()
        if self._binaries is None:
            self.reason = "PostgreSQL's initdb and pg_ctl were found neither on PATH nor in /usr/lib/postgresql/*/bin"
            return self
        if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
            try:
                import pwd

                owner = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                self.reason = f"running as root, and there is no {SYSTEM_USER!r} user to run PostgreSQL as (initdb refuses root)"
                return self
            runuser = shutil.which("runuser")
            if runuser is None:
                self.reason = f"running as root, and there is no runuser to run PostgreSQL as {SYSTEM_USER!r} (initdb refuses root)"
                return self
            self._prefix = [runuser, "-u", SYSTEM_USER, "--"]
        self.root = Path(tempfile.mkdtemp(prefix="nas-pg-"))
        self.socket_dir.mkdir()
        if self._prefix:
            for path in (self.root, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        atexit.register(self.close)  # a session ended some other way still stops the server
        initdb = self._run([self._binaries[0], "-D", str(self.data), "-A", "trust", "-U", USER, "--auth=trust", "-E", "UTF8",
                            "--locale=C"], timeout=180)  # C: valid with every encoding, whatever locales the machine has
        if initdb.returncode != 0:
            self.reason = f"initdb failed (exit {initdb.returncode}): {last_line(initdb.stderr or initdb.stdout)}"
            self.close()
            return self
        self.port = free_port()
        try:
            self.start()
        except RuntimeError as exc:
            self.reason = str(exc)
            self.close()
            return self
        try:
            self.create_database(DATABASE)
        except Exception as exc:  # psycopg2 cannot connect: say so, and leave nothing running
            self.reason = f"the server started but cannot be reached on 127.0.0.1:{self.port}: {last_line(str(exc))}"
            self.close()
        return self

    def start(self) -> None:
        """Start the server on :attr:`port` (again, after :meth:`stop`: the same data, the same port)."""
        assert self._binaries is not None and self.port is not None
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir} -c fsync=off -c synchronous_commit=off "
                   f"-c full_page_writes=off -c max_connections=200")
        done = self._run([self._binaries[1], "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log), "-o", options],
                         timeout=120)
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed (exit {done.returncode}): {last_line(tail or done.stderr or done.stdout)}")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: pg_ctl's smart, fast or immediate); its data stays for :meth:`start`."""
        assert self._binaries is not None
        done = self._run([self._binaries[1], "stop", "-w", "-t", "60", "-D", str(self.data), "-m", mode], timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed (exit {done.returncode}): {last_line(done.stderr or done.stdout)}")
        self.running = False

    def close(self) -> None:
        """Stop the server if it runs and remove its folder. Safe to call twice."""
        if self.running:
            try:
                self.stop()
            except (RuntimeError, subprocess.TimeoutExpired):
                self.stop("immediate")
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
        atexit.unregister(self.close)

    # ---- databases ---------------------------------------------------------------------------
    def connect(self, database: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, dbname=database, connect_timeout=10)

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE name`` (outside a transaction, as PostgreSQL requires); its URL."""
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", name), name
        connection = self.connect()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url_of(name)

    # ---- running its commands ----------------------------------------------------------------
    def _run(self, command: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}  # no PGDATA, PGPORT, ... of the caller's
        env["LC_ALL"] = "C"
        return subprocess.run(self._prefix + command, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)


def fresh_database(server: PostgresServer) -> str:
    """The URL of a new, empty database on ``server``."""
    return server.fresh_database()
