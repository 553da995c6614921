"""Callbacks: everything that observes a search (TensorBoard, progress, lineage, leaderboard, best
checkpoint, weight retention, and a user's own) has the same five hooks.

The shape of Syne Tune's ``TunerCallback`` and of Keras callbacks::

    class PrintBest(nas.Callback):
        def on_trial_end(self, record, evaluation):
            best = self.search.store.best()
            print(record.number, record.state, best.value if best else None)

    nas.search(..., callbacks=[PrintBest()])

A callback may also *measure*: :meth:`Callback.measure` returns figures of a completed trial's trained
network (a worst-slice accuracy, a robust accuracy) that join its record before it is stored, so an
objective or a constraint may name them; the names are declared in :attr:`Callback.metrics`, which the
search checks its objectives and constraints against before any training::

    class WorstClass(nas.Callback):
        metrics = ("worst_class_accuracy",)

        def measure(self, trial, evaluation):
            return {"worst_class_accuracy": worst_class(evaluation.model, self.search.estimator.data)}

    nas.search(..., callbacks=[WorstClass()], objectives={"val_accuracy": "max", "worst_class_accuracy": "max"})
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
    - :meth:`measure` when a trial completed, before it is stored: figures to add to its record (named
      in :attr:`metrics`); an exception fails the trial, its reason recorded.
    - :meth:`on_trial_end` when the trial is finished in the store and the strategy told, with the
      :class:`~nas.Evaluation` when there is one (its ``model`` is the trained network).
    - :meth:`on_search_end` once, when the search stops (budget spent, space exhausted, an error,
      or Ctrl-C), with the whole history; also when a hook before it raised.
    - :meth:`on_message` for every line the search has to say (resuming, stopping, warnings).
    """

    search: SearchLoop
    #: The metrics :meth:`measure` adds to each completed trial (what objectives and constraints may name).
    metrics: tuple[str, ...] = ()

    def on_search_start(self, search: SearchLoop) -> None:
        self.search = search

    def on_trial_start(self, trial: RunningTrial) -> None:
        pass

    def on_report(self, trial: RunningTrial, step: int, value: float, scalars: Mapping[str, float]) -> None:
        pass

    def measure(self, trial: RunningTrial, evaluation: Any) -> Mapping[str, float]:
        """Figures of the completed ``trial`` (``evaluation.model``: its trained network) for its record."""
        return {}

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

    @property
    def metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(m for cb in self.callbacks for m in cb.metrics)

    def measure(self, trial: RunningTrial, evaluation: Any) -> Mapping[str, float]:
        """Every callback's figures, each checked against its declaration: a number under a declared name."""
        figures: dict[str, float] = {}
        for cb in self.callbacks:
            got = cb.measure(trial, evaluation)
            name = type(cb).__name__
            if not isinstance(got, Mapping):
                raise TypeError(f"callback {name}.measure must return a mapping of metric names to numbers, but got {type(got).__name__}.")
            for key, value in got.items():
                if key not in cb.metrics:
                    raise TypeError(f"callback {name}.measure returned {key!r}, which its `metrics` ({', '.join(cb.metrics) or 'none'}) "
                                    "does not declare; declare every metric it adds.")
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TypeError(f"callback {name}.measure: {key!r} must be a number, but got {value!r}.")
                figures[key] = float(value)
        return figures

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
