"""Learning-curve extrapolation as an Optuna pruner: stop a trial that will not beat the best one."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.core.errors import ConfigError, unknown_name_message
from nas.contrib.curves import CALIBRATION_FEATURES, Calibration, CurvePredictor, fit_calibration


@dataclass(frozen=True)
class PruneCheck:
    """One check of one trial: where it was, what was predicted, and whether it was stopped."""

    step: int
    points: int
    horizon: int
    mean: float
    std: float
    probability: float
    best: float
    calibration: Mapping[str, Any] | None
    pruned: bool


class LearningCurvePruner(optuna.pruners.BasePruner):
    """Stops a trial when the probability that its final value beats the best completed trial's
    falls below ``threshold``.

    At each check the trial's reported values are extrapolated to the final step by a
    :class:`~nas.contrib.curves.CurvePredictor` (an ensemble of parametric curve families). With
    ``calibration`` (the default) the prediction is then corrected on the trials the study has
    already completed (at most the ``max_reference`` most recent): their first points are fitted
    the same way and compared with the values they reached (:func:`nas.contrib.curves.calibrate`), which
    corrects shapes no family knows, such as the late rise under a cosine learning-rate schedule,
    and takes the spread from real errors. ``calibration`` names what is mapped to the final value:
    ``"level"``, the fitted value at the last point seen, or ``"mean"``, the extrapolation (both:
    the one with the smaller leave-one-out error). The default is ``("level",)`` because on the
    NAS-Bench-201 curves (``experiments/lce_eval.py``) the calibrated extrapolation was the noisier
    of the two and lost the best architecture more often. ``None`` uses the raw extrapolation.
    Only completed trials are looked at: nothing a search would not know.

    ``horizon`` is the number of steps of a full trial: the final value is the one reported at
    step ``horizon - 1`` (the project's runner reports epoch ``e`` of ``E`` at step ``e - 1``, so
    ``horizon = E``). ``None`` takes the longest completed trial's last step + 1. ``margin`` asks
    for a gain worth finishing for: the probability is that of beating the best by ``margin``.

    No pruning before ``warmup_trials`` trials have completed, before a trial has reported
    ``min_points`` values, between checks (every ``interval`` reports after the first) or at the
    last step; a trial whose curve cannot be fitted (a non-finite value) is never pruned on it.
    Works with any sampler or strategy, in a study that maximises or minimises. The last check of
    each trial is kept in :attr:`checks` (by trial number): why it was stopped, or not.

        pruner = nas.LearningCurvePruner(threshold=0.05, horizon=200)
        nas.search(space="cell_nb201", strategy="evolution", estimator=..., pruner=pruner)
    """

    def __init__(self, *, threshold: float = 0.05, horizon: int | None = None, min_points: int | str = "auto", interval: int = 1,
                 warmup_trials: int = 3, margin: float = 0.0, calibration: Sequence[str] | None = ("level",), max_reference: int = 20,
                 predictor: CurvePredictor | None = None, seed: int | None = None) -> None:
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"pruner 'lce': `0 < threshold < 1` must hold (a probability), but got threshold={threshold!r}.")
        if horizon is not None and not (isinstance(horizon, int) and horizon >= 2):
            raise ConfigError(f"pruner 'lce': `horizon >= 2` must hold (steps of a full trial) or be null, but got horizon={horizon!r}.")
        if min_points != "auto" and not (isinstance(min_points, int) and not isinstance(min_points, bool) and min_points >= 3):
            raise ConfigError(f"pruner 'lce': `min_points` must be 'auto' or an integer >= 3 (a curve needs 3 points to fit), but got "
                              f"min_points={min_points!r}.")
        if not (isinstance(interval, int) and interval >= 1):
            raise ConfigError(f"pruner 'lce': `interval >= 1` must hold, but got interval={interval!r}.")
        if not (isinstance(warmup_trials, int) and warmup_trials >= 1):
            raise ConfigError(f"pruner 'lce': `warmup_trials >= 1` must hold (a best value to beat), but got warmup_trials={warmup_trials!r}.")
        if not (isinstance(margin, (int, float)) and margin >= 0):
            raise ConfigError(f"pruner 'lce': `margin >= 0` must hold (the smallest gain worth finishing a trial for), but got margin={margin!r}.")
        if calibration is not None:
            if isinstance(calibration, str) or not calibration:
                raise ConfigError(f"pruner 'lce': `calibration` must be a list of features out of {list(CALIBRATION_FEATURES)}, "
                                  f"or null, but got {calibration!r}.")
            for name in calibration:
                if name not in CALIBRATION_FEATURES:
                    raise ConfigError("pruner 'lce': " + unknown_name_message("calibration feature", name, CALIBRATION_FEATURES))
        if not (isinstance(max_reference, int) and max_reference >= 1):
            raise ConfigError(f"pruner 'lce': `max_reference >= 1` must hold, but got max_reference={max_reference!r}.")
        self.threshold, self.horizon, self.min_points, self.interval = float(threshold), horizon, min_points, interval
        self.margin = float(margin)
        self.calibration = tuple(calibration) if calibration is not None else None
        self.warmup_trials, self.max_reference, self.seed = warmup_trials, max_reference, seed
        self.predictor = predictor
        self.checks: dict[int, PruneCheck] = {}
        self._calibrations: dict[tuple[Any, ...], Calibration | None] = {}
        self._curves: dict[tuple[Any, ...], tuple[list[int], list[float]]] = {}

    def points_needed(self, horizon: int) -> int:
        """``min_points`` for a trial of ``horizon`` epochs: as set, or with ``"auto"`` 5 for 10 epochs and more,
        else half the horizon (at least 3), so that a short budget still leaves checks before its last epoch."""
        if self.min_points != "auto":
            return int(self.min_points)
        return min(5, max(3, horizon // 2))

    def plan(self, epochs: int | None) -> str | None:
        """What the pruner will do with trials of ``epochs`` epochs (said when a search starts), or ``None``."""
        horizon = self.horizon or epochs
        if horizon is None:
            return None
        needed = self.points_needed(horizon)
        checks = list(range(needed, horizon, self.interval))
        if not checks:
            return (f"WARNING pruner 'lce' cannot act with {horizon} epochs: it fits a curve on {needed} epochs at least "
                    f"(min_points) and stops a trial only before its last epoch, so it will stop nothing; use more epochs, "
                    f"or pruner=successive_halving or median.")
        shown = ", ".join(map(str, checks[:6])) + (", ..." if len(checks) > 6 else "")
        return (f"pruner 'lce': min_points={'auto -> ' if self.min_points == 'auto' else ''}{needed} for {horizon} epochs: "
                f"checks after epochs {shown}, once {self.warmup_trials} trials have completed")

    def prune(self, study: optuna.study.Study, trial: FrozenTrial) -> bool:
        values = trial.intermediate_values
        if len(values) < 3:
            return False
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(complete) < self.warmup_trials:
            return False
        steps = sorted(values)
        horizon = self.horizon if self.horizon is not None else max((max(t.intermediate_values) for t in complete if t.intermediate_values),
                                                                    default=steps[-1]) + 1
        needed = self.points_needed(horizon)
        if len(values) < needed or (len(values) - needed) % self.interval:
            return False
        maximize = study.direction == StudyDirection.MAXIMIZE
        predictor = self._predictor(maximize)
        if steps[-1] + 1 >= horizon:
            return False  # the last step: nothing left to save
        finals = [float(t.value) for t in complete if t.value is not None]  # complete trials of a single-objective study have one
        best = max(finals) if maximize else min(finals)
        try:
            prediction = predictor.predict([values[s] for s in steps], horizon, epochs=[s + 1 for s in steps])
        except ValueError:
            return False
        if self.calibration is not None:
            fitted = self._calibration(study, predictor, complete, steps[-1], horizon, self.calibration)
            if fitted is not None:
                prediction = fitted.apply(prediction, seed=self.seed)
        probability = prediction.prob_beats(best + self.margin if maximize else best - self.margin)
        stop = probability < self.threshold
        self.checks[trial.number] = PruneCheck(step=steps[-1], points=len(steps), horizon=horizon, mean=prediction.mean,
                                               std=prediction.std, probability=probability, best=best,
                                               calibration=prediction.calibration, pruned=stop)
        return stop

    def _predictor(self, maximize: bool) -> CurvePredictor:
        if self.predictor is None:
            self.predictor = CurvePredictor(maximize=maximize, seed=self.seed)
        elif self.predictor.maximize != maximize:
            raise ConfigError(f"pruner 'lce': the predictor's `maximize` must match the study's direction, but got "
                              f"maximize={self.predictor.maximize} in a study that {'maximizes' if maximize else 'minimizes'}.")
        return self.predictor

    def _calibration(self, study: optuna.study.Study, predictor: CurvePredictor, complete: list[FrozenTrial], last_step: int,
                     horizon: int, features: tuple[str, ...]) -> Calibration | None:
        """The correction learnt from the most recent completed trials, each predicted from its values up
        to ``last_step`` and paired with the value it reached; every trial checked at this step against
        the same completed ones shares it."""
        chosen = [t for t in reversed(complete) if t.value is not None][:self.max_reference]
        where = (id(study), study.study_name)  # a pruner object may serve several studies
        key = (where, tuple(t.number for t in chosen), last_step, horizon)
        if key not in self._calibrations:
            reference = []
            for t in chosen:
                steps, values = self._curve(where, t)
                end = bisect.bisect_right(steps, last_step)
                if end < 3:
                    continue
                try:
                    reference.append((predictor.predict(values[:end], horizon, epochs=[s + 1 for s in steps[:end]]), float(t.value or 0.0)))
                except ValueError:
                    continue
            if len(self._calibrations) > 4096:
                self._calibrations.clear()
            self._calibrations[key] = fit_calibration(reference, features=features)
        return self._calibrations[key]

    def _curve(self, where: tuple[Any, ...], trial: FrozenTrial) -> tuple[list[int], list[float]]:
        """A completed trial's reported steps and values, in order (they no longer change: kept)."""
        key = (where, trial.number)
        if key not in self._curves:
            if len(self._curves) > 100_000:
                self._curves.clear()
            steps = sorted(trial.intermediate_values)
            self._curves[key] = (steps, [trial.intermediate_values[s] for s in steps])
        return self._curves[key]
