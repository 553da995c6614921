"""The trial store contract: where trials are created, reported to, finished and read back.

The search loop (:mod:`nas.engine.loop`) talks to a :class:`TrialStore` and to nothing else for
persistence. Two implementations share the contract: :class:`~nas.store.optuna_store.OptunaStore`
(any Optuna storage: SQLite, journal file, PostgreSQL or another RDB URL, Optuna's in-memory
storage) and :class:`~nas.store.memory.MemoryStore` (plain Python, for benchmarks and contract tests).
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.records import Inheritance, TrialRecord, TrialState, better


@dataclass
class RunningTrial:
    """A trial the store has started and not yet finished: the loop's handle on it."""

    number: int
    arch: Architecture
    parent: int | None = None
    worker: str | None = None
    ref: Any = None  # the store's own identifier of the trial
    started: float = field(default_factory=time.perf_counter)
    curve: list[float] = field(default_factory=list)
    retry_of: int | None = None  # the lost trial this one runs again (see :meth:`TrialStore.claim_waiting`)
    resumed: dict[str, int] = field(default_factory=dict)  # {resumed_from, resumed_steps}: the checkpoint it resumed from


@dataclass(frozen=True)
class Heartbeat:
    """How workers sharing a study show they are alive: a beat every ``interval`` seconds while a
    trial runs; a trial whose worker has not beaten for ``grace`` seconds is lost (failed, and
    re-queued). ``grace`` must be well above ``interval`` and above any clock skew between hosts (a
    journal file compares the hosts' clocks; an RDB server compares its own)."""

    interval: int = 10
    grace: int = 60
    #: trials failed by Optuna's RDB heartbeat check, collected by its stale-trial callback
    found: list[Any] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("interval", "grace"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"`heartbeat.{name}` must be a whole number of seconds >= 1, but got {value!r}.")
        if self.grace <= self.interval:
            raise ConfigError(f"`heartbeat.grace > heartbeat.interval` must hold (a worker gets more than one beat's time), but got "
                              f"grace={self.grace}, interval={self.interval}.")

    def collect(self, _study: Any, trial: Any) -> None:
        self.found.append(trial)


@dataclass(frozen=True)
class Lost:
    """A running trial found lost (its worker died or stopped beating): failed, and re-queued as
    ``retry`` unless its retries are spent (``None``)."""

    number: int
    reason: str
    retry: int | None = None


@dataclass(frozen=True)
class Outcome:
    """How a trial ended, as the loop hands it to :meth:`TrialStore.finish`."""

    state: TrialState
    value: float | None = None
    curve: Sequence[float] = ()
    cost: float | None = None
    fidelity: Mapping[str, Any] = field(default_factory=dict)
    inheritance: Inheritance | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None
    weights: str | None = None


def _to_stderr(text: str) -> None:
    import sys

    print(text, file=sys.stderr, flush=True)


class TrialStore(ABC):
    """Creates, reports to, finishes and reads trials of one study.

    - :meth:`start` creates a RUNNING trial holding the architecture, its key and text form, the
      worker and the parent, in one write.
    - :meth:`report` records an intermediate value and answers whether the pruner says stop
      (only stores with a pruner write anything).
    - :meth:`finish` ends the trial in one or two writes and returns its :class:`TrialRecord`.
    - :meth:`history` returns every trial, oldest first, reading only what changed since the last
      call (other workers' trials included); finished records are built once and kept.
    - :meth:`best` is the one best trial of the study (:func:`nas.core.records.better`).
    """

    #: Whether :meth:`report` consults a pruner (else the curve is stored once, at finish).
    prunes: bool = False
    #: A short description for messages ("sqlite:///runs/x/study.db", "memory").
    description: str = "store"

    def __init__(self) -> None:
        self._records: list[TrialRecord | None] = []   # by trial number
        self._holes = 0                                # numbers not read yet (None in _records)
        self._settled = 0                              # trials [0, _settled) are finished and kept
        self._best: TrialRecord | None = None
        self._count: dict[TrialState, int] = {}
        self._superseded: set[int] = set()             # lost trials that a retry runs again
        self._infeasible: set[int] = set()             # candidates refused before training (outside the budget)
        self._waiting: set[int] = set()                # re-queued trials no worker has taken yet
        self._attrs: dict[str, Any] = {}               # the study's own attributes (objectives, reference point)
        #: Where the store says what the search should hear (a database unreachable, retried): the
        #: search loop sets its own ``say``; standing alone, standard error.
        self.notify: Callable[[str], None] = _to_stderr

    # ---- what implementations provide -------------------------------------------------------
    @abstractmethod
    def start(self, arch: Architecture, *, text: str, parent: int | None, worker: str | None) -> RunningTrial:
        """Create a RUNNING trial for ``arch`` (``text``: its text form; ``worker``: who runs it, see
        :mod:`nas.core.workers`)."""

    @abstractmethod
    def finish(self, trial: RunningTrial, outcome: Outcome) -> TrialRecord:
        """End ``trial`` with ``outcome`` and return its record."""

    @abstractmethod
    def _refresh(self) -> None:
        """Read what changed in the backend since the last call and :meth:`_put` each changed record."""

    def report(self, trial: RunningTrial, step: int, value: float, vector: Sequence[float | None] | None = None) -> bool:
        """Record an intermediate value (and, with several objectives, the objective ``vector`` at this step, which a
        pruner that ranks by non-dominated sorting reads); whether the pruner says stop. Default: no pruner."""
        return False

    def accepted(self, trial: RunningTrial) -> float | None:
        """After :meth:`report` said stop: the value the pruner accepted ``trial`` with (complete on the epochs
        it ran: ``pruner=lce``'s early acceptance), or ``None`` (pruned). Default: no pruner accepts."""
        return None

    #: Set when the workers of this study beat (:class:`Heartbeat`); ``None``: a single process.
    heartbeat: Heartbeat | None = None

    def beat(self, trial: RunningTrial) -> None:
        """Say that ``trial``'s worker is alive (with :attr:`heartbeat`). Default: nobody listens."""

    def fail_running(self, lost: Callable[[TrialRecord], bool], reason: str, *, requeue: int) -> list[Lost]:
        """Fail, with ``reason``, every RUNNING trial of other processes that ``lost(record)`` says is
        lost (its worker is known dead), re-queueing each up to ``requeue`` times. Default: none."""
        return []

    def requeue(self, number: int, reason: str, *, requeue: int) -> Lost:
        """Queue the failed trial ``number`` (one interrupted by the user) to run again, like a lost one,
        unless it has run ``requeue`` times already. Default: a store without re-queueing keeps it failed."""
        return Lost(number=number, reason=reason)

    def fail_silent(self, *, requeue: int) -> list[Lost]:
        """Fail the RUNNING trials whose worker stopped beating for :attr:`heartbeat`'s grace, re-queueing
        each up to ``requeue`` times. Default: no heartbeat, none."""
        return []

    def budget_lock(self) -> Any:
        """A context held while a worker checks the budget and starts a trial, by every worker of the
        study (so that they never start more than the budget). Default: nothing to share."""
        return contextlib.nullcontext()

    def others_running(self) -> list[int]:
        """Numbers of running trials of other workers that beat (waited for at the budget's end). Default: none."""
        return []

    def claim_waiting(self, worker: str | None) -> RunningTrial | None:
        """Take a re-queued (WAITING) trial for ``worker`` to run, if there is one; else ``None``."""
        return None

    # ---- shared bookkeeping -----------------------------------------------------------------
    def _put(self, record: TrialRecord) -> None:
        """Keep ``record`` (a new trial, or a new state of one already kept)."""
        while len(self._records) <= record.number:
            self._records.append(None)
            self._holes += 1
        old = self._records[record.number]
        if old is None:
            self._holes -= 1
        if old is not None:
            self._count[old.state] -= 1
        self._records[record.number] = record
        self._count[record.state] = self._count.get(record.state, 0) + 1
        if record.retry_of is not None:
            self._superseded.add(record.retry_of)
        if record.infeasible:
            self._infeasible.add(record.number)
        if record.state is TrialState.WAITING:
            self._waiting.add(record.number)
        else:
            self._waiting.discard(record.number)
        if better(record, self._best):
            self._best = record
        while self._settled < len(self._records) and (r := self._records[self._settled]) is not None and r.finished:
            self._settled += 1

    def history(self) -> list[TrialRecord]:
        """Every trial of the study, oldest first, running ones included."""
        self._refresh()
        if not self._holes:  # the usual case: a plain copy, not a scan (a long search asks thousands of times)
            return list(self._records)  # type: ignore[arg-type]
        return [r for r in self._records if r is not None]

    def count(self, *states: TrialState) -> int:
        """How many trials are in any of ``states`` (as of the last read)."""
        return sum(self._count.get(s, 0) for s in states)

    def in_budget(self) -> int:
        """Trials that count against a trial budget: every one started or queued, less the lost ones
        that a retry runs again (so the finished trials of a budget stay exactly the budget) and the
        candidates refused before training for breaking a constraint (the budget counts trained ones)."""
        return sum(self._count.values()) - len(self._superseded) - len(self._infeasible)

    def infeasible_count(self) -> int:
        """Candidates refused before training for breaking a constraint (as of the last read)."""
        return len(self._infeasible)

    def finished_count(self) -> int:
        """Finished trials, less the lost ones that a retry runs again (as of the last read)."""
        return self.count(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED) - len(self._superseded)

    def record(self, number: int) -> TrialRecord | None:
        """The trial numbered ``number`` as last read, or ``None``."""
        if number >= len(self._records) or self._records[number] is None or not self._records[number].finished:  # type: ignore[union-attr]
            self._refresh()
        return self._records[number] if 0 <= number < len(self._records) else None

    def best(self) -> TrialRecord | None:
        """The best completed trial of the study, other workers' included (as of the last read)."""
        return self._best

    def study_attrs(self) -> dict[str, Any]:
        """The study's attributes (JSON values: the declared objectives, the hypervolume's reference point),
        every worker's writes included. Default: kept in this process."""
        return dict(self._attrs)

    def set_study_attr(self, key: str, value: Any) -> None:
        """Keep ``value`` (JSON) under ``key`` with the study, for every worker and for :func:`nas.load`."""
        self._attrs[key] = value

    def close(self) -> None:
        """Release connections. Default: nothing to release."""
