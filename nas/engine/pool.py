"""Local workers: N processes of this machine searching one study, started and watched here.

The coordinator (``nas-search workers=N``) prepares the run directory and the study, starts N-1
``python -m nas.worker RUN_DIR`` processes and is worker 0 itself. Each is a whole search loop on
the shared study (a journal file by default): they share the budget (the store's budget lock makes
it exact), the best checkpoint (a lock in the run directory) and the strategy's view of every
trial, running ones included. Workers run in their own process group: Ctrl-C reaches the
coordinator, which forwards one interrupt to each (their running trials are recorded as
interrupted) and kills them on a second Ctrl-C. A worker that dies otherwise (killed, out of
memory) is restarted, up to ``restarts`` times in all; the new one fails the dead one's running trial
and re-queues it at once (elsewhere the heartbeat finds it, after its grace).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from nas.core.errors import ConfigError

#: How a worker process ends: 0 done, 2 refused (a config error), 130 interrupted.
REFUSED, INTERRUPTED = 2, 130
_POLL_SECONDS = 0.2


def worker_command(run_dir: Path, index: int, replaces: str | None = None) -> list[str]:
    return [sys.executable, "-m", "nas.worker", str(run_dir), "--index", str(index), *(["--replaces", replaces] if replaces else [])]


def visible_gpus(env: Mapping[str, str]) -> list[str]:
    """The GPUs workers are spread over: ``CUDA_VISIBLE_DEVICES`` where set, else every CUDA device."""
    if "CUDA_VISIBLE_DEVICES" in env:
        return [d.strip() for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    except Exception:  # no usable CUDA: CPU workers
        return []


def worker_env(index: int, base: Mapping[str, str], gpus: list[str]) -> dict[str, str]:
    """Worker ``index``'s environment: one GPU of ``gpus`` each, round robin, when there are any."""
    env = dict(base)
    env["PYTHONUNBUFFERED"] = "1"  # its progress lines appear as they happen
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    return env


class LocalWorkers:
    """Starts workers ``first .. count-1`` on ``run_dir`` (worker 0 is the coordinator's own loop when
    ``first`` is 1), watches them from a thread (restarting the dead) and waits; see the module docstring."""

    def __init__(self, run_dir: Path, count: int, *, say: Callable[[str], None], first: int = 1, restarts: int | None = None) -> None:
        self.run_dir, self.count, self.first, self.say = Path(run_dir), count, first, say
        self.restarts_left = 2 * count if restarts is None else restarts
        self.gpus = visible_gpus(os.environ)
        self.procs: dict[int, subprocess.Popen] = {}
        self.refused: str | None = None
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        """Start the workers and the thread that watches them."""
        where = f" on GPUs {', '.join(self.gpus)} (round robin)" if self.gpus else ""
        self.say(f"nas: {self.count} workers{where} on one study in {self.run_dir}")
        for index in range(self.first, self.count):
            self._start(index)
        self._watcher = threading.Thread(target=self._watch, name="nas-workers", daemon=True)
        self._watcher.start()

    def wait(self) -> None:
        """Until every worker has ended; a worker that refused to start (a config error) raises."""
        if self._watcher is not None:
            while self._watcher.is_alive():
                self._watcher.join(timeout=_POLL_SECONDS)  # a short join: Ctrl-C reaches the main thread
        if self.refused is not None:
            raise ConfigError(self.refused)

    def _start(self, index: int, replaces: str | None = None) -> None:
        self.procs[index] = subprocess.Popen(worker_command(self.run_dir, index, replaces),
                                             env=worker_env(index, os.environ, self.gpus), start_new_session=os.name != "nt")

    def _watch(self) -> None:
        while True:
            with self._lock:
                if not self.procs:
                    return
                for index, proc in list(self.procs.items()):
                    code = proc.poll()
                    if code is not None:
                        del self.procs[index]
                        self._ended(index, proc, code)
            time.sleep(_POLL_SECONDS)

    def _ended(self, index: int, proc: subprocess.Popen, code: int) -> None:
        if code in (0, INTERRUPTED):
            return
        if code == REFUSED:
            self.refused = f"worker {index} refused to start (its error is above)"
            return
        how = f"signal {-code}" if code < 0 else f"exit status {code}"
        if self.restarts_left > 0 and self.refused is None:
            self.restarts_left -= 1
            self.say(f"nas: worker {index} (pid {proc.pid}) died ({how}); restarting it")
            self._start(index, replaces=f"{socket.gethostname()}:{proc.pid}")  # it fails and re-queues the dead one's trial
        else:
            self.say(f"nas: worker {index} (pid {proc.pid}) died ({how}); not restarted (restarts spent)")

    def interrupt(self) -> None:
        """First Ctrl-C: one interrupt to each worker, then wait for them; a second one kills them."""
        with self._lock:
            procs = list(self.procs.values())
            self.restarts_left = 0  # an interrupted worker is not replaced
        for proc in procs:
            _signal(proc, signal.SIGINT)
        try:
            for proc in procs:
                proc.wait()
        except KeyboardInterrupt:
            for proc in procs:
                _signal(proc, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
            for proc in procs:
                proc.wait()


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except (ProcessLookupError, OSError):
        pass
