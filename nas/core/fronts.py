"""Pareto fronts of trial records under declared objectives (what :mod:`nas.core.pareto` does on arrays).

A trial takes part when it completed and has every objective as a finite number: the estimator's
``score`` is the record's value, any other objective one of its metrics (a latency's median under
``latency_ms``). Trials refused before training never complete, and those outside a constraint judged after
training (``feasible: False``) are left out, so a front holds feasible trials only.

    >>> objectives = parse_objectives({"val_accuracy": "max", "params": "min"})
    >>> front_of(records, objectives)            # doctest: +SKIP
    [TrialRecord(#7 ...), TrialRecord(#2 ...)]    # best first by val_accuracy
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nas.core.errors import ConfigError
from nas.core.objectives import Constraint, Objective
from nas.core.pareto import crowded_ranks, front, hypervolume, minimised
from nas.core.records import TrialRecord

__all__ = ["SCORE", "crowded_standing", "derive_reference", "front_of", "front_hypervolume", "objective_values", "reference_from", "scored", "RunningFront"]

#: The objective that names the estimator's score (the record's value) rather than a metric.
SCORE = "score"


def objective_values(record: TrialRecord, objectives: Sequence[Objective]) -> tuple[float, ...] | None:
    """``record``'s value of each objective, or ``None`` when it is not eligible (not completed, or outside a
    constraint judged after training) or lacks a finite one."""
    if not record.eligible:
        return None
    values = []
    for o in objectives:
        value = record.value if o.metric == SCORE else record.metrics.get(o.metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        values.append(float(value))
    return tuple(values)


def scored(records: Sequence[TrialRecord], objectives: Sequence[Objective]) -> tuple[list[TrialRecord], np.ndarray]:
    """The records that take part, and their objective values as points to minimise (one row each)."""
    kept, rows = [], []
    for record in records:
        values = objective_values(record, objectives)
        if values is not None:
            kept.append(record)
            rows.append(values)
    return kept, minimised(np.array(rows, dtype=float).reshape(-1, len(objectives)), [o.direction for o in objectives])


def crowded_standing(records: Sequence[TrialRecord], objectives: Sequence[Objective]) -> dict[int, tuple[int, float]]:
    """NSGA-II's crowded comparison key of each record that takes part, by trial number: ``(rank, -crowding
    distance)`` within ``records`` (lower is better: the first front, then its least crowded members)."""
    kept, points = scored(records, objectives)
    if not kept:
        return {}
    ranks, crowding = crowded_ranks(points)
    return {r.number: (int(ranks[i]), -float(crowding[i])) for i, r in enumerate(kept)}


def front_of(records: Sequence[TrialRecord], objectives: Sequence[Objective]) -> list[TrialRecord]:
    """The non-dominated records, best first by the first objective (then the next, then trial number)."""
    kept, points = scored(records, objectives)
    members = [kept[i] for i in front(points)] if kept else []
    index = {r.number: i for i, r in enumerate(kept)}
    return sorted(members, key=lambda r: (*points[index[r.number]], r.number))


class RunningFront:
    """The front of every record seen so far, kept by adding the new ones to the last front (a record that
    some record dominates stays dominated), so each update costs the front's size, not the history's."""

    def __init__(self, objectives: Sequence[Objective]) -> None:
        self.objectives = tuple(objectives)
        self.members: list[TrialRecord] = []
        self._seen: set[int] = set()

    def update(self, records: Sequence[TrialRecord]) -> list[TrialRecord]:
        """The front after ``records`` (the whole history, or only its new part; finished records are read once)."""
        new = [r for r in records if r.finished and r.number not in self._seen]
        if new:
            self._seen.update(r.number for r in new)
            self.members = front_of(self.members + new, self.objectives)
        return self.members


def derive_reference(objectives: Sequence[Objective], records: Sequence[TrialRecord],
                     constraints: Sequence[Constraint] = ()) -> tuple[float, ...] | None:
    """A reference point for the hypervolume, in the objectives' own units: per objective, a constraint's
    bound on it where there is one (nothing beyond it is feasible), else ``0`` for an accuracy maximised
    (``*accuracy``, never below 0), else the worst value among the records that take part moved a tenth of
    their range further (so the worst trial on an axis still adds volume). ``None`` with no record."""
    kept, points = scored(records, objectives)
    if not kept:
        return None
    worst, best = points.max(axis=0), points.min(axis=0)
    reference = []
    for column, o in enumerate(objectives):
        bound = next((c.bound for c in constraints if c.metric == o.metric and c.op == ("<=" if o.direction == "min" else ">=")), None)
        if bound is not None:
            reference.append(float(bound))
        elif o.direction == "max" and o.metric.endswith("accuracy"):
            reference.append(0.0)
        else:
            margin = 0.1 * (worst[column] - best[column]) or 0.1 * abs(worst[column]) or 1.0
            minimised_ref = worst[column] + margin
            reference.append(float(-minimised_ref if o.direction == "max" else minimised_ref))
    return tuple(reference)


def front_hypervolume(records: Sequence[TrialRecord], objectives: Sequence[Objective], reference: Sequence[float]) -> float:
    """The volume the records' front dominates up to ``reference`` (objective units, as :func:`derive_reference` gives)."""
    if len(reference) != len(objectives):
        raise ValueError(f"`reference` must have one value per objective ({len(objectives)}), but got {list(reference)!r}.")
    _, points = scored(records, objectives)
    return hypervolume(points, reference=minimised([list(reference)], [o.direction for o in objectives])[0])


def reference_from(spec: Any, objectives: Sequence[Objective]) -> tuple[float, ...] | None:
    """A declared reference point: ``None``, a list (one number per objective, in order) or a mapping
    by metric name; checked here, naming the key."""
    if spec is None:
        return None
    names = [o.metric for o in objectives]
    if isinstance(spec, Mapping):
        missing, extra = [n for n in names if n not in spec], [k for k in spec if k not in names]
        if missing or extra:
            raise _bad_reference(f"must give a value for each objective ({', '.join(names)})", spec)
        spec = [spec[n] for n in names]
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence) or len(spec) != len(names):
        raise _bad_reference(f"must give one number per objective ({', '.join(names)})", spec)
    values = []
    for value in spec:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _bad_reference("must hold finite numbers", spec)
        values.append(float(value))
    return tuple(values)


def _bad_reference(what: str, spec: Any) -> ConfigError:
    return ConfigError(f"`reference` {what}, but got {spec!r}.")
