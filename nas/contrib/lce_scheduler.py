"""The learning-curve scheduler behind ``pruner=lce``: successive halving on denoised curves, with early acceptance.

Rungs at ``min_resource * reduction_factor ** k`` epochs, as in asynchronous successive halving
(ASHA): at each rung a trial goes on only if it is in the top ``1 / reduction_factor`` of the trials
that reached that rung so far. Two things differ:

- **Promotion by the curve's level, not its last value.** A trial is ranked at a rung by
  :func:`curve_score`: with ``score="level"`` the mean of the second half of the epochs it ran
  (the curve's current level with the epoch-to-epoch noise averaged out), ``"last"`` the value
  seen (Optuna's rule), ``"trend"`` a least-squares line in log-epoch evaluated at the acceptance
  epoch (an extrapolation). On the NAS-Bench-201 curves (``experiments/lce_scheduler.py``) a
  value seen in the middle of a cosine schedule ranks architectures worse than the value seen
  after one epoch does; the level ranks them better than either.
- **Early acceptance.** A trial that reaches the acceptance rung (``accept_at`` epochs) is stopped
  there and *accepted*: it is complete, its value the level at that epoch (its last validation
  accuracy is kept as ``val_accuracy``). Nobody trains to the end during the search; the epochs
  saved go to new candidates, and the search's final phase (``final.retrain_top_k``, which a
  search with this pruner sets to 2 unless told otherwise) trains the best two at full fidelity.
  ``accept_at=null`` turns acceptance off: trials past the last rung train to the end, and
  ``threshold`` then also stops, at a rung, a trial whose extrapolated final value
  (:class:`~nas.contrib.lce_pruner.LearningCurvePruner`, calibrated on the completed trials) is
  unlikely to beat the best one's.

Only public Optuna calls: every decision is recomputed from the trials' intermediate values
(``study.get_trials``), so several workers on one storage share the rungs; scores of finished
prefixes are cached. A check costs well under a millisecond at 200 reported points
(``experiments/lce_scheduler.py`` measures it); reports between rungs cost nothing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.core.errors import ConfigError, unknown_name_message

__all__ = ["SCORES", "LearningCurveScheduler", "curve_score"]

#: How a curve prefix is scored at a rung (see :func:`curve_score`).
SCORES = ("level", "last", "trend")


def curve_score(values: Any, how: str = "level", at: float | None = None) -> float:
    """The score of a curve prefix ``values`` (epochs 1..k, in the direction of improvement or not:
    the scores only need to rank). ``level``: the mean of the last ``ceil(k / 2)`` values; ``last``:
    the last value; ``trend``: the least-squares line through ``(log epoch, value)`` evaluated at
    epoch ``at`` (default k)."""
    y = np.asarray(values, dtype=float)
    if how == "last" or y.size == 1:
        return float(y[-1])
    if how == "level":
        return float(y[y.size // 2:].mean())
    if how == "trend":
        x = np.log(np.arange(1.0, y.size + 1.0))
        slope, intercept = np.polyfit(x, y, 1)
        return float(intercept + slope * math.log(at if at is not None else y.size))
    raise ConfigError("pruner 'lce': " + unknown_name_message("score", how, SCORES))


class LearningCurveScheduler(optuna.pruners.BasePruner):
    """Asynchronous successive halving ranked by the curve's level, with early acceptance (module docstring).

    ``min_resource`` (epochs before the first rung, >= 1), ``reduction_factor`` (>= 2: the top
    ``1/reduction_factor`` go on), ``accept_at`` (epochs at which a trial that got there is accepted:
    ``"auto"``, the largest rung at or below a sixth of the horizon, at least the first rung; an
    integer; or ``None``, no acceptance), ``score`` (:data:`SCORES`), ``horizon`` (epochs of a full
    trial; ``None``: the search's ``estimator.epochs``, else the longest completed trial),
    ``threshold`` (with ``accept_at=None`` only: also stop at a rung a trial whose probability of
    beating the best completed one is below it; ``None``: off).

    The runner asks :meth:`accepted` right after :meth:`prune` said stop: a number means the trial is
    accepted with that value (complete), ``None`` that it is pruned. Decisions are kept in
    :attr:`checks` (trial number -> the last one).

        pruner = nas.contrib.lce_scheduler.LearningCurveScheduler(reduction_factor=2, accept_at=32)
        nas.search(..., pruner=pruner)
    """

    def __init__(self, *, min_resource: int = 1, reduction_factor: int = 2, accept_at: int | str | None = "auto",
                 score: str = "level", horizon: int | None = None, threshold: float | None = None, seed: int | None = None) -> None:
        def whole(value: Any, low: int) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= low

        if not whole(min_resource, 1):
            raise ConfigError(f"pruner 'lce': `min_resource` must be an integer >= 1 (epochs before the first rung), but got "
                              f"{min_resource!r}.")
        if not whole(reduction_factor, 2):
            raise ConfigError(f"pruner 'lce': `reduction_factor` must be an integer >= 2 (the top 1/reduction_factor go on at a rung), "
                              f"but got {reduction_factor!r}.")
        if not (accept_at is None or accept_at == "auto" or whole(accept_at, 1)):
            raise ConfigError(f"pruner 'lce': `accept_at` must be 'auto', an integer >= 1 (the epoch at which a trial that got there "
                              f"is accepted) or null (no acceptance), but got {accept_at!r}.")
        if score not in SCORES:
            raise ConfigError("pruner 'lce': " + unknown_name_message("score", score, SCORES))
        if horizon is not None and not whole(horizon, 2):
            raise ConfigError(f"pruner 'lce': `horizon` must be an integer >= 2 (epochs of a full trial) or null, but got {horizon!r}.")
        if threshold is not None:
            if not (isinstance(threshold, (int, float)) and 0.0 < threshold < 1.0):
                raise ConfigError(f"pruner 'lce': `threshold` must be a probability in (0, 1) or null, but got {threshold!r}.")
            if accept_at is not None:
                raise ConfigError(f"pruner 'lce': `threshold` (stop a trial unlikely to beat the best completed one) needs trials "
                                  f"that complete: set accept_at=null with it, but got accept_at={accept_at!r}.")
        self.min_resource, self.reduction_factor, self.accept_at = min_resource, reduction_factor, accept_at
        self.score, self.horizon, self.threshold, self.seed = score, horizon, threshold, seed
        self.checks: dict[int, dict[str, Any]] = {}
        self._accepted: dict[int, float] = {}
        self._scores: dict[tuple[Any, int, int], float] = {}
        self._beat_best: Any = None
        self._epochs: int | None = None

    # ---- what the search says before it starts ----------------------------------------------------------
    def rungs(self, horizon: int) -> list[int]:
        """The rung epochs below ``horizon`` (the last one is the acceptance epoch when there is one)."""
        last = self.acceptance(horizon)
        top = last if last is not None else horizon - 1
        out, r = [], self.min_resource
        while r <= top:
            out.append(r)
            r *= self.reduction_factor
        if last is not None and out and out[-1] != last:
            out.append(last)
        return out

    def acceptance(self, horizon: int) -> int | None:
        """The epoch at which trials are accepted for a ``horizon``-epoch budget, or ``None``."""
        if self.accept_at is None:
            return None
        if self.accept_at == "auto":
            r = self.min_resource
            while r * self.reduction_factor <= horizon / 6:
                r *= self.reduction_factor
            return r if r < horizon else None
        return int(self.accept_at) if int(self.accept_at) < horizon else None

    def plan(self, epochs: int | None) -> str | None:
        """What the scheduler will do with trials of ``epochs`` epochs (said when a search starts)."""
        if epochs is not None:
            self._epochs = int(epochs)  # the search's epoch budget: the horizon when none is set
        horizon = self.horizon or epochs
        if horizon is None:
            return None
        rungs, accept = self.rungs(horizon), self.acceptance(horizon)
        if not rungs:
            return (f"WARNING pruner 'lce' cannot act with {horizon} epochs: its first rung ({self.min_resource} epochs) is not "
                    f"before the last epoch; lower min_resource or use more epochs.")
        halving = [r for r in rungs if r != accept]
        where = f"rungs after epochs {', '.join(map(str, halving))} (top 1/{self.reduction_factor} go on, ranked by {self.score})"
        if accept is None:
            return f"pruner 'lce': {where}; no acceptance"
        if not halving:
            return (f"pruner 'lce': every trial is accepted after epoch {accept} (of {horizon}; no rung before it), the best "
                    f"retrained to the end by the final phase")
        return (f"pruner 'lce': {where}; trials that reach epoch {accept} are accepted there (of {horizon}), the best retrained "
                f"to the end by the final phase")

    # ---- the pruner ------------------------------------------------------------------------------------
    def prune(self, study: optuna.study.Study, trial: FrozenTrial) -> bool:
        values = trial.intermediate_values
        points = len(values)
        self._accepted.pop(trial.number, None)
        horizon = self._horizon(study)
        if horizon is None or points >= horizon:
            return False
        rungs = self.rungs(horizon)
        if points not in rungs:
            return False  # between rungs: nothing to decide (and nothing computed)
        maximize = study.direction == StudyDirection.MAXIMIZE
        sign = 1.0 if maximize else -1.0
        where = (id(study), study.study_name)
        accept = self.acceptance(horizon)
        mine = self._score(where, trial.number, points, values, accept)
        if not math.isfinite(mine):
            return False  # a curve that cannot be scored is never stopped on it
        if accept is not None and points == accept:
            self._accepted[trial.number] = mine
            self.checks[trial.number] = {"epoch": points, "score": mine, "decision": "accepted"}
            return True
        rivals = [sign * self._score(where, t.number, points, t.intermediate_values, accept)
                  for t in study.get_trials(deepcopy=False) if t.number != trial.number and len(t.intermediate_values) >= points]
        rivals = sorted((v for v in rivals if math.isfinite(v)), reverse=True)
        kept = max(1, (len(rivals) + 1) // self.reduction_factor)
        promoted = len(rivals) < kept or sign * mine >= rivals[kept - 1]
        decision = "promoted" if promoted else "pruned"
        if promoted and self.threshold is not None and points > rungs[0] and self._unlikely_to_beat_best(study, trial):
            decision, promoted = "pruned: unlikely to beat the best", False
        self.checks[trial.number] = {"epoch": points, "score": mine, "rank_among": len(rivals) + 1, "kept": kept, "decision": decision}
        return not promoted

    def accepted(self, trial_number: int) -> float | None:
        """The value of ``trial_number`` if the last :meth:`prune` accepted it (stop, complete), else ``None``."""
        return self._accepted.get(trial_number)

    # ---- internals ---------------------------------------------------------------------------------------
    def _horizon(self, study: optuna.study.Study) -> int | None:
        if self.horizon is not None or self._epochs is not None:
            return self.horizon or self._epochs
        done = [max(t.intermediate_values) + 1 for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.intermediate_values]
        return max(done) if done else None

    def _score(self, where: tuple[Any, ...], number: int, points: int, values: dict[int, float], accept: int | None) -> float:
        """The score of a trial's first ``points`` values (its steps in order), cached: a prefix never changes."""
        key = (where, number, points)
        cached = self._scores.get(key)
        if cached is None:
            steps = sorted(values)[:points]
            prefix = [values[s] for s in steps]
            cached = curve_score(prefix, self.score, at=accept) if all(map(math.isfinite, prefix)) else math.nan
            if len(self._scores) > 200_000:
                self._scores.clear()
            self._scores[key] = cached
        return cached

    def _unlikely_to_beat_best(self, study: optuna.study.Study, trial: FrozenTrial) -> bool:
        from nas.contrib.lce_pruner import LearningCurvePruner

        if self._beat_best is None:
            self._beat_best = LearningCurvePruner(threshold=float(self.threshold or 0.05), horizon=self.horizon, min_points=3,
                                                  seed=self.seed)
        return bool(self._beat_best.prune(study, trial))
