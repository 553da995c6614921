"""An exclusive lock on a file, between the processes of one machine (the workers of one run directory).

``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows; the lock is the kernel's, so a worker killed
while holding it releases it. Not for other machines: a network file system may not honour it.
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
    fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
