"""Successive halving with several objectives: a rung promotes by non-dominated rank (MOASHA's rule).

Syne Tune's MOASHA (Schmucker et al. 2021) keeps ASHA's asynchronous rungs and replaces "the top
1/eta by the score" with "the top 1/eta by non-dominated sorting" of each trial's objective vector at
the rung. Here it is an Optuna pruner on our single study: the study's value stays the estimator's
score, and each report of a search with several objectives also stores the trial's objective vector at
that step (``nas:objectives@<step>``, one user attribute: the score, the scalars the estimator reports
such as ``test_accuracy``, and the costs measured before training, which do not change). Those stored
vectors are the per-objective curves of every trial, pruned or not.

At the rung steps ``min_resource * reduction_factor ** (min_early_stopping_rate + k)`` a trial goes on
if it is among the best ``max(1, n // reduction_factor)`` of the ``n`` trials that reached the rung so far
(running ones included, as in ASHA), ranked by NSGA-II's crowded comparison: the lower non-dominated
rank first, then the larger crowding distance. A missing or non-finite value counts as the worst.

Hyperband with several objectives (:class:`ParetoHyperbandPruner`) is Optuna's HyperbandPruner with
these rungs: ``floor(log_eta(max_resource / min_resource)) + 1`` brackets, bracket ``b`` a
:class:`ParetoSuccessiveHalvingPruner` with ``min_early_stopping_rate = b``, each trial in one bracket
(chosen as Optuna does, by a CRC32 of the study name and trial number weighted by the brackets'
budgets, so the same trial lands in the same bracket on every worker) and ranked only against the
trials of its bracket.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import optuna

from nas.core.errors import ConfigError
from nas.core.pareto import crowded_ranks, minimised
from nas.store.optuna_store import vector_attr

__all__ = ["ParetoHyperbandPruner", "ParetoSuccessiveHalvingPruner", "crowded_position", "vector_attr"]

class ParetoSuccessiveHalvingPruner(optuna.pruners.BasePruner):
    """Asynchronous successive halving that promotes by non-dominated rank; see the module docstring.
    ``directions`` (``["max", "min"]``, one per objective, in the order of the stored vectors)."""

    def __init__(self, directions: Sequence[str], *, min_resource: int = 1, reduction_factor: int = 3,
                 min_early_stopping_rate: int = 0) -> None:
        checks = {"min_resource": (min_resource, 1), "reduction_factor": (reduction_factor, 2),
                  "min_early_stopping_rate": (min_early_stopping_rate, 0)}
        for key, (value, low) in checks.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"pruner 'successive_halving' with several objectives: `{key}` must be an integer >= {low}, "
                                  f"but got {value!r}.")
        if len(directions) < 2 or any(d not in ("max", "min") for d in directions):
            raise ConfigError(f"pruner 'successive_halving' with several objectives: `directions` must be two or more of max/min, "
                              f"but got {list(directions)!r}.")
        self.directions = list(directions)
        self.min_resource, self.reduction_factor = min_resource, reduction_factor
        self.min_early_stopping_rate = min_early_stopping_rate

    def rung_steps(self, up_to: int) -> list[int]:
        """The rung steps up to ``up_to``."""
        steps, k = [], 0
        while (step := self.min_resource * self.reduction_factor ** (self.min_early_stopping_rate + k)) <= up_to:
            steps.append(step)
            k += 1
        return steps

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return self.stops(trial, study.get_trials(deepcopy=False))

    def stops(self, trial: optuna.trial.FrozenTrial, competitors: Iterable[optuna.trial.FrozenTrial]) -> bool:
        """Whether ``trial``, at its last report, is below the top 1/eta of ``competitors`` at that rung."""
        step = trial.last_step
        if step is None or step not in self.rung_steps(step):
            return False
        key = vector_attr(step)
        mine = trial.user_attrs.get(key)
        if mine is None:
            return False  # a report without its vector (a single-objective caller): nothing to rank it by
        others = [t.user_attrs[key] for t in competitors if t.number != trial.number and key in t.user_attrs]
        vectors = [mine, *others]
        keep = max(1, len(vectors) // self.reduction_factor)
        return bool(crowded_position(vectors, self.directions)[0] >= keep)


class ParetoHyperbandPruner(optuna.pruners.BasePruner):
    """Hyperband whose brackets promote by non-dominated rank; see the module docstring. ``max_resource``:
    the epochs of a full trial, or ``"auto"`` (from the first trial that completes, as Optuna's; no trial is
    stopped before then)."""

    def __init__(self, directions: Sequence[str], *, min_resource: int = 1, max_resource: int | str = "auto",
                 reduction_factor: int = 3) -> None:
        ParetoSuccessiveHalvingPruner(directions, min_resource=min_resource, reduction_factor=reduction_factor)  # checks them
        if max_resource != "auto" and (isinstance(max_resource, bool) or not isinstance(max_resource, int)
                                       or max_resource < min_resource):
            raise ConfigError(f"pruner 'hyperband' with several objectives: `max_resource` must be 'auto' or an integer >= "
                              f"min_resource ({min_resource}), but got {max_resource!r}.")
        self.directions = list(directions)
        self.min_resource, self.reduction_factor, self.max_resource = min_resource, reduction_factor, max_resource
        self.brackets: list[ParetoSuccessiveHalvingPruner] = []
        self._budgets: list[int] = []

    def _initialise(self, study: optuna.Study) -> bool:
        if self.max_resource == "auto":
            done = [t.last_step for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                    if t.last_step is not None]
            if not done:
                return False
            self.max_resource = max(done) + 1
        assert isinstance(self.max_resource, int)
        count = math.floor(math.log(self.max_resource / self.min_resource, self.reduction_factor) + 1e-9) + 1
        self.brackets = [ParetoSuccessiveHalvingPruner(self.directions, min_resource=self.min_resource,
                                                       reduction_factor=self.reduction_factor, min_early_stopping_rate=b)
                         for b in range(count)]
        self._budgets = [math.ceil(count * self.reduction_factor ** (count - 1 - b) / (count - b)) for b in range(count)]
        return True

    def bracket_of(self, study_name: str, number: int) -> int:
        """The bracket of trial ``number`` (Optuna's rule: CRC32 of ``"<study>_<number>"`` over the budgets)."""
        left = binascii.crc32(f"{study_name}_{number}".encode()) % sum(self._budgets)
        for bracket, budget in enumerate(self._budgets):
            left -= budget
            if left < 0:
                return bracket
        raise AssertionError("unreachable: the budgets sum to the modulus")

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if not self.brackets and not self._initialise(study):
            return False
        mine = self.bracket_of(study.study_name, trial.number)
        same = (t for t in study.get_trials(deepcopy=False) if self.bracket_of(study.study_name, t.number) == mine)
        return self.brackets[mine].stops(trial, same)


def crowded_position(vectors: Sequence[Sequence[Any]], directions: Sequence[str]) -> np.ndarray:
    """Each vector's place (0 = best) in NSGA-II's crowded order; missing or non-finite values are the worst."""
    raw = np.array([[_number(v) for v in vector] for vector in vectors], dtype=float).reshape(len(vectors), len(directions))
    points = minimised(raw, directions)
    for column in range(points.shape[1]):  # the worst: beyond every finite value of its objective
        finite = np.isfinite(points[:, column])
        worst = points[finite, column].max() + 1.0 if finite.any() else 0.0
        points[~finite, column] = worst
    ranks, crowding = crowded_ranks(points)
    order = sorted(range(len(points)), key=lambda i: (ranks[i], -crowding[i], i))
    position = np.empty(len(points), dtype=int)
    position[order] = np.arange(len(points))
    return position


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return float("nan")
    return float(value)
