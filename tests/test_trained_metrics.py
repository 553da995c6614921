"""Metrics known only once a candidate is trained, as objectives and constraints: a callback's figures of the
trained network (``Callback.metrics`` / ``Callback.measure``), and constraints judged after training
(``val_accuracy >= 0.5``: the trial stays complete and counts, but is left out of the best and the front)."""

from __future__ import annotations

import pytest

import nas
from nas import ConfigError
from nas.core.objectives import judged_after_training, parse_constraints


def search(tmp_path, **kwargs):
    kwargs = {"space": "macro_chain", "trials": 5, "epochs": 1, "out_dir": tmp_path / "run", "progress": False,
              "tensorboard": False, **kwargs}
    return nas.search(**kwargs)


class Weights(nas.Callback):
    """The trained network's largest absolute weight (a figure only the trained model has)."""

    metrics = ("max_weight",)

    def __init__(self):
        self.seen = []

    def measure(self, trial, evaluation):
        self.seen.append(trial.number)
        return {"max_weight": max(float(p.detach().abs().max()) for p in evaluation.model.parameters())}


def test_a_callbacks_figure_joins_each_completed_trial_and_can_be_an_objective(tmp_path):
    weights = Weights()
    result = search(tmp_path, callbacks=[weights], objectives={"val_accuracy": "max", "max_weight": "min"})
    complete = [t for t in result.trials if t.state == "complete"]
    assert complete and weights.seen == [t.number for t in complete]
    assert all(t.metrics["max_weight"] > 0 for t in complete)
    front = result.pareto
    for member in front:  # no completed trial beats a front member on both objectives
        assert not any(t.metrics["val_accuracy"] > member.metrics["val_accuracy"] and t.metrics["max_weight"] < member.metrics["max_weight"]
                       for t in complete)
    assert [t.metrics["max_weight"] for t in nas.load(tmp_path / "run").trials] == [t.metrics["max_weight"] for t in result.trials]


def test_an_objective_on_a_callbacks_metric_needs_the_callback(tmp_path):
    with pytest.raises(ConfigError, match="`objectives.max_weight` must name a metric every trial records"):
        search(tmp_path, objectives={"val_accuracy": "max", "max_weight": "min"})
    assert not (tmp_path / "run").exists()


class Undeclared(nas.Callback):
    metrics = ("declared",)

    def measure(self, trial, evaluation):
        return {"declared": 1.0, "other": 2.0} if trial.number == 0 else {"declared": 1.0}


def test_a_callback_that_breaks_its_declaration_fails_that_trial_and_the_search_goes_on(tmp_path):
    result = search(tmp_path, trials=3, callbacks=[Undeclared()])
    first, *rest = result.trials
    assert first.state == "failed" and "Undeclared.measure returned 'other', which its `metrics` (declared) does not declare" in first.reason
    assert [t.state for t in rest] == ["complete", "complete"] and all(t.metrics["declared"] == 1.0 for t in rest)


def test_a_constraint_on_the_trained_accuracy_is_judged_after_training(tmp_path):
    result = search(tmp_path, trials=6, constraints={"val_accuracy": ">=0.5"}, seed=3)
    complete = [t for t in result.trials if t.state == "complete"]
    assert len(complete) == 6  # trained, so each counts against the budget
    outside = [t for t in complete if t.metrics["val_accuracy"] < 0.5]
    inside = [t for t in complete if t.metrics["val_accuracy"] >= 0.5]
    assert outside and inside, [t.metrics["val_accuracy"] for t in complete]  # seed 3 at 1 epoch: some of each
    for t in outside:
        assert t.metrics["feasible"] is False and t.metrics["violation_val_accuracy"] > 0
        assert t.metrics["infeasible_reason"].startswith("infeasible after training: val_accuracy ")
    assert all("feasible" not in t.metrics and t.metrics["violation_val_accuracy"] <= 0 for t in inside)
    assert result.best.number in {t.number for t in inside}
    assert {t.number for t in result.top(10)} == {t.number for t in inside}


def test_a_constraint_on_a_callbacks_figure_and_one_on_a_missing_metric():
    (bound,) = parse_constraints({"max_weight": "<=1.5"})
    assert judged_after_training([bound], {"max_weight": 1.0}) == {"violation_max_weight": -0.5}
    judged = judged_after_training([bound], {"max_weight": 2.0})
    assert judged["feasible"] is False and judged["infeasible_reason"] == "infeasible after training: max_weight 2 > 1.5"
    missing = judged_after_training([bound], {})
    assert missing["feasible"] is False and "max_weight missing" in missing["infeasible_reason"]


class Modules(nas.Callback):
    metrics = ("modules",)

    def measure(self, trial, evaluation):
        return {"modules": len(list(evaluation.model.modules()))}


def test_a_constraint_on_a_callbacks_figure_in_a_search(tmp_path):
    result = search(tmp_path, trials=6, callbacks=[Modules()], constraints={"modules": "<=20"})
    complete = [t for t in result.trials if t.state == "complete"]
    outside = [t for t in complete if t.metrics.get("feasible") is False]
    assert len(complete) == 6 and 0 < len(outside) < 6, [t.metrics["modules"] for t in complete]
    assert all((t in outside) == (t.metrics["modules"] > 20) for t in complete)
    assert f"({len(outside)} complete but outside a constraint judged after training, left out of the ranking)" in result.leaderboard()
