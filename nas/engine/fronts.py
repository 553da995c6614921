"""A search with several objectives: checked before it runs, declared with the study, its front kept.

:func:`check_objectives` refuses, before any training, objectives the trials cannot have (a metric the
estimator does not record), a lone objective other than the score, and a strategy that ranks by one
score. :func:`declare_objectives` keeps the objectives and the declared reference point in the study's
attributes, where every worker and :func:`nas.load` find them. :class:`FrontCheckpoints` keeps the trained
weights of every trial on the Pareto front under ``front/<number>/``, for ``result.best_model(trial=n)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError
from nas.core.fronts import SCORE, RunningFront, derive_reference
from nas.core.objectives import Constraint, Objective
from nas.core.records import TrialRecord
from nas.core.strategy import Strategy
from nas.engine.rundir import KeptCheckpoints
from nas.store.base import TrialStore

__all__ = ["FRONT_DIR", "OBJECTIVES_ATTR", "REFERENCE_ATTR", "FrontCheckpoints", "check_objectives", "declare_objectives",
           "constraints_of", "objectives_of", "reference_point"]

FRONT_DIR = "front"
#: The study attributes: ``[[metric, direction], ...]`` and ``[value, ...]`` (objective units).
OBJECTIVES_ATTR, REFERENCE_ATTR, CONSTRAINTS_ATTR = "nas:objectives", "nas:reference", "nas:constraints"


def check_objectives(objectives: Sequence[Objective], estimator: Any, strategy: Strategy,
                     callback_metrics: Sequence[str] = ()) -> None:
    """Refuse what cannot be searched, naming the key: see the module docstring. ``callback_metrics``: what the
    search's callbacks add to each completed trial (:attr:`nas.Callback.metrics`)."""
    if not objectives:
        return
    recorded = estimator.recorded_metrics()
    score = estimator.score_metric
    if recorded is not None:
        known = sorted({SCORE, *recorded, *callback_metrics})
        for o in objectives:
            if o.metric not in known:
                raise ConfigError(f"`objectives.{o.metric}` must name a metric every trial records ({', '.join(known)}; a cost "
                                  f"such as latency_ms is measured when named; a callback adds its own `metrics`), but the trials have no {o.metric!r}.")
    if len(objectives) == 1:
        (only,) = objectives
        if only.metric not in (SCORE, score) or only.direction != "max":
            raise ConfigError(f"`objectives` with one entry must be the estimator's score ({score or SCORE}: max), which the search "
                              f"maximises anyway, but got {{{only}}}; give {only.metric} beside it "
                              f"({{{score or SCORE}: max, {only.metric}: {only.direction}}}) or bound it with `constraints`.")
        return
    if not strategy.multi_objective:
        raise ConfigError(f"`objectives` names {len(objectives)} objectives, but strategy '{strategy.name}' ranks trials by the "
                          "one score; use one that searches a Pareto front: random, grid, evolution, bo, nsga2, nsga3, motpe (or one objective).")


def declare_objectives(store: TrialStore, objectives: Sequence[Objective], reference: Sequence[float] | None,
                       constraints: Sequence[Constraint] = ()) -> None:
    """Keep ``objectives`` (and a declared ``reference``, and the ``constraints`` a derived one heeds) with the
    study; a study that holds other objectives is refused."""
    if len(objectives) < 2:
        return
    attrs = store.study_attrs()
    declared = [[o.metric, o.direction] for o in objectives]
    before = attrs.get(OBJECTIVES_ATTR)
    if before is not None and before != declared:
        raise ConfigError(f"`objectives` must be the study's own ({', '.join(f'{m}: {d}' for m, d in before)}) to continue it, but got "
                          f"{', '.join(map(str, objectives))}; use a new run_dir or study_name.")
    if before is None:
        store.set_study_attr(OBJECTIVES_ATTR, declared)
    if reference is not None and attrs.get(REFERENCE_ATTR) != list(reference):
        store.set_study_attr(REFERENCE_ATTR, list(reference))
    bounds = [[c.metric, c.op, c.bound] for c in constraints]
    if attrs.get(CONSTRAINTS_ATTR, []) != bounds:
        store.set_study_attr(CONSTRAINTS_ATTR, bounds)


def reference_point(store: TrialStore, objectives: Sequence[Objective], trials: Sequence[TrialRecord]) -> tuple[float, ...] | None:
    """The study's hypervolume reference point: as declared, else derived now from ``trials`` and kept in the
    study (so every later hypervolume compares); ``None`` before any trial completed with every objective."""
    kept = store.study_attrs().get(REFERENCE_ATTR)
    if kept is not None:
        return tuple(float(v) for v in kept)
    point = derive_reference(objectives, trials, constraints_of(store))
    if point is not None:
        store.set_study_attr(REFERENCE_ATTR, list(point))
    return point


def constraints_of(store: TrialStore) -> tuple[Constraint, ...]:
    """The constraints a study with several objectives was searched under."""
    return tuple(Constraint(str(m), str(op), float(b)) for m, op, b in store.study_attrs().get(CONSTRAINTS_ATTR) or ())


def objectives_of(store: TrialStore) -> tuple[Objective, ...]:
    """The objectives a study was searched under (empty: its score alone)."""
    return tuple(Objective(str(m), str(d)) for m, d in store.study_attrs().get(OBJECTIVES_ATTR) or ())


class FrontCheckpoints(KeptCheckpoints):
    """``front/<n>/`` (weights, ``arch.json``, preprocessing) for each trial of this process on the front;
    a trial that leaves the front loses its folder (:class:`~nas.engine.rundir.KeptCheckpoints`)."""

    def __init__(self, run_dir: str | Path, objectives: Sequence[Objective]) -> None:
        super().__init__(run_dir, FRONT_DIR)
        self.front = RunningFront(objectives)

    def members(self, history: list[TrialRecord]) -> set[int]:
        return {r.number for r in self.front.update(history)}
