"""Callbacks: everything that observes a search (TensorBoard, progress, lineage, leaderboard, best
checkpoint, weight retention, and a user's own) has the same five hooks.

The shape of Syne Tune's ``TunerCallback`` and of Keras callbacks::

    class PrintBest(nas.Callback):
        def on_trial_end(self, record, evaluation):
            best = self.search.store.best()
            print(record.number, record.state, best.value if best else None)

    nas.search(..., callbacks=[PrintBest()])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from nas.core.records import TrialRecord
from nas.store.base import RunningTrial

if TYPE_CHECKING:
    from nas.engine.loop import SearchLoop


class Callback:
    """Base class; override the hooks you need. When each is called, in the worker process:

    - :meth:`on_search_start` once, before the first trial (``self.search`` is then the loop:
      its ``space``, ``strategy``, ``estimator``, ``store``, ``budget`` and ``run_dir``).
    - :meth:`on_trial_start` when a trial has been created in the store, before it is evaluated.
    - :meth:`on_report` for every intermediate value the estimator reports (an epoch's
      validation accuracy, with ``scalars`` such as ``train_loss``), before the pruner decides.
    - :meth:`on_trial_end` when the trial is finished in the store and the strategy told, with the
      :class:`~nas.Evaluation` when there is one (its ``model`` is the trained network).
    - :meth:`on_search_end` once, when the search stops (budget spent, space exhausted, an error,
      or Ctrl-C), with the whole history; also when a hook before it raised.
    - :meth:`on_message` for every line the search has to say (resuming, stopping, warnings).
    """

    search: SearchLoop

    def on_search_start(self, search: SearchLoop) -> None:
        self.search = search

    def on_trial_start(self, trial: RunningTrial) -> None:
        pass

    def on_report(self, trial: RunningTrial, step: int, value: float, scalars: Mapping[str, float]) -> None:
        pass

    def on_trial_end(self, record: TrialRecord, evaluation: Any) -> None:
        pass

    def on_search_end(self, history: list[TrialRecord]) -> None:
        pass

    def on_message(self, text: str) -> None:
        pass


class CallbackList(Callback):
    """Calls every callback's hook in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"`callbacks` must hold nas.Callback instances, but got {type(cb).__name__}.")

    def on_search_start(self, search: SearchLoop) -> None:
        super().on_search_start(search)
        for cb in self.callbacks:
            cb.on_search_start(search)

    def on_trial_start(self, trial: RunningTrial) -> None:
        for cb in self.callbacks:
            cb.on_trial_start(trial)

    def on_report(self, trial: RunningTrial, step: int, value: float, scalars: Mapping[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_report(trial, step, value, scalars)

    def on_trial_end(self, record: TrialRecord, evaluation: Any) -> None:
        for cb in self.callbacks:
            cb.on_trial_end(record, evaluation)

    def on_search_end(self, history: list[TrialRecord]) -> None:
        errors = []
        for cb in self.callbacks:  # every callback gets to close its files, even if one fails
            try:
                cb.on_search_end(history)
            except Exception as exc:  # noqa: BLE001 - raised below, after the others ran
                errors.append(exc)
        if errors:
            raise errors[0]

    def on_message(self, text: str) -> None:
        for cb in self.callbacks:
            cb.on_message(text)
