"""An exclusive lock on a file, between the processes of one machine (the workers of one run directory).

``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows; the lock is the kernel's, so a worker killed
while holding it releases it at once. :class:`JournalLock` is the same lock for the appends to an
Optuna journal file: Optuna's own file locks (a symlink or an exclusive file) outlive a worker killed
mid-append, and every other worker then waits out their 30 s grace, its heartbeats stalled with it.
On a network file system Linux maps ``flock`` to the server's byte-range locks (NFSv4, and v3 with
its lock manager); where those are not honoured use an RDB server instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if absent) for the ``with`` block; waits for it."""
    fd = _locked(path)
    try:
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _locked(path: str | Path) -> int:
    """A descriptor of ``path`` (created if absent) holding its exclusive lock (waits for it)."""
    fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


class JournalLock:
    """The lock Optuna's ``JournalFileBackend(lock_obj=...)`` takes around each append (its
    ``acquire``/``release`` protocol), held on ``<journal>.flock``. Not shared between threads:
    Optuna's journal storage serialises its own threads."""

    def __init__(self, journal_path: str | Path) -> None:
        self.path = f"{journal_path}.flock"  # not Optuna's own lock name (<journal>.lock), which its symlink lock removes
        self._fd: int | None = None

    def acquire(self) -> bool:
        self._fd = _locked(self.path)
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
