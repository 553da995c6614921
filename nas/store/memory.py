"""A trial store in plain Python: the same contract as the Optuna store, without a study.

For benchmarks of strategies over many seeds, experiments and the contract tests, where a
storage round trip would cost more than a table lookup. Nothing is kept when the process ends,
and there is no pruner (pass an Optuna pruner with ``storage="memory"`` to :func:`nas.search`).
"""

from __future__ import annotations

from collections.abc import Iterable

from nas.core.architecture import Architecture
from nas.core.records import TrialRecord, TrialState
from nas.store.base import Outcome, RunningTrial, TrialStore


class MemoryStore(TrialStore):
    """Trials in a list; ``history`` continues from the given records (numbered 0, 1, ...)."""

    description = "in-process memory"

    def __init__(self, history: Iterable[TrialRecord] = ()) -> None:
        super().__init__()
        for number, record in enumerate(history):
            if record.number != number:
                raise ValueError(f"`history` must be numbered 0, 1, 2, ... in order, but record {number} has number {record.number}.")
            self._put(record)

    def start(self, arch: Architecture, *, text: str, parent: int | None, worker: str | None) -> RunningTrial:
        number = len(self._records)
        self._put(TrialRecord(number=number, arch=arch, state=TrialState.RUNNING, parent=parent, worker=worker))
        return RunningTrial(number=number, arch=arch, parent=parent, worker=worker)

    def finish(self, trial: RunningTrial, outcome: Outcome) -> TrialRecord:
        record = TrialRecord(number=trial.number, arch=trial.arch, state=outcome.state,
                             value=outcome.value if outcome.state is TrialState.COMPLETE else None, metrics=dict(outcome.metrics),
                             cost=outcome.cost, parent=trial.parent, reason=outcome.reason, weights=outcome.weights, worker=trial.worker,
                             curve=tuple(outcome.curve), fidelity=dict(outcome.fidelity), inheritance=outcome.inheritance)
        self._put(record)
        return record

    def _refresh(self) -> None:
        """Nothing outside this process writes here."""
