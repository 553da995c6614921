"""Pareto fronts on plain arrays: non-dominated sorting, crowding distance, exact hypervolume.

Every function takes points to **minimise**, one row per candidate and one column per objective;
:func:`minimised` turns values with mixed directions (``max`` accuracy, ``min`` latency) into that
form. No torch, no Optuna: the strategies, the result and the benchmarks share these.

    >>> points = minimised([[0.9, 3.0], [0.8, 1.0], [0.7, 2.0]], ["max", "min"])
    >>> nondominated_ranks(points).tolist()
    [0, 0, 1]
    >>> round(hypervolume(points, reference=minimised([[0.0, 4.0]], ["max", "min"])[0]), 6)
    2.5
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["crowded_ranks", "crowding_distance", "dominates", "front", "hypervolume", "minimised", "nondominated_ranks"]


def minimised(values: Any, directions: Sequence[str]) -> np.ndarray:
    """``values`` (rows of objective values) as points to minimise: ``max`` columns negated."""
    points = np.array(values, dtype=float).reshape(-1, len(directions))
    for column, direction in enumerate(directions):
        if direction not in ("max", "min"):
            raise ValueError(f"`directions[{column}]` must be 'max' or 'min', but got {direction!r}.")
        if direction == "max":
            points[:, column] *= -1
    return points


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` is no worse than ``b`` in every objective and better in one (minimising)."""
    return bool(np.all(a <= b) and np.any(a < b))


def nondominated_ranks(points: Any) -> np.ndarray:
    """The front each point lies on: 0 for the non-dominated ones, 1 for those only they dominate, ...
    (Deb et al.'s fast non-dominated sort, O(M N^2)). Equal points share a rank."""
    p = np.asarray(points, dtype=float)
    n = len(p)
    ranks = np.full(n, -1, dtype=int)
    if n == 0:
        return ranks
    no_worse = np.all(p[:, None, :] <= p[None, :, :], axis=2)
    better = np.any(p[:, None, :] < p[None, :, :], axis=2)
    dominated_by = no_worse & better  # [i, j]: i dominates j
    counts = dominated_by.sum(axis=0)  # how many dominate each point
    current = np.flatnonzero(counts == 0)
    rank = 0
    while current.size:
        ranks[current] = rank
        counts = counts - dominated_by[current].sum(axis=0)
        counts[ranks >= 0] = -1
        current = np.flatnonzero(counts == 0)
        rank += 1
    return ranks


def front(points: Any) -> np.ndarray:
    """Indices of the non-dominated points, in their input order."""
    return np.flatnonzero(nondominated_ranks(points) == 0)


def crowding_distance(points: Any) -> np.ndarray:
    """NSGA-II's crowding distance of each point within its set: the sum over objectives of the gap
    between its neighbours, scaled by the objective's range; the extremes get ``inf``."""
    p = np.atleast_2d(np.asarray(points, dtype=float))
    distance = np.zeros(len(p))
    if len(p) <= 2:
        return np.full(len(p), np.inf)
    for column in range(p.shape[1]):
        order = np.argsort(p[:, column], kind="stable")
        values = p[order, column]
        span = values[-1] - values[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (values[2:] - values[:-2]) / span
    return distance


def crowded_ranks(points: Any) -> tuple[np.ndarray, np.ndarray]:
    """NSGA-II's crowded comparison of each point: its non-dominated rank and its crowding distance within
    its front (the lower rank first, then the larger distance)."""
    p = np.asarray(points, dtype=float)
    ranks = nondominated_ranks(p)
    crowding = np.zeros(len(p))
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        crowding[members] = crowding_distance(p[members])
    return ranks, crowding


def hypervolume(points: Any, reference: Any) -> float:
    """The exact volume the points dominate inside the box up to ``reference`` (minimising); points
    not strictly better than ``reference`` in every objective add nothing. Two objectives: a sweep,
    O(N log N); more: slicing along the last objective (fine for fronts of a few hundred points)."""
    ref = np.asarray(reference, dtype=float).ravel()
    p = np.asarray(points, dtype=float).reshape(-1, len(ref))
    p = p[np.all(p < ref, axis=1)]
    if len(p) == 0:
        return 0.0
    p = p[front(p)]
    return float(_volume(p, ref))


def _volume(p: np.ndarray, ref: np.ndarray) -> float:
    if p.shape[1] == 1:
        return float(ref[0] - p[:, 0].min())
    if p.shape[1] == 2:
        order = np.argsort(p[:, 0], kind="stable")
        volume, best_y = 0.0, ref[1]
        for x, y in p[order]:
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return volume
    order = np.argsort(p[:, -1], kind="stable")  # slices between successive values of the last objective
    p = p[order]
    volume = 0.0
    for i in range(len(p)):
        upper = p[i + 1, -1] if i + 1 < len(p) else ref[-1]
        height = upper - p[i, -1]
        if height > 0:
            below = p[:i + 1, :-1]
            volume += height * _volume(below[front(below)], ref[:-1])
    return volume
