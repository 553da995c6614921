"""Constraints checked before training: costs measured first, a candidate that breaks a bound is never trained.

:class:`ScreenedEstimator` wraps the search's estimator. For each candidate it measures the cost
providers' metrics (the model built once, untrained: milliseconds); if a constraint breaks, it raises
:class:`Infeasible`, which the search loop records as a failed trial marked ``infeasible`` with the measured
values, outside the trial budget; otherwise the inner estimator runs and the costs join its metrics.
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
                 constraints: Sequence[Constraint]) -> None:
        self.inner, self.space = inner, space
        self.providers, self.constraints = list(providers), tuple(constraints)
        measured = {m for p in self.providers for m in p.metrics}
        unmeasured = [c.metric for c in self.constraints if c.metric not in measured]
        if unmeasured:
            raise ConfigError(f"`constraints` are checked before training, on the costs measured then ({', '.join(sorted(measured))}), "
                              f"but {unmeasured} is not one of them; add its provider to `costs` ({', '.join(PROVIDERS)}).")
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

    def recorded_metrics(self) -> frozenset[str] | None:
        inner = self.inner.recorded_metrics()
        return None if inner is None else inner | {m for p in self.providers for m in p.metrics}

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "costs": [p.describe() for p in self.providers],
                "constraints": [str(c) for c in self.constraints]}

    def fidelity(self) -> dict[str, Any]:
        return self.inner.fidelity()


def screen(estimator: Estimator, space: SearchSpace, costs: Any, constraints: Any, *, wanted: Sequence[str] = ()) -> Estimator:
    """``estimator`` behind the declared ``costs`` (provider names or ``{name: options}``) and ``constraints``
    (``{metric: "<=bound"}``); a constrained metric whose provider is not listed gets it (``params``,
    ``macs``, ``latency_ms`` from ``latency``: what each registered provider declares), and so does a
    ``wanted`` metric (an objective's), even one the estimator records itself: measured before training, it is
    known at every report (what a Pareto pruner ranks by). Unchanged when nothing is asked."""
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
    screened = ScreenedEstimator(estimator, space=space, providers=providers, constraints=bounds)
    check_reachable(screened)
    return screened


#: Random candidates :func:`check_reachable` measures before it says the constraints leave nothing.
PROBES = 200


def check_reachable(screened: ScreenedEstimator, *, probes: int = PROBES, seed: int = 0) -> None:
    """Refuse, before anything runs, constraints that none of ``probes`` random candidates meets (a bound below
    the smallest network of the space, say), naming the closest each got. Only the providers of constrained
    metrics measure (params and MACs take milliseconds per candidate); the first feasible draw ends the check."""
    import numpy as np

    constrained = {c.metric for c in screened.constraints}
    needed = [p for p in screened.providers if constrained & set(p.metrics)]
    if not needed:
        return
    rng = np.random.default_rng(seed)
    closest: dict[Constraint, float] = {}
    for _ in range(probes):
        sample = screened.space.sample(rng)
        try:
            costs = measure(needed, screened.space, sample, input_shape=screened.input_shape, num_classes=screened.num_classes)
        except Exception:  # a candidate that cannot be measured says nothing about the bounds
            continue
        if not violations(screened.constraints, costs):
            return
        for c in screened.constraints:
            closest[c] = min(closest.get(c, float("inf")), c.violation(costs))
    if not closest:
        return  # nothing could be measured: the trials will say why
    near = [f"{c} (the {'least' if c.op == '<=' else 'most'} was {c.bound + v if c.op == '<=' else c.bound - v:,.6g})"
            for c, v in closest.items() if v > 0]
    raise ConfigError(f"`constraints` leave nothing of space '{screened.space.name}' that {probes} random candidates found: "
                      f"none meets {' or '.join(near) if near else 'them all at once'}. Loosen them.")
