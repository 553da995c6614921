"""Who runs a trial: the worker's identity, and whether a worker of this machine is gone.

A trial records ``host:pid`` of the process that ran it, with the process's pid namespace and start
time (Linux ``/proc``), so that a trial left RUNNING by a killed worker can be told from one whose
worker still runs, also when the pid has been reused or belongs to another container.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Mapping
from pathlib import Path


def this_worker() -> str:
    """What a trial records as its worker: ``host:pid`` of the process that runs it (asks it, in ask/tell)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def this_process() -> dict[str, str]:
    """What tells this process from a later one that gets the same pid on the same host: its pid
    namespace (a container) and start time, from Linux's ``/proc``; empty elsewhere."""
    return dict(_process_identity(os.getpid()))


@functools.lru_cache(maxsize=4)  # keyed by pid: a forked child asks afresh
def _process_identity(pid: int) -> tuple[tuple[str, str], ...]:
    stat, namespace = _proc_stat(pid), _pid_namespace()
    return (("pid_namespace", namespace), ("started", stat[1])) if stat and namespace else ()


def worker_is_gone(worker: str | None, process: Mapping[str, str] | None = None) -> bool:
    """Whether ``worker`` (``host:pid``, with :func:`this_process` of it) was a process of this machine
    that no longer runs: no such pid, a zombie, or the pid now another process's (a later start time).
    A worker on another host or in another container, or one that cannot be told, is taken to be alive."""
    host, _, pid = (worker or "").rpartition(":")
    if os.name == "nt" or host != socket.gethostname() or not pid.isdigit():
        return False  # Windows: os.kill(pid, 0) would send Ctrl+C
    process = process or {}
    if process.get("pid_namespace") and process["pid_namespace"] != _pid_namespace():
        return False  # its pids are not ours to see
    if process.get("started") and _pid_namespace():
        stat = _proc_stat(int(pid))
        return stat is None or stat[0] == "Z" or stat[1] != process["started"]
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists but is not ours (EPERM), or cannot be asked
        return False
    return False


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """State and start time (clock ticks since boot) of process ``pid`` from ``/proc``; None if absent."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[0], fields[19]  # fields 3 and 22 of proc(5)


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
