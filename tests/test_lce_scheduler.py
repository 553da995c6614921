"""The learning-curve scheduler behind pruner=lce (nas.contrib.lce_scheduler): rungs, promotion by level, acceptance."""

from __future__ import annotations

import json
import math

import optuna
import pytest

import nas
from nas.contrib.lce_scheduler import LearningCurveScheduler, curve_score
from nas.core.errors import ConfigError

optuna.logging.set_verbosity(optuna.logging.ERROR)


def run(curves: list[list[float]], pruner: LearningCurveScheduler, direction: str = "maximize") -> optuna.Study:
    """Each curve one trial, reported epoch by epoch; accepted trials told complete with the scheduler's value."""
    study = optuna.create_study(direction=direction, pruner=pruner)
    for curve in curves:
        trial = study.ask()
        for step, value in enumerate(curve):
            trial.report(value, step)
            if step + 1 < len(curve) and trial.should_prune():
                accepted = pruner.accepted(trial.number)
                if accepted is None:
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    study.tell(trial, accepted)
                break
        else:
            study.tell(trial, curve[-1])
    return study


def test_rungs_and_the_automatic_acceptance_epoch_follow_the_budget():
    assert nas.LearningCurveScheduler is LearningCurveScheduler  # also public as nas.LearningCurveScheduler
    s = LearningCurveScheduler()  # eta 2, accept_at auto: the largest rung at or below a sixth of the epochs
    assert s.rungs(200) == [1, 2, 4, 8, 16, 32] and s.acceptance(200) == 32
    assert s.rungs(40) == [1, 2, 4] and s.acceptance(40) == 4
    assert s.acceptance(5) == 1  # at least the first rung
    assert LearningCurveScheduler(reduction_factor=3, accept_at=None).rungs(30) == [1, 3, 9, 27]
    assert LearningCurveScheduler(reduction_factor=3, accept_at=10).rungs(30) == [1, 3, 9, 10]
    assert "rungs after epochs 1, 2 (top 1/2 go on" in s.plan(40) and "accepted there (of 40)" in s.plan(40)
    assert s.plan(5).startswith("pruner 'lce': every trial is accepted after epoch 1 (of 5; no rung before it)")
    assert LearningCurveScheduler(min_resource=5, accept_at=None).plan(5).startswith("WARNING pruner 'lce' cannot act with 5 epochs")


def test_the_level_averages_the_second_half_and_the_trend_extrapolates():
    assert curve_score([1.0, 9.0, 3.0, 5.0]) == 4.0  # mean of the last two
    assert curve_score([1.0, 9.0, 3.0, 5.0], "last") == 5.0
    line = [2.0 + 3.0 * math.log(x) for x in range(1, 9)]
    assert curve_score(line, "trend", at=32) == pytest.approx(2.0 + 3.0 * math.log(32))
    with pytest.raises(ConfigError, match="score"):
        curve_score([1.0, 2.0], "median")


def test_a_rung_keeps_the_top_fraction_by_level_not_by_the_last_value():
    """Trial 1's last value at the rung (epoch 4) beats trial 0's, but its level (epochs 3-4) does not: with eta 2 only
    one of two goes on, and it is trial 0. Ranked by the last value (Optuna's rule) it would be trial 1."""
    steady, spiky = [50.0, 60.0, 70.0, 70.0, 71.0, 72.0], [50.0, 55.0, 40.0, 75.0, 76.0, 77.0]
    by_level = LearningCurveScheduler(reduction_factor=2, accept_at=None, min_resource=4, horizon=6)
    study = run([steady, spiky], by_level)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED"]
    assert by_level.checks[1]["decision"] == "pruned" and by_level.checks[1]["score"] == 57.5
    by_last = LearningCurveScheduler(reduction_factor=2, accept_at=None, min_resource=4, horizon=6, score="last")
    assert [t.state.name for t in run([steady, spiky], by_last).trials] == ["COMPLETE", "COMPLETE"]


def test_trials_reaching_the_acceptance_epoch_are_accepted_with_their_level_and_losers_pruned():
    curves = [[10.0 * k + e for e in range(10)] for k in (5, 9, 1, 7, 3)]
    pruner = LearningCurveScheduler(reduction_factor=2, accept_at=4, horizon=10)
    study = run(curves, pruner)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED", "PRUNED", "PRUNED"]  # 7x is beaten by 5x and 9x at its rungs
    assert study.trials[1].value == pytest.approx(92.5)  # the mean of epochs 3 and 4: 92, 93
    assert pruner.checks[1] == {"epoch": 4, "score": 92.5, "decision": "accepted"}
    assert max(study.trials[1].intermediate_values) == 3  # stopped after 4 of its 10 epochs


def test_a_study_that_minimises_keeps_the_lowest():
    losses = [[5.0, 4.0, 3.0, 2.0], [9.0, 8.0, 7.0, 6.0], [1.0, 0.5, 0.4, 0.3]]
    study = run(losses, LearningCurveScheduler(reduction_factor=2, accept_at=None, horizon=4), direction="minimize")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED", "COMPLETE"]


def test_the_threshold_also_stops_a_promoted_trial_unlikely_to_beat_the_best():
    """Five flat 10s and three flat 90s complete; a flat 60 is in the top half at every rung, so halving alone lets it
    run to the end. With threshold=0.05 the calibrated extrapolation (LearningCurvePruner, from its third point) stops
    it at the rung after 4 epochs: it cannot beat 90."""
    curves = [[10.0] * 20] * 5 + [[90.0] * 20] * 3 + [[60.0] * 20]
    halving = LearningCurveScheduler(reduction_factor=2, accept_at=None, horizon=20)
    assert run(curves, halving).trials[8].state.name == "COMPLETE" and halving.checks[8]["decision"] == "promoted"
    both = LearningCurveScheduler(reduction_factor=2, accept_at=None, horizon=20, threshold=0.05, seed=0)
    last = run(curves, both).trials[8]
    assert last.state.name == "PRUNED" and max(last.intermediate_values) == 3
    assert both.checks[8] == {"epoch": 4, "score": 60.0, "rank_among": 9, "kept": 4, "decision": "pruned: unlikely to beat the best"}


def test_bad_settings_are_refused_naming_the_key():
    for kwargs, key in [({"min_resource": 0}, "min_resource"), ({"reduction_factor": 1}, "reduction_factor"),
                        ({"accept_at": "soon"}, "accept_at"), ({"score": "best"}, "score"), ({"horizon": 1}, "horizon"),
                        ({"threshold": 2.0, "accept_at": None}, "threshold"), ({"threshold": 0.1}, "accept_at=null")]:
        with pytest.raises(ConfigError, match=key):
            LearningCurveScheduler(**kwargs)


def test_a_real_search_accepts_trials_and_the_final_phase_trains_the_best_two_to_the_end(tmp_path):
    said: list[str] = []

    class Listen(nas.Callback):
        def on_message(self, text):
            said.append(text)

    result = nas.search(space="macro_chain", trials=8, epochs=12, pruner="lce", out_dir=tmp_path / "run", progress=False,
                        tensorboard=False, seed=0, callbacks=[Listen()])
    accepted = [t for t in result.trials if t.metrics.get("accepted_at_epoch")]  # auto: epoch 2 of 12 (rungs 1, 2)
    assert accepted and all(t.state == "complete" and len(t.curve) == 2 and t.metrics["epochs"] == 2 for t in accepted)
    assert all(t.value == pytest.approx(t.curve[-1]) and t.metrics["accepted_value"] == t.value for t in accepted)
    assert all(len(t.curve) == 1 for t in result.trials if t.state == "pruned")
    assert not [t for t in result.trials if len(t.curve) > 2]  # nobody trained to the end during the search
    assert any("accepted there (of 12)" in s for s in said)
    assert any("final: retrain_top_k auto -> 2" in s for s in said)
    top_two = sorted((t for t in result.trials if t.state == "complete"), key=lambda t: -t.value)[:2]
    assert [row["trial"] for row in result.final] == [t.number for t in top_two]
    assert json.loads((tmp_path / "run" / "final" / "results.json").read_text())["epochs"] == 12


def test_an_evolution_search_on_mnist1d_hands_over_the_retrained_winner(tmp_path):
    """The other strategy and dataset of the real-use check: the model best_model() returns is the final phase's
    winner, retrained for every epoch, and it scores the test split as the final leaderboard says."""
    import torch

    from nas.datasets import mnist1d

    result = nas.search(space="macro_chain", strategy="evolution", dataset="mnist1d", trials=8, epochs=8, pruner="lce",
                        out_dir=tmp_path / "run", progress=False, tensorboard=False, seed=0)
    assert all(t.metrics.get("accepted_at_epoch") == 1 for t in result.trials)  # 8 epochs: every trial accepted after the first
    assert len(result.final) == 2 and json.loads((tmp_path / "run" / "final" / "results.json").read_text())["epochs"] == 8
    winner = max(result.final, key=lambda r: r["final_score"])
    splits = mnist1d()
    with torch.no_grad():
        predicted = result.best_model(preprocess=False)(splits.x_test).argmax(1)
    assert float((predicted == splits.y_test).float().mean()) == pytest.approx(winner["test_accuracy"], abs=1e-6)
    assert winner["test_accuracy"] > 0.3  # trained, not chance (0.1)


@pytest.mark.slow
def test_the_curve_generator_and_the_side_by_side_benchmark_run_end_to_end(tmp_path):
    """experiments/make_curves.py writes the reusable CSV; experiments/lce_scheduler.py reads it (and the shipped set,
    experiments/curves/macro_chain_mnist1d_40ep.csv) and writes the fronts, the target checks and the plot."""
    import csv
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "c.csv"
    subprocess.run([sys.executable, str(root / "experiments" / "make_curves.py"), "--dataset", "digits", "--trials", "3", "--epochs", "3",
                    "--workers", "1", "--out", str(out)], check=True, capture_output=True, timeout=300)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3 and all(len(json.loads(r["val_accs"])) == 3 and 0 <= float(r["final"]) <= 1 for r in rows)
    shipped = list(csv.DictReader((root / "experiments" / "curves" / "macro_chain_mnist1d_40ep.csv").open()))
    assert len(shipped) >= 200 and {len(json.loads(r["val_accs"])) for r in shipped} == {40}
    subprocess.run([sys.executable, str(root / "experiments" / "lce_scheduler.py"), "--curves",
                    str(root / "experiments" / "curves" / "macro_chain_mnist1d_40ep.csv"), "--runs", "2", "--pool", "20",
                    "--out", str(tmp_path / "fronts")], check=True, capture_output=True, timeout=300)
    text = (tmp_path / "fronts" / "fronts.md").read_text()
    assert "| baseline | our points it dominates |" in text and "At the regret successive halving reaches" in text
    methods = {p["method"] for p in json.loads((tmp_path / "fronts" / "results.json").read_text())[0]["points"]}
    assert {"ours (lce)", "median", "successive halving", "hyperband", "ASHA, 4 workers", "i-Epoch", "PASHA"} <= methods
    assert (tmp_path / "fronts" / "fronts.png").stat().st_size > 10_000
