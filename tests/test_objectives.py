"""Objectives and constraints as declared: parsed, judged, and refused naming the key when malformed."""

from __future__ import annotations

import math

import pytest

from nas import ConfigError
from nas.core.objectives import Constraint, Objective, parse_constraints, parse_objectives, violations


def test_objectives_keep_their_order_and_directions():
    objectives = parse_objectives({"val_accuracy": "max", "latency_ms": "min", "params": "Minimize"})
    assert objectives == (Objective("val_accuracy", "max"), Objective("latency_ms", "min"), Objective("params", "min"))
    assert [o.optuna_direction for o in objectives] == ["maximize", "minimize", "minimize"]
    assert parse_objectives("val_accuracy") == (Objective("val_accuracy", "max"),)
    assert parse_objectives(None) == ()  # the estimator's score alone: single-objective search, unchanged


def test_constraints_are_judged_with_optunas_sign_convention():
    params, accuracy = parse_constraints({"params": "<=50000", "val_accuracy": ">= 0.9"})
    assert (params, accuracy) == (Constraint("params", "<=", 50_000.0), Constraint("val_accuracy", ">=", 0.9))
    assert params.violation({"params": 60_000}) == 10_000 and params.holds({"params": 50_000})
    assert accuracy.violation({"val_accuracy": 0.95}) == pytest.approx(-0.05) and not accuracy.holds({"val_accuracy": 0.5})
    assert parse_constraints({"macs": "<=5e6"})[0].bound == 5e6
    assert params.violation({"params": math.nan}) == math.inf  # an unmeasurable metric meets no bound
    assert violations((params, accuracy), {"params": 61_000, "val_accuracy": 0.95}) == ["params 61,000 > 50000"]
    with pytest.raises(ConfigError, match="constraint `params <= 50000` needs metric `params`, but the trial has only macs"):
        params.violation({"macs": 1.0})


@pytest.mark.parametrize("spec, message", [
    ({"val_accuracy": "up"}, "`objectives.val_accuracy` must be max or min, but got 'up'."),
    ({"val accuracy": "max"}, "`objectives` keys must be metric names, but got 'val accuracy'."),
    ({}, "`objectives` must map metric names to max or min"),
    (["val_accuracy"], "`objectives` must map metric names to max or min"),
])
def test_malformed_objectives_are_refused_naming_the_key(spec, message):
    with pytest.raises(ConfigError) as info:
        parse_objectives(spec)
    assert message in str(info.value)


@pytest.mark.parametrize("spec, message", [
    ({"params": "<= abc"}, "`constraints.params` must read '<= NUMBER' or '>= NUMBER' (e.g. '<=50000', '>= 0.9'), but got '<= abc'."),
    ({"params": "< 5"}, "but got '< 5'."),
    ({"params": 5}, "but got 5."),
    ({"latency ms": "<=2"}, "`constraints` keys must be metric names, but got 'latency ms'."),
    ("params<=5", "`constraints` must map metric names to bounds"),
])
def test_malformed_constraints_are_refused_naming_the_key(spec, message):
    with pytest.raises(ConfigError) as info:
        parse_constraints(spec)
    assert message in str(info.value)
