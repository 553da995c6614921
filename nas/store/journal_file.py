"""Optuna's journal file, appended so that a full disk cannot break it.

Optuna's ``JournalFileBackend.append_logs`` writes a batch of JSON lines with one buffered write. When
the disk fills (``ENOSPC``, a quota, a file size limit) part of the batch is on disk without its final
newline; the next append, once there is room again, continues that line, and from then on every reader
of the study fails on it (measured with Optuna 5.0: ``load_study`` raised an AttributeError from its
replay of the journal). :class:`JournalFile` writes the batch itself and, when the write fails, cuts
the file back to where the batch began, under the same lock: the journal holds whole lines only, the
error is raised (the store retries it as a full storage, :func:`nas.store.optuna_store.transient`),
and nothing already written is touched. Reading is Optuna's.
"""

from __future__ import annotations

import json
import os
from typing import Any

from optuna.storages.journal import JournalFileBackend

from nas.store.locks import JournalLock


class JournalFile(JournalFileBackend):
    """A journal file appended under nas's kernel lock (:class:`JournalLock`), whole batches or nothing."""

    def __init__(self, path: str) -> None:
        self.lock = JournalLock(path)
        self.path = path
        super().__init__(path, lock_obj=self.lock)  # type: ignore[arg-type]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode("utf-8")
        self.lock.acquire()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                start = os.fstat(fd).st_size  # under the lock: nobody else appends meanwhile
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                except OSError:
                    os.ftruncate(fd, start)  # no half line left behind for the next append to run into
                    raise
            finally:
                os.close(fd)
        finally:
            self.lock.release()
