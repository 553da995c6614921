"""TensorBoard event files, written by a callback.

Layout under ``tb/``:

- ``search``: one run for the whole search: each trial's score and the best so far against the
  trial number, the best's test accuracy, the lineage text; when the search ends, a picture of
  each of the 5 best architectures (Images, ``architecture/rank_K``) and the best model's graph (Graphs).
  With several objectives, also the front's hypervolume against the trial number (``search/hypervolume``,
  at the study's reference point) and the front as a picture of the first two objectives
  (``search/pareto_front``: every trial, the front joined; redrawn at most every 10 s and at the end).
- ``trial_NNNN``: one run per trained trial: its curves per epoch (``val/accuracy``,
  ``train/loss``, ``train/accuracy``, ``train/lr``; ``test/accuracy`` with the training estimator's
  ``test_curve``), its HParams row (every
  dimension, state, parent, morphism, fidelity) and its architecture text.

Estimators marked ``cheap`` (table lookups, zero-cost proxies) take milliseconds a trial, and a
run per trial would make a 5,000-trial search crawl in TensorBoard; their trials are logged in
``search`` only, and the ``top_k`` best get their ``trial_NNNN`` run (HParams) when the search ends.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from nas.core.architecture import Architecture
from nas.core.space import SearchSpace
from nas.core.records import TrialRecord, better, ranked
from nas.engine.callbacks import Callback
from nas.engine.lineage import lineage_text
from nas.store.base import RunningTrial

if TYPE_CHECKING:
    from nas.engine.loop import SearchLoop

# Metrics shown as HParams columns (sortable in TensorBoard's HParams table view).
HPARAM_METRICS = ("val_accuracy", "test_accuracy", "params", "macs", "latency_ms", "epochs")
_FLUSH_SECONDS = 1.0
_DRAW_SECONDS = 10.0  # the front's picture at most this often (and when the search ends)


_SPLITS = ("train", "val", "test")


def scalar_tag(name: str) -> str:
    """An estimator's scalar name as a TensorBoard tag: ``train_loss`` -> ``train/loss``,
    ``test_accuracy`` -> ``test/accuracy`` (one section per split); other names are kept."""
    split, sep, rest = name.partition("_")
    return f"{split}/{rest}" if sep and rest and split in _SPLITS else name


def _hparam_value(value: Any, numeric: bool) -> Any:
    if value is None:
        return math.nan if numeric else "inactive"
    return value if isinstance(value, (int, float, str, bool)) else str(value)


class TrialLog:
    """The TensorBoard run of one trial (``tb/trial_NNNN``)."""

    def __init__(self, root: Path, number: int, objectives: tuple[str, ...] = ()) -> None:
        self.writer = SummaryWriter(str(root / f"trial_{number:04d}"))
        self.objectives = objectives  # metrics of a search with several objectives: each an HParams column

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)

    def finish(self, space: SearchSpace, record: TrialRecord, text: str) -> None:
        dims = space.dimensions()
        hparams = {
            name: _hparam_value(record.arch.sample.get(name), not hasattr(dim, "choices") or
                                all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in getattr(dim, "choices", ())))
            for name, dim in dims.items()
        }
        hparams["state"] = str(record.state)
        hparams["parent"] = -1 if record.parent is None else record.parent  # -1: trained from scratch
        inh = record.inheritance
        hparams["morphism"] = (inh.morphism or "inherit by name and shape") if inh is not None and inh.inherited else "-"
        # fidelity columns: compare low- and full-fidelity trials side by side in the HParams view
        hparams.update({f"fidelity.{k}": _hparam_value(v, isinstance(v, (int, float))) for k, v in record.fidelity.items()})
        metrics = {f"hparam/{m}": float(record.metrics[m]) for m in (*HPARAM_METRICS, *self.objectives)
                   if isinstance(record.metrics.get(m), (int, float)) and not isinstance(record.metrics.get(m), bool)}
        if record.value is not None and "hparam/val_accuracy" not in metrics:
            metrics["hparam/score"] = float(record.value)
        if record.cost is not None:
            metrics["hparam/seconds"] = float(record.cost)
        if inh is not None and inh.fraction is not None:
            metrics["hparam/inherited_fraction"] = float(inh.fraction)
        if inh is not None and inh.preservation_error is not None:
            metrics["hparam/preservation_error"] = float(inh.preservation_error)
        if not metrics:
            metrics = {"hparam/val_accuracy": math.nan}
        self.writer.add_text("architecture", text, 0)
        self.writer.add_hparams(hparams, metrics, run_name=".")
        self.writer.close()


def arch_text(space: SearchSpace, arch: Architecture, record: TrialRecord | None = None) -> str:
    """Markdown summary of an architecture for TensorBoard's text tab."""
    lines = [f"**{space.name}** key `{arch.key}`", "", f"`{space.format(arch.sample)}`", "", "| dimension | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in arch.sample.items()]
    if record is not None:
        lines += ["", f"state: {record.state}" + (f" ({record.reason})" if record.reason else "")]
        if record.cost is not None:
            lines.append(f"- cost: {record.cost:.2f} s")
        if record.inheritance is not None:
            lines.append(f"- from #{record.inheritance.parent}: {record.inheritance.describe()}")
        lines += [f"- {k}: {v}" for k, v in record.metrics.items()]
    return "\n".join(lines)


class TensorBoardCallback(Callback):
    """Writes the layout above under ``root``. ``per_trial``: a run per trial (``None``: unless the
    estimator is cheap); ``top_k``: how many of the best get a run at the end when not per trial;
    ``pictures``: how many of the best are drawn when the search ends."""

    def __init__(self, root: str | Path, *, per_trial: bool | None = None, top_k: int = 20, pictures: int = 5,
                 search_run: str = "search", summary: bool = True) -> None:
        self.root = Path(root)
        self.per_trial_setting, self.top_k, self.pictures = per_trial, top_k, pictures
        self.search_run, self.summary = search_run, summary
        self.per_trial = True
        self.writer: SummaryWriter | None = None
        self.logs: dict[int, TrialLog] = {}
        self._flushed = 0.0
        self._drawn = -math.inf  # when the front was last drawn
        self._running_front: Any = None  # nas.core.fronts.RunningFront, made on the first trial of several objectives

    def on_search_start(self, search: SearchLoop) -> None:
        super().on_search_start(search)
        self.per_trial = (not search.estimator.cheap) if self.per_trial_setting is None else bool(self.per_trial_setting)
        self.writer = SummaryWriter(str(self.root / self.search_run))

    def on_trial_start(self, trial: RunningTrial) -> None:
        if self.per_trial:
            self.logs[trial.number] = TrialLog(self.root, trial.number, self._objective_metrics())

    def on_report(self, trial: RunningTrial, step: int, value: float, scalars: Mapping[str, float]) -> None:
        log = self.logs.get(trial.number)
        if log is not None:
            log.scalars(step, {"val/accuracy": value, **{scalar_tag(k): v for k, v in scalars.items()}})

    def on_trial_end(self, record: TrialRecord, evaluation: Any) -> None:
        log = self.logs.pop(record.number, None)
        if log is not None:
            log.finish(self.search.space, record, arch_text(self.search.space, record.arch, record))
        self._search_scalars(record, self.search.store.best())
        assert self.writer is not None
        now = time.perf_counter()
        if len(self._objectives()) > 1:
            self._front(record.number, draw=now - self._drawn > _DRAW_SECONDS)
            self._drawn = now if now - self._drawn > _DRAW_SECONDS else self._drawn
        if now - self._flushed > _FLUSH_SECONDS:  # live in TensorBoard without a file write per lookup
            self.writer.flush()
            self._flushed = now

    def on_search_end(self, history: list[TrialRecord]) -> None:
        for number, log in list(self.logs.items()):  # trials cut by an error still close their run
            log.writer.close()
            del self.logs[number]
        if self.writer is None:
            return
        if not self.summary:  # a worker of several: its coordinator writes the study's summary
            self.writer.close()
            self.writer = None
            return
        if any(r.parent is not None for r in history):
            self.writer.add_text("search/lineage", lineage_text(history), 0)
        if not self.per_trial:
            self._top_runs(history)
        if len(self._objectives()) > 1:
            self._front(max((r.number for r in history), default=0), draw=True)
        top = ranked(history)[:self.pictures]
        self._pictures(top, step=len(history))
        if top:
            self._graph(top[0])
        self.writer.close()
        self.writer = None

    def _search_scalars(self, record: TrialRecord, best: TrialRecord | None) -> None:
        """The ``search`` run's points at ``record``'s number: its score, and the best so far."""
        assert self.writer is not None
        if record.value is not None:
            self.writer.add_scalar("search/trial_val_accuracy", record.value, record.number)
        if best is not None and best.value is not None:
            self.writer.add_scalar("search/best_val_accuracy", best.value, record.number)
            if "test_accuracy" in best.metrics:
                self.writer.add_scalar("search/best_test_accuracy", best.metrics["test_accuracy"], record.number)

    def _objectives(self) -> tuple[Any, ...]:
        strategy = self.search.strategy
        return strategy.objectives if strategy is not None else ()

    def _objective_metrics(self) -> tuple[str, ...]:
        return tuple(o.metric for o in self._objectives() if o.metric != "score")

    def _front(self, step: int, *, draw: bool) -> None:
        """``search/hypervolume`` against the trial number, and (``draw``) the front as an image, ``search/pareto_front``:
        the first two objectives, every completed trial, the front joined."""
        from nas.core.fronts import RunningFront, front_hypervolume, scored
        from nas.engine.fronts import reference_point

        assert self.writer is not None
        objectives = self._objectives()
        history = self.search.store.history()
        if self._running_front is None:
            self._running_front = RunningFront(objectives)
        front = self._running_front.update(history)  # the front's size per trial, not the history's squared
        reference = reference_point(self.search.store, objectives, history)  # derived (once) from every trial, as the result does
        if reference is None:
            return
        self.writer.add_scalar("search/hypervolume", front_hypervolume(front, objectives, reference), step)
        if not draw:
            return
        from nas.engine.drawing import render_front

        kept, _ = scored(history, objectives)
        members = {r.number for r in front}
        values = np.array([[r.value if o.metric == "score" else r.metrics[o.metric] for o in objectives[:2]] for r in kept], dtype=float)
        on_front = np.array([r.number in members for r in kept], dtype=bool)
        try:
            image = render_front(values, on_front, (str(objectives[0]), str(objectives[1])),
                                 f"{len(kept)} trials, {len(members)} on the front")
        except Exception as exc:  # a picture must never cost the search its results
            self.search.say(f"tensorboard: no picture of the Pareto front: {type(exc).__name__}: {exc}")
            return
        self.writer.add_image("search/pareto_front", image, step, dataformats="HWC")

    def replay(self, history: list[TrialRecord]) -> None:
        """The ``search`` run's points for trials this process did not run (its workers did), in order."""
        best: TrialRecord | None = None
        for record in history:
            best = record if better(record, best) else best
            self._search_scalars(record, best)

    def _pictures(self, top: list[TrialRecord], step: int) -> None:
        """``architecture/rank_K`` images in the ``search`` run: the ``pictures`` best trials, drawn."""
        from nas.engine.drawing import render

        assert self.writer is not None
        for rank, record in enumerate(top, start=1):
            try:
                image = render(self.search.space.diagram(record.arch.sample),
                               f"rank {rank}: trial #{record.number}, score {record.value:.4f}")
            except Exception as exc:  # a space's diagram must never cost the search its results
                self.search.say(f"tensorboard: no picture of trial #{record.number}: {type(exc).__name__}: {exc}")
                continue
            self.writer.add_image(f"architecture/rank_{rank}", image, step, dataformats="HWC")

    def _graph(self, best: TrialRecord) -> None:
        """The best model's graph (TensorBoard's Graphs tab, run ``search``), traced on one input of the
        estimator's shape; estimators that build no model (table lookups) have none."""
        import torch

        estimator = self.search.estimator
        shape, classes = getattr(estimator, "input_shape", None), getattr(estimator, "num_classes", None)
        if shape is None or classes is None or self.search.space.lookup_only:
            return
        assert self.writer is not None
        try:
            model = getattr(estimator, "build_space", self.search.space).build(best.arch.sample, tuple(shape), int(classes))
            if not isinstance(model, torch.nn.Module):
                return
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings about Python values in the forward pass
                self.writer.add_graph(model.eval(), torch.zeros(1, *shape))
        except Exception as exc:  # tracing fails on some forward passes; the rest of the logs stand
            self.search.say(f"tensorboard: no graph of the best model (trial #{best.number}): {type(exc).__name__}: {exc}")

    def _top_runs(self, history: list[TrialRecord]) -> None:
        """A ``trial_NNNN`` run for each of the ``top_k`` best trials, so the HParams view has them."""
        for record in ranked(history)[:self.top_k]:
            if not (self.root / f"trial_{record.number:04d}").exists():
                TrialLog(self.root, record.number).finish(self.search.space, record, arch_text(self.search.space, record.arch, record))
