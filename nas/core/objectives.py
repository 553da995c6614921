"""Objectives and constraints on a trial's metrics, as declared (``{val_accuracy: max}``, ``{params: "<=5e4"}``).

Declarations are checked here, before anything runs; errors name the key, what must hold and what was
received. A constraint's *violation* follows Optuna's ``constraints_func`` convention (feasible where it
is ``<= 0``), so the same numbers serve our strategies and Optuna's samplers.

    >>> objectives = parse_objectives({"val_accuracy": "max", "latency_ms": "min"})
    >>> constraints = parse_constraints({"params": "<=50000"})
    >>> constraints[0].violation({"params": 60_000})
    10000.0
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nas.core.errors import ConfigError

__all__ = ["VIOLATION", "Constraint", "Objective", "judged_after_training", "parse_constraints", "parse_objectives", "violations"]

#: Metric prefix of a constraint's violation, recorded with every screened trial (``violation_params``) and
#: handed to Optuna's samplers as the trial's ``constraints:params`` (what ``Trial.set_constraint`` writes).
VIOLATION = "violation_"

DIRECTIONS = {"max": "max", "maximize": "max", "min": "min", "minimize": "min"}
_BOUND = re.compile(r"^\s*(<=|>=)\s*([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Objective:
    """A metric to maximise (``direction="max"``) or minimise."""

    metric: str
    direction: str

    @property
    def optuna_direction(self) -> str:
        return "maximize" if self.direction == "max" else "minimize"

    def __str__(self) -> str:
        return f"{self.metric}: {self.direction}"


@dataclass(frozen=True)
class Constraint:
    """``metric <= bound`` or ``metric >= bound``; a metric with a spread (a latency) is judged on its median,
    the value recorded under its name."""

    metric: str
    op: str
    bound: float

    def violation(self, metrics: Mapping[str, Any]) -> float:
        """How far ``metrics`` is outside the bound: ``<= 0`` where it holds (Optuna's convention)."""
        if self.metric not in metrics:
            raise ConfigError(f"constraint `{self}` needs metric `{self.metric}`, but the trial has only "
                              f"{', '.join(sorted(metrics)) or 'none'}.")
        value = float(metrics[self.metric])
        if math.isnan(value):
            return math.inf  # an unmeasurable metric meets no bound
        return value - self.bound if self.op == "<=" else self.bound - value

    def holds(self, metrics: Mapping[str, Any]) -> bool:
        return self.violation(metrics) <= 0

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


def parse_objectives(spec: Any) -> tuple[Objective, ...]:
    """``None`` (the estimator's score, maximised: single-objective search), a metric name (maximised), or a
    mapping of metric names to ``max`` / ``min`` (also ``maximize`` / ``minimize``), in priority order."""
    if spec is None:
        return ()
    if isinstance(spec, str):
        spec = {spec: "max"}
    out = []
    for metric, direction in _by_metric("objectives", spec, "max or min (e.g. {val_accuracy: max, latency_ms: min})"):
        if not isinstance(direction, str) or direction.lower() not in DIRECTIONS:
            raise ConfigError(f"`objectives.{metric}` must be max or min, but got {direction!r}.")
        out.append(Objective(metric, DIRECTIONS[direction.lower()]))
    return tuple(out)


def parse_constraints(spec: Any) -> tuple[Constraint, ...]:
    """``None`` (or an empty mapping) or a mapping of metric names to bounds: ``"<= 50000"``, ``">=0.9"``, ``"<=5e6"``."""
    if spec is None or (isinstance(spec, Mapping) and not spec):
        return ()
    out = []
    for metric, bound in _by_metric("constraints", spec, "bounds (e.g. {params: '<=50000', latency_ms: '<=2.0'})"):
        match = _BOUND.match(bound) if isinstance(bound, str) else None
        if match is None:
            raise ConfigError(f"`constraints.{metric}` must read '<= NUMBER' or '>= NUMBER' (e.g. '<=50000', '>= 0.9'), "
                              f"but got {bound!r}.")
        value = float(match.group(2))
        if not math.isfinite(value):
            raise ConfigError(f"`constraints.{metric}` must bound by a finite number, but got {bound!r}.")
        out.append(Constraint(metric, match.group(1), value))
    return tuple(out)


def _by_metric(key: str, spec: Any, what: str) -> list[tuple[str, Any]]:
    """``spec``'s items, checked to be a non-empty mapping keyed by metric names."""
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(f"`{key}` must map metric names to {what}, but got {spec!r}.")
    for metric in spec:
        if not isinstance(metric, str) or not metric.isidentifier():
            raise ConfigError(f"`{key}` keys must be metric names, but got {metric!r}.")
    return list(spec.items())


def judged_after_training(constraints: Sequence[Constraint], metrics: Mapping[str, Any]) -> dict[str, Any]:
    """What a trained trial's record gains from the constraints on metrics known only after training (an
    accuracy, a callback's figure): each ``violation_<metric>`` (a missing metric meets no bound) and, when
    one breaks, ``feasible: False`` and ``infeasible_reason`` (the trial stays complete, out of the front)."""
    if not constraints:
        return {}
    judged: dict[str, Any] = {VIOLATION + c.metric: c.violation(metrics) if c.metric in metrics else math.inf for c in constraints}
    broken = [f"{c.metric} missing" if c.metric not in metrics else violations((c,), metrics)[0]
              for c in constraints if judged[VIOLATION + c.metric] > 0]
    if broken:
        judged.update(feasible=False, infeasible_reason="infeasible after training: " + "; ".join(broken))
    return judged


def violations(constraints: Sequence[Constraint], metrics: Mapping[str, Any]) -> list[str]:
    """The constraints ``metrics`` breaks, each as ``"params 61,000 > 50000"``; empty where all hold."""
    broken = []
    for c in constraints:
        if not c.holds(metrics):
            side = ">" if c.op == "<=" else "<"
            broken.append(f"{c.metric} {float(metrics[c.metric]):,.6g} {side} {c.bound:g}")
    return broken
