"""Constraints checked before training: costs measured first, a candidate that breaks a bound is never trained.

:class:`ScreenedEstimator` wraps the search's estimator. For each candidate it measures the cost
providers' metrics (the model built once, untrained: milliseconds); if a constraint breaks, it raises
:class:`Infeasible`, which the search loop records as a failed trial marked ``infeasible`` with the measured
values, outside the trial budget; otherwise the inner estimator runs and the costs join its metrics.
A constraint on a metric no provider measures (``val_accuracy >= 0.9``, a callback's figure) can only be
judged once the candidate is trained: the loop does it (:func:`nas.core.objectives.judged_after_training`),
the trial counts against the budget, stays complete and is left out of the best and the front.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError, Infeasible
from nas.core.objectives import VIOLATION, Constraint, parse_constraints, violations
from nas.core.space import SearchSpace
from nas.costs.base import CostProvider, measure
from nas.costs.providers import PROVIDERS, make_providers
from nas.estimators.base import Estimator, Evaluation, Report

__all__ = ["Infeasible", "ScreenedEstimator", "screen"]


class ScreenedEstimator(Estimator):
    """``inner`` behind a cost check; everything else (fidelity, weights, data) is ``inner``'s."""

    def __init__(self, inner: Estimator, *, space: SearchSpace, providers: Sequence[CostProvider],
                 constraints: Sequence[Constraint], callback_metrics: Sequence[str] = ()) -> None:
        self.inner, self.space = inner, space
        self.providers = list(providers)
        measured = {m for p in self.providers for m in p.metrics}
        self.constraints = tuple(c for c in constraints if c.metric in measured)  # judged here, before training
        self.after = tuple(c for c in constraints if c.metric not in measured)  # judged by the loop on the trained trial
        recorded = inner.recorded_metrics()
        if recorded is not None:
            known = {*recorded, *measured, *callback_metrics, "score"}
            unknown = [c.metric for c in self.after if c.metric not in known]
            if unknown:
                raise ConfigError(f"`constraints.{unknown[0]}` must name a metric a trial has: a cost measured before training "
                                  f"({', '.join(PROVIDERS)} providers: {', '.join(sorted(measured)) or 'none listed'}), or one "
                                  f"measured after ({', '.join(sorted(known - measured))}), but got {unknown[0]!r}.")
        if any(p.needs_model for p in self.providers) and not inner.input_shape:
            raise ConfigError("`costs` that measure a network (params, macs, latency) need an estimator that builds one (with an "
                              f"input shape), but the estimator ({type(inner).__name__}) builds none; use a `table` cost.")
        self.cheap, self.trains, self.needs_data = inner.cheap, inner.trains, inner.needs_data
        self.inherits_weights, self.input_shape, self.num_classes = inner.inherits_weights, inner.input_shape, inner.num_classes
        self.score_metric = inner.score_metric

    def __getattr__(self, name: str) -> Any:  # the inner estimator's own settings (space, dataset, ...)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def evaluate(self, arch: Architecture, report: Report, **kwargs: Any) -> Evaluation:
        costs = measure(self.providers, self.space, arch.sample, input_shape=self.input_shape, num_classes=self.num_classes)
        # each constraint's violation (<= 0: met) is kept too: Optuna's samplers are told it (`constraints:` system attrs)
        costs.update({VIOLATION + c.metric: c.violation(costs) for c in self.constraints})
        broken = violations(self.constraints, costs)
        if broken:
            raise Infeasible("infeasible before training: " + "; ".join(broken), {**costs, "infeasible": True})
        measured = getattr(report, "measured", None)
        if callable(measured):  # the search's reporter: the costs join each report's objective vector
            measured(costs)
        evaluation = self.inner.evaluate(arch, report, **kwargs)
        return dataclasses.replace(evaluation, metrics={**costs, **evaluation.metrics})

    def constraints_after_training(self) -> tuple[Constraint, ...]:
        return self.after

    def recorded_metrics(self) -> frozenset[str] | None:
        inner = self.inner.recorded_metrics()
        return None if inner is None else inner | {m for p in self.providers for m in p.metrics}

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "costs": [p.describe() for p in self.providers],
                "constraints": [str(c) for c in (*self.constraints, *self.after)]}

    def fidelity(self) -> dict[str, Any]:
        return self.inner.fidelity()


def screen(estimator: Estimator, space: SearchSpace, costs: Any, constraints: Any, *, wanted: Sequence[str] = (),
           callback_metrics: Sequence[str] = ()) -> Estimator:
    """``estimator`` behind the declared ``costs`` (provider names or ``{name: options}``) and ``constraints``
    (``{metric: "<=bound"}``); a constrained metric whose provider is not listed gets it (``params``,
    ``macs``, ``latency_ms`` from ``latency``: what each registered provider declares), and so does a
    ``wanted`` metric (an objective's), even one the estimator records itself: measured before training, it is
    known at every report (what a Pareto pruner ranks by). A constraint on any other metric (an accuracy, a
    ``callback_metrics`` figure) is judged after training. Unchanged when nothing is asked."""
    bounds = parse_constraints(constraints)
    listed = list(costs or [])
    providers = make_providers(listed)
    implied = {metric: name for name, cls in PROVIDERS.items() for metric in cls.metrics}  # latency_ms -> latency
    needed = [c.metric for c in bounds] + list(wanted)
    for metric in needed:
        if metric in implied and metric not in {m for p in providers for m in p.metrics}:
            providers += make_providers([implied[metric]])
    if not providers and not bounds:
        return estimator
    screened = ScreenedEstimator(estimator, space=space, providers=providers, constraints=bounds, callback_metrics=callback_metrics)
    check_reachable(screened)
    return screened


#: Random candidates :func:`check_reachable` measures before it descends from the closest.
PROBES = 200
#: Steps of that descent (each measures the neighbours of one candidate), at most.
DESCENT_STEPS = 100


def check_reachable(screened: ScreenedEstimator, *, probes: int = PROBES, seed: int = 0) -> None:
    """Refuse, before anything runs, constraints no candidate of the space meets (a bound below the smallest
    network of the space, say), naming the closest value reached. ``probes`` random candidates first; when none
    meets them, a descent from the closest (to the neighbour, one dimension changed, that is least outside the
    bounds, until none is nearer) reaches the space's smallest architecture for costs that grow with each
    choice (params, MACs, latency). Only the providers of constrained metrics measure (milliseconds per
    candidate); the first feasible candidate ends the check."""
    import numpy as np

    constrained = {c.metric for c in screened.constraints}
    needed = [p for p in screened.providers if constrained & set(p.metrics)]
    if not needed:
        return
    space, rng = screened.space, np.random.default_rng(seed)
    closest: dict[Constraint, float] = {}

    def outside(sample: Any) -> float | None:  # how far outside the bounds, relative to each bound; None: unmeasurable
        try:
            costs = measure(needed, space, sample, input_shape=screened.input_shape, num_classes=screened.num_classes)
        except Exception:  # a candidate that cannot be measured says nothing about the bounds
            return None
        gaps = {c: c.violation(costs) for c in screened.constraints}
        for c, gap in gaps.items():
            closest[c] = min(closest.get(c, float("inf")), gap)
        return sum(max(gap, 0.0) / max(abs(c.bound), 1e-12) for c, gap in gaps.items())

    start, distance = None, float("inf")
    for _ in range(probes):
        sample = space.sample(rng)
        gap = outside(sample)
        if gap == 0.0:
            return
        if gap is not None and gap < distance:
            start, distance = sample, gap
    if start is None:
        return  # nothing could be measured: the trials will say why
    steps = 0
    while steps < DESCENT_STEPS:
        steps += 1
        measured = [(gap, n) for n in space.neighbors(start, rng) if (gap := outside(n)) is not None]
        if any(gap == 0.0 for gap, _ in measured):
            return
        nearer = min(measured, key=lambda pair: pair[0], default=None)
        if nearer is None or nearer[0] >= distance:
            break
        distance, start = nearer
    near = [f"{c} (the {'least' if c.op == '<=' else 'most'} was {c.bound + v if c.op == '<=' else c.bound - v:,.6g})"
            for c, v in closest.items() if v > 0]
    raise ConfigError(f"`constraints` leave nothing of space '{space.name}': none of {probes} random candidates, nor the "
                      f"smallest a descent from the closest reached ({steps} steps: `{space.format(start)}`), meets "
                      f"{' or '.join(near) if near else 'them all at once'}. Loosen them.")
