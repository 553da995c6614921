"""Learning-curve extrapolation (nas.contrib.curves) and the pruner built on it (LearningCurvePruner)."""

from __future__ import annotations

import statistics
import time

import numpy as np
import optuna
import pytest

import nas
from nas import ConfigError, TableEstimator
from nas._config import compose, instantiate
from nas.contrib.lce_pruner import LearningCurvePruner
from nas.contrib.curves import FAMILIES, CurvePredictor, calibrate
from nas.testing import ToySpace
from strategies import SequenceStrategy

optuna.logging.set_verbosity(optuna.logging.WARNING)
X100 = np.arange(1.0, 101.0)


def noisy(values: np.ndarray, sd: float, seed: int = 0) -> np.ndarray:
    return values + np.random.default_rng(seed).normal(0.0, sd, values.size)


# ---- the predictor ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("family", "params", "sd", "k", "tol"), [
    ("pow3", {"c": 80.0, "a": 50.0, "alpha": 0.7}, 0.3, 30, {"c": 1.5, "a": 3.0, "alpha": 0.05}),
    ("exp3", {"c": 0.9, "a": 0.6, "b": 0.08}, 0.003, 40, {"c": 0.01, "a": 0.03, "b": 0.008}),
    ("ilog2", {"c": 70.0, "a": 40.0}, 0.2, 20, {"c": 1.5, "a": 2.0}),
])
def test_recovers_the_parameters_of_a_noisy_curve_from_its_own_family(family, params, sd, k, tol):
    truth = FAMILIES[family].function(X100, *params.values())
    curve = noisy(truth, sd)
    p = CurvePredictor(families=[family], seed=0).predict(curve[:k], 100)
    for name, value in params.items():
        assert p.params[family][name] == pytest.approx(value, abs=tol[name]), name
    assert p.mean == pytest.approx(truth[-1], abs=3 * sd + 0.05 * abs(truth[-1] - truth[k - 1]))
    assert p.weights == {family: 1.0}


@pytest.mark.parametrize(("family", "params"), [("pow3", (80.0, 50.0, 0.7)), ("exp3", (0.9, 0.6, 0.08)),
                                                ("mmf", (0.95, 0.7, 0.05, 1.5)), ("janoschek", (0.9, 0.6, 0.01, 1.3))])
def test_the_ensemble_predicts_the_final_value_of_curves_from_its_families(family, params):
    truth = FAMILIES[family].function(X100, *params)
    rise, remaining = truth[-1] - truth[0], truth[-1] - truth[39]
    curve = noisy(truth, 0.005 * rise, seed=1)
    p = CurvePredictor(seed=0).predict(curve[:40], 100)
    assert abs(p.mean - truth[-1]) < 0.2 * remaining  # a fifth of the rise still to come, from 40 epochs of 100
    assert p.quantile(0.01) <= truth[-1] <= p.quantile(0.99)
    assert p.std < 0.5 * remaining and np.isfinite(p.samples).all()  # no draw blown up
    assert abs(sum(p.weights.values()) - 1.0) < 1e-9 and p.points == 40 and p.horizon == 100


def test_a_curve_to_minimise_is_extrapolated_downwards():
    loss = 0.5 + 2.0 * X100 ** -0.8
    curve = noisy(loss, 0.005)
    p = CurvePredictor(maximize=False, seed=0).predict(curve[:30], 100)
    assert p.mean == pytest.approx(loss[-1], abs=0.03)
    assert p.mean < curve[29]  # still falling
    assert p.params["pow3"]["c"] == pytest.approx(0.5, abs=0.05)  # a level: the loss it settles at
    assert p.prob_beats(loss[-1] + 0.2) > 0.95 and p.prob_beats(loss[-1] - 0.2) < 0.05  # "beats" = lower


def test_flat_curves_give_their_level_without_blowing_up():
    constant = CurvePredictor(seed=0).predict([0.7] * 12, 200)
    assert constant.mean == 0.7 and constant.std == 0.0
    flat = CurvePredictor(seed=0).predict(noisy(np.full(30, 0.7), 0.005), 200)
    assert flat.mean == pytest.approx(0.7, abs=0.02) and flat.std < 0.03
    assert np.isfinite(flat.samples).all() and np.abs(flat.samples - 0.7).max() < 0.2


def test_bad_input_is_answered_with_what_must_hold():
    p = CurvePredictor(seed=0)
    with pytest.raises(ValueError, match=r"`len\(curve_prefix\) >= 3` must hold to fit a curve, but got 2 point"):
        p.predict([0.1, 0.2], 10)
    with pytest.raises(ValueError, match="must be finite, but got nan at index 2"):
        p.predict([0.1, 0.2, float("nan"), 0.4], 10)
    with pytest.raises(ValueError, match="`horizon >= 4` .* but got horizon=3"):
        p.predict([0.1, 0.2, 0.3, 0.4], 3)
    with pytest.raises(ValueError, match="`epochs` must be 3 increasing positive numbers"):
        p.predict([0.1, 0.2, 0.3], 10, epochs=[1, 3, 2])
    with pytest.raises(ConfigError, match="Unknown curve family 'pow5'"):
        CurvePredictor(families=["pow5"])
    with pytest.raises(ConfigError, match=r"`bounds\[0\] < bounds\[1\]` must hold"):
        CurvePredictor(bounds=(100, 0))


def test_declared_bounds_clip_predictions_and_none_are_assumed_otherwise():
    steep = 100.0 - 80.0 * np.exp(-0.02 * X100)  # far from its asymptote at epoch 10
    bounded = CurvePredictor(bounds=(0, 60), seed=0).predict(steep[:10], 100)
    assert bounded.samples.max() <= 60 and bounded.mean <= 60
    free = CurvePredictor(seed=0).predict(steep[:10], 100)
    assert free.samples.max() > 60


def test_sparse_epochs_and_the_cache():
    truth = FAMILIES["pow3"].function(X100, 80.0, 50.0, 0.7)
    epochs = np.arange(2, 41, 2)
    p = CurvePredictor(seed=0)
    sparse = p.predict(truth[epochs - 1], 100, epochs=epochs)
    assert sparse.mean == pytest.approx(truth[-1], abs=1.0)
    assert p.predict(truth[epochs - 1], 100, epochs=epochs) is sparse  # same prefix, same answer, no refit
    assert not sparse.samples.flags.writeable


def test_a_prediction_is_fast_enough_for_a_pruner():
    curve = noisy(FAMILIES["pow3"].function(X100, 80.0, 50.0, 0.7), 0.3)
    p = CurvePredictor(cache_size=0, seed=0)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        p.predict(curve[:20], 200)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.1  # about 15 ms on an idle core; generous for a loaded machine


def test_calibration_corrects_a_systematic_error_robustly():
    rng = np.random.default_rng(0)
    base = CurvePredictor(seed=0)
    preds = [base.predict(FAMILIES["pow3"].function(X100[:20], c, 30.0, 0.5), 100) for c in rng.uniform(60, 90, 12)]
    finals = [2.0 + 1.1 * p.mean for p in preds]
    finals[3] = 10.0  # a run stuck at chance must not drag the line
    fixed = calibrate(preds[0], list(zip(preds[1:], finals[1:])), features=("mean",), seed=0)
    assert fixed.mean == pytest.approx(finals[0], abs=0.2)
    assert fixed.calibration["feature"] == "mean" and fixed.calibration["b"] == pytest.approx(1.1, abs=0.02)
    assert calibrate(preds[0], list(zip(preds[1:3], finals[1:3]))) is preds[0]  # too few references: unchanged
    shifted = calibrate(preds[0], [(p, p.mean + 5.0) for p in preds[1:4]], features=("level",), seed=0)
    assert shifted.calibration["b"] == 1.0  # three references: a pure shift
    with pytest.raises(ConfigError, match="Unknown calibration feature 'levle'. Did you mean 'level'"):
        calibrate(preds[0], list(zip(preds[1:], finals[1:])), features=("levle",))


# ---- the pruner ------------------------------------------------------------------------------------------------------
EPOCHS = 30


def curve_to(final: float, rate: float = 0.15) -> list[float]:
    """A saturating accuracy curve that ends at ``final``."""
    x = np.arange(1, EPOCHS + 1)
    shape = 1.0 - np.exp(-rate * x)
    return list(final * shape / shape[-1])


def run_study(finals: list[float], pruner: LearningCurvePruner, direction: str = "maximize",
              transform=lambda c: c, offset: float = 0.0) -> optuna.Study:
    """Each final makes one trial reporting its curve; a trial not pruned is told its last value plus ``offset``."""
    study = optuna.create_study(direction=direction, pruner=pruner)
    for final in finals:
        trial = study.ask()
        curve = transform(curve_to(final))
        pruned = False
        for step, value in enumerate(curve):
            trial.report(value, step)
            if trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, curve[-1] + offset)
    return study


def test_the_pruner_stops_hopeless_trials_and_lets_the_best_finish():
    finals = [80.0, 84.0, 82.0, 40.0, 90.0, 50.0, 83.0, 81.5, 60.0]
    pruner = LearningCurvePruner(threshold=0.05, horizon=EPOCHS, min_points=5, warmup_trials=3, seed=0)
    study = run_study(finals, pruner)
    states = [t.state.name for t in study.trials]
    assert states[:3] == ["COMPLETE"] * 3  # warmup
    assert states[4] == "COMPLETE" and study.best_trial.number == 4  # the best is never stopped
    for hopeless in (3, 5, 8):
        assert states[hopeless] == "PRUNED", hopeless
        assert len(study.trials[hopeless].intermediate_values) == 5  # at the first check
        check = pruner.checks[hopeless]
        assert check.pruned and check.probability < 0.05 and check.calibration is not None
    assert pruner.checks[4].probability > 0.5 and not pruner.checks[4].pruned


def test_the_pruner_works_for_a_loss_to_minimise():
    finals = [80.0, 84.0, 82.0, 40.0, 90.0, 50.0]
    to_loss = lambda c: [2.0 - v / 50.0 for v in c]  # accuracy 90 -> loss 0.2
    study = run_study(finals, LearningCurvePruner(horizon=EPOCHS, min_points=5, seed=0), direction="minimize", transform=to_loss)
    states = [t.state.name for t in study.trials]
    assert states[3] == "PRUNED" and states[5] == "PRUNED"
    assert states[4] == "COMPLETE" and study.best_trial.number == 4


def test_the_pruner_waits_for_warmup_points_and_finite_values():
    pruner = LearningCurvePruner(horizon=EPOCHS, min_points=5, warmup_trials=3, seed=0)
    study = run_study([80.0, 84.0, 20.0], pruner)  # a hopeless third trial, but only 2 trials completed before it
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    study = run_study([80.0, 84.0, 82.0], LearningCurvePruner(horizon=EPOCHS, min_points=5, seed=0))
    trial = study.ask()
    for step, value in enumerate([1.0, 2.0, float("nan"), 3.0, 4.0, 5.0]):
        trial.report(value, step)
        assert not trial.should_prune()  # hopeless, but its curve cannot be fitted: not pruned on it
    trial = study.ask()
    for step, value in enumerate(curve_to(10.0)[:4]):
        trial.report(value, step)
        assert not trial.should_prune()  # fewer than min_points
    trial.report(curve_to(10.0)[4], 4)
    assert trial.should_prune()


def test_the_pruner_infers_the_horizon_and_checks_every_interval():
    pruner = LearningCurvePruner(min_points=5, interval=3, seed=0)
    study = run_study([80.0, 84.0, 82.0, 40.0], pruner)
    assert study.trials[3].state.name == "PRUNED" and pruner.checks[3].horizon == EPOCHS
    pruner = LearningCurvePruner(min_points=5, interval=3, threshold=0.05, seed=0)
    study = run_study([80.0, 84.0, 82.0], pruner)
    trial = study.ask()
    stops = []
    for step, value in enumerate(curve_to(10.0)[:9]):
        trial.report(value, step)
        stops.append(trial.should_prune())
    assert stops == [False] * 4 + [True, False, False, True, False]  # checks at 5 and 8 points


def test_pruner_settings_are_checked():
    with pytest.raises(ConfigError, match=r"`0 < threshold < 1` must hold \(a probability\), but got threshold=1.5."):
        LearningCurvePruner(threshold=1.5)
    with pytest.raises(ConfigError, match="`min_points` must be .auto. or an integer >= 3"):
        LearningCurvePruner(min_points=2)
    with pytest.raises(ConfigError, match="Unknown calibration feature 'levle'. Did you mean 'level'"):
        LearningCurvePruner(calibration=["levle"])
    pruner = LearningCurvePruner(horizon=EPOCHS, predictor=CurvePredictor(maximize=True))
    with pytest.raises(ConfigError, match="must match the study's direction"):
        run_study([80.0, 84.0, 82.0, 40.0], pruner, direction="minimize", transform=lambda c: [2.0 - v / 50.0 for v in c])


def test_the_pruner_in_a_search_with_the_project_runner(tmp_path):
    space = ToySpace(max_depth=2, with_float=False)
    samples = [{"depth": 1, "l1.op": op} for op in "abc"] + [{"depth": 2, "l1.op": "a", "l2.op": op} for op in "abc"]
    finals = [80.0, 84.0, 82.0, 30.0, 90.0, 45.0]
    curves = {space.architecture(s).key: {"score": f, "curve": curve_to(f), "seconds": float(EPOCHS)} for s, f in zip(samples, finals)}
    result = nas.search(space=space, strategy=SequenceStrategy(space, samples=samples), estimator=TableEstimator(lambda a: curves[a.key]),
                        trials=len(samples), out_dir=tmp_path, progress=False, tensorboard=False,
                        pruner=LearningCurvePruner(horizon=EPOCHS, min_points=5, seed=0))
    states = [r.state for r in result.trials]
    assert states == ["complete", "complete", "complete", "pruned", "complete", "pruned"]
    assert result.best.number == 4 and result.best.value == 90.0
    assert result.trials[3].metrics["epochs"] == 5 and result.trials[3].cost == pytest.approx(5.0)


def test_the_lce_config_builds_the_scheduler():
    from nas.contrib.lce_scheduler import LearningCurveScheduler

    pruner = instantiate(compose(["pruner=lce"]).pruner, kind="pruner")
    assert isinstance(pruner, LearningCurveScheduler) and pruner.reduction_factor == 2 and pruner.accept_at == "auto"


def test_one_pruner_serves_several_studies_without_mixing_them():
    pruner = LearningCurvePruner(horizon=EPOCHS, min_points=5, seed=0)
    first = run_study([80.0, 84.0, 82.0, 40.0], pruner)
    assert first.trials[3].state.name == "PRUNED"
    # Same trial ids in a fresh in-memory storage, but here the score is the curve's end + 100: a curve ending at 40
    # will score 140 and beat 134. Calibrated on the first study instead, it would look hopeless and be stopped.
    second = run_study([30.0, 34.0, 32.0, 40.0], pruner, offset=100.0)
    assert [t.state.name for t in second.trials] == ["COMPLETE"] * 4
    assert pruner.checks[3].best == 134.0 and pruner.checks[3].mean > 134.0


def test_min_points_auto_adapts_to_a_short_epoch_budget_and_says_when_the_pruner_cannot_act(tmp_path):
    """At its defaults the pruner used to fit on 5 epochs, so with estimator.epochs=5 its first check fell on the last
    epoch and it never pruned; auto takes half a short budget (at least 3)."""
    pruner = LearningCurvePruner()
    assert [pruner.points_needed(h) for h in (3, 4, 5, 8, 10, 200)] == [3, 3, 3, 4, 5, 5]
    assert pruner.plan(5) == "pruner 'lce': min_points=auto -> 3 for 5 epochs: checks after epochs 3, 4, once 3 trials have completed"
    assert pruner.plan(3).startswith("WARNING pruner 'lce' cannot act with 3 epochs")
    said = []

    class Listen(nas.Callback):
        def on_message(self, text):
            said.append(text)

    result = nas.search(space="macro_chain", trials=10, epochs=5, pruner=LearningCurvePruner(), out_dir=tmp_path / "run", progress=False,
                        tensorboard=False, seed=0, callbacks=[Listen()])
    assert sum(t.state == "pruned" for t in result.trials) == 6  # 6 of 10 pruned after epoch 3 or 4 (seed 0), as the README says
    assert all(len(t.curve) in (3, 4) for t in result.trials if t.state == "pruned")
    assert "pruner 'lce': min_points=auto -> 3 for 5 epochs: checks after epochs 3, 4, once 3 trials have completed" in said
