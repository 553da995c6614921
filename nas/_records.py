"""Trial records: the frozen, study-independent view of a trial that strategies and users see."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from nas._architecture import Architecture

if TYPE_CHECKING:
    from nas._space import SearchSpace

# User-attribute names under which a trial keeps what Optuna's params do not.
KEY_ATTR = "nas:key"
METRICS_ATTR = "nas:metrics"
REASON_ATTR = "nas:fail_reason"
PARENT_ATTR = "nas:parent"
TEXT_ATTR = "nas:arch"
WEIGHTS_ATTR = "nas:weights"
WORKER_ATTR = "nas:worker"
PROCESS_ATTR = "nas:process"  # this_process() of the worker, to tell a reused pid

_STATES = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


@dataclass(frozen=True)
class TrialRecord:
    """One trial: what was tried, how it ended, what it measured and what it cost."""

    number: int
    arch: Architecture
    state: str
    value: float | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    cost: float | None = None
    parent: int | None = None
    reason: str | None = None
    weights: str | None = None
    worker: str | None = None  # "host:pid" of the process that ran the trial (asked it, in ask/tell)

    @property
    def score(self) -> float | None:
        """The selection value (validation accuracy for the training estimator)."""
        return self.value

    @property
    def fidelity(self) -> Mapping[str, Any]:
        """The estimator's fidelity knobs for this trial (epochs, data fraction, width, ...); the epochs
        actually trained are ``metrics["epochs"]`` (fewer when pruned or stopped by the time limit)."""
        return self.metrics.get("fidelity") or {}

    @property
    def finished(self) -> bool:
        return self.state in ("complete", "pruned", "failed")

    @classmethod
    def from_trial(cls, trial: optuna.trial.FrozenTrial, space: SearchSpace) -> TrialRecord:
        sample = {name: trial.params[name] for name in space.dimensions() if name in trial.params}
        attrs = trial.user_attrs
        arch = Architecture(space=space.name, sample=sample, key=attrs.get(KEY_ATTR, ""))
        metrics = dict(attrs.get(METRICS_ATTR, {}))
        cost = metrics.get("seconds")
        if cost is None and trial.datetime_start and trial.datetime_complete:
            cost = (trial.datetime_complete - trial.datetime_start).total_seconds()
        return cls(
            number=trial.number,
            arch=arch,
            state=_STATES.get(trial.state, trial.state.name.lower()),
            value=trial.value if trial.state == TrialState.COMPLETE else None,
            metrics=metrics,
            cost=cost,
            parent=attrs.get(PARENT_ATTR),
            reason=attrs.get(REASON_ATTR),
            weights=attrs.get(WEIGHTS_ATTR),
            worker=attrs.get(WORKER_ATTR),
        )


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


def trial_attrs(space: SearchSpace, arch: Architecture, parent: int | None) -> dict[str, Any]:
    """The user attributes a new trial is written with: key, text form, worker and parent."""
    attrs: dict[str, Any] = {KEY_ATTR: arch.key, TEXT_ATTR: space.format(arch.sample), WORKER_ATTR: this_worker(),
                             PROCESS_ATTR: this_process()}
    if parent is not None:
        attrs[PARENT_ATTR] = int(parent)
    return attrs


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


def history_of(study: optuna.Study, space: SearchSpace) -> list[TrialRecord]:
    """Every trial of ``study`` (running ones too), oldest first, as records."""
    return [TrialRecord.from_trial(t, space) for t in study.get_trials(deepcopy=False)]
