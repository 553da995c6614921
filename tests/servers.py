"""What the tests' throwaway database servers share (tests/postgres_server.py, tests/mysql_server.py):
a free loopback port, the user and database ``nas``, URLs through SQLAlchemy's driver, a fresh
database per test, and ``with``. Each server finds its binaries, starts, stops and creates databases
its own way; a server that cannot run sets :attr:`ThrowawayServer.reason` and leaves nothing behind."""

from __future__ import annotations

import importlib
import itertools
import os
import socket
from pathlib import Path

USER = "nas"
DATABASE = "nas"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


class ThrowawayServer:
    """One throwaway server. :meth:`setup` (or ``with``) creates and starts it, or sets :attr:`reason`."""

    #: SQLAlchemy's URL scheme with its driver, e.g. ``postgresql+psycopg2``.
    scheme = ""

    def __init__(self) -> None:
        self.reason: str | None = None  # why the server cannot run; None once it has started
        self.port: int | None = None
        self.root: Path | None = None   # the temporary folder: the data directory, the socket, server.log
        self._binaries: tuple[str, str] | None = None
        self._names = itertools.count(1)

    @property
    def log(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    def url_of(self, database: str) -> str:
        return f"{self.scheme}://{USER}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        """The server's own database ``nas``."""
        return self.url_of(DATABASE)

    def has_driver(self, module: str, name: str, extra: str) -> bool:
        """Whether SQLAlchemy's driver ``module`` (``name``) imports; else :attr:`reason` says how to
        install it (nas's ``extra``)."""
        try:
            importlib.import_module(module)
        except ImportError as exc:
            self.reason = f"{name} is not installed ({exc}); pip install -c constraints.txt -e '.[{extra}]'"
            return False
        return True

    def fresh_database(self) -> str:
        """The URL of a new, empty database on this server (one per test: no study collides)."""
        return self.create_database(f"nas_{os.getpid()}_{next(self._names)}")

    def setup(self) -> ThrowawayServer:
        raise NotImplementedError

    def create_database(self, name: str) -> str:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> ThrowawayServer:
        return self.setup()

    def __exit__(self, *exc: object) -> None:
        self.close()
