"""Several objectives: declared, checked before training, kept with the study; the result's Pareto front,
hypervolume (with a reference point kept once derived) and front members' trained networks."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import optuna
import pytest

import nas
from nas import ConfigError
from nas.core.fronts import derive_reference, front_hypervolume, front_of, objective_values
from nas.core.objectives import parse_constraints, parse_objectives
from nas.core.pareto import dominates, minimised
from nas.core.records import TrialRecord, TrialState
from nas.cli import leaderboard_main
from nas.engine.fronts import OBJECTIVES_ATTR, REFERENCE_ATTR
from nas.engine.pareto_halving import ParetoHyperbandPruner, ParetoSuccessiveHalvingPruner, vector_attr
from nas.store.adapters import SamplerStrategy
from nas.store.optuna_store import genetic_generation
from nas.testing import ToySpace

ACC_PARAMS = {"val_accuracy": "max", "params": "min"}


def search(tmp_path, **kwargs):
    kwargs = {"space": "macro_chain", "trials": 6, "epochs": 1, "out_dir": tmp_path / "run", "progress": False,
              "tensorboard": False, "objectives": ACC_PARAMS, **kwargs}
    return nas.search(**kwargs)


def record(number, value, **metrics):
    space = ToySpace()
    return TrialRecord(number=number, arch=space.architecture(space.sample(np.random.default_rng(number))), state=TrialState.COMPLETE,
                       value=value, metrics=metrics)


# ---- fronts of records ------------------------------------------------------------------------
def test_the_front_of_records_is_non_dominated_and_ordered_by_the_first_objective():
    objectives = parse_objectives(ACC_PARAMS)
    records = [record(0, 0.9, val_accuracy=0.9, params=500), record(1, 0.8, val_accuracy=0.8, params=100),
               record(2, 0.7, val_accuracy=0.7, params=300),  # dominated by #1
               record(3, 0.95, val_accuracy=0.95, params=900), record(4, 0.99, val_accuracy=0.99)]  # #4 lacks params: left out
    assert [r.number for r in front_of(records, objectives)] == [3, 0, 1]
    assert objective_values(records[4], objectives) is None
    # reference: 0 for an accuracy, the worst params a tenth of the range further; the hypervolume by hand
    reference = derive_reference(objectives, records)
    assert reference == pytest.approx((0.0, 900 + 80))
    by_hand = 0.95 * (980 - 900) + 0.9 * (900 - 500) + 0.8 * (500 - 100)
    assert front_hypervolume(records, objectives, reference) == pytest.approx(by_hand)
    # a bound on an objective is its reference: nothing beyond it is feasible
    assert derive_reference(objectives, records, parse_constraints({"params": "<=1000"})) == (0.0, 1000.0)


# ---- a real search ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_objective_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("mo")
    return search(tmp_path, seed=1), tmp_path / "run"


def test_a_search_with_two_objectives_gives_its_front_and_keeps_each_member(two_objective_run):
    result, run_dir = two_objective_run
    completed = [t for t in result.trials if t.state == "complete"]
    front = result.pareto
    assert len(completed) == 6 and front
    points = {t.number: minimised([[t.metrics["val_accuracy"], t.metrics["params"]]], ["max", "min"])[0] for t in completed}
    for member in front:  # nothing dominates a member; every other trial is dominated by one
        assert not any(dominates(points[o], points[member.number]) for o in points)
    for other in set(points) - {m.number for m in front}:
        assert any(dominates(points[m.number], points[other]) for m in front)
    assert [m.metrics["val_accuracy"] for m in front] == sorted((m.metrics["val_accuracy"] for m in front), reverse=True)
    assert result.study.user_attrs[OBJECTIVES_ATTR] == [["val_accuracy", "max"], ["params", "min"]]
    # every front member's trained network loads and predicts what its recorded accuracy says it can
    for member in front:
        model = result.best_model(trial=member.number, preprocess=False)
        assert sum(p.numel() for p in model.parameters()) == member.metrics["params"]
    kept = sorted(int(p.name) for p in (run_dir / "front").iterdir() if p.is_dir())
    assert kept == sorted(m.number for m in front)  # those that left the front lost their folder
    top = {int(p.name) for p in (run_dir / "top").iterdir() if p.is_dir()}
    assert top == {t.number for t in result.top(3)}  # the best three by the score keep theirs too
    off = next(iter(set(points) - {m.number for m in front} - top), None)
    if off is not None:
        with pytest.raises(ValueError, match=f"`trial={off}` must be a trial whose weights are kept: one of the best \\(top/: "
                                             f".*\\) or on the Pareto front \\(.*\\); trial #{off} is not"):
            result.best_model(trial=off)


def test_the_hypervolume_reference_is_derived_once_and_kept_in_the_study(two_objective_run):
    result, run_dir = two_objective_run
    first = result.hypervolume()
    reference = result.study.user_attrs[REFERENCE_ATTR]
    assert first > 0 and reference[0] == 0.0 and reference[1] > max(t.metrics["params"] for t in result.pareto)
    again = nas.load(run_dir)
    assert again.hypervolume() == pytest.approx(first) and again.reference_point() == tuple(reference)
    assert again.hypervolume(reference={"val_accuracy": 0.0, "params": reference[1] * 2}) > first  # a farther point: more volume
    with pytest.raises(ConfigError, match=r"`reference` must give one number per objective \(val_accuracy, params\), but got \[1.0\]"):
        again.hypervolume(reference=[1.0])


def test_the_leaderboard_marks_the_front_and_nas_leaderboard_pareto_prints_it(two_objective_run):
    result, run_dir = two_objective_run
    board = result.leaderboard()
    assert "| val acc (max) | params (min) |" in board and "| front |" in board and "val_accuracy (max)" not in board
    assert f"{len(result.pareto)} on the Pareto front of val_accuracy: max, params: min (*)" in board
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        leaderboard_main([str(run_dir), "--pareto"])
    rows = [line for line in printed.getvalue().splitlines() if line.startswith("| ") and not line.startswith("| rank")]
    assert [int(row.split("|")[2]) for row in rows] == [m.number for m in result.pareto]


# ---- refused before training ----------------------------------------------------------------------
@pytest.mark.parametrize("objectives, strategy, message", [
    ({"val_accuracy": "max", "speed": "min"}, "random", "`objectives.speed` must name a metric every trial records"),
    ({"val_accuracy": "max", "params": "smallest"}, "random", "`objectives.params` must be max or min, but got 'smallest'"),
    ({"params": "min"}, "random", "`objectives` with one entry must be the estimator's score (val_accuracy: max)"),
    (ACC_PARAMS, "rl", "strategy 'rl' ranks trials by the one score; use one that searches a Pareto front"),
], ids=["unknown-metric", "bad-direction", "lone-cost", "single-objective-strategy"])
def test_objectives_that_cannot_be_searched_are_refused_before_training(tmp_path, objectives, strategy, message):
    with pytest.raises(ConfigError) as caught:
        search(tmp_path, objectives=objectives, strategy=strategy)
    assert message in str(caught.value)
    assert not (tmp_path / "run").exists()


def test_a_latency_objective_brings_its_provider(tmp_path):
    result = search(tmp_path, trials=2, objectives={"val_accuracy": "max", "latency_ms": "min"})  # no `costs`: implied
    assert all(t.metrics["latency_ms"] > 0 for t in result.trials)
    assert result.pareto and all("latency_ms" in t.metrics for t in result.pareto)


def test_single_objective_behaviour_is_unchanged(tmp_path):
    result = search(tmp_path, trials=3, objectives=None)
    assert OBJECTIVES_ATTR not in result.study.user_attrs and "| front |" not in result.leaderboard()
    assert [t.number for t in result.pareto] == [result.best.number]


# ---- Optuna's multi-objective samplers see every objective ----------------------------------------
def test_a_multi_objective_sampler_is_told_each_objective_and_nsga2_keeps_its_generations():
    space = ToySpace()
    strategy = SamplerStrategy(space, optuna.samplers.NSGAIISampler(population_size=3, seed=0))
    strategy.objectives = parse_objectives({"val_accuracy": "max", "params": "min"})
    history = [record(n, 0.5 + n / 100, val_accuracy=0.5 + n / 100, params=100 - n) for n in range(7)]
    strategy.ask(history)
    study = strategy._study_with(history)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert [t.values for t in study.trials] == [[r.metrics["val_accuracy"], r.metrics["params"]] for r in history]
    key, _ = genetic_generation(strategy.sampler_for(history))
    assert [t.system_attrs[key] for t in study.trials] == [0, 0, 0, 1, 1, 1, 2]


# ---- pruning with several objectives --------------------------------------------------------------
def rung_study(vectors):
    """A study (Optuna's own successive halving as its pruner) whose trials reached step 1 with these
    (accuracy, params) vectors, each asked, reported and told as Optuna's API does."""
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3))
    for accuracy, params in vectors:
        trial, _ = at_rung(study, accuracy, params)
        study.tell(trial, accuracy)
    return study


def at_rung(study, accuracy, params):
    trial = study.ask()
    trial.set_user_attr(vector_attr(1), [accuracy, params])
    for step in (0, 1):
        trial.report(accuracy, step)
        stopped = trial.should_prune()  # Optuna's halving decides (and records the rung) at step 1
    return trial, stopped


def frozen(study, trial):
    return study.get_trials(deepcopy=False)[trial.number]


def test_a_rung_promotes_by_non_dominated_rank_where_the_score_alone_would_stop_a_cheap_network():
    vectors = [(0.90, 900), (0.85, 800), (0.80, 700), (0.75, 600), (0.70, 500)]
    pareto = ParetoSuccessiveHalvingPruner(["max", "min"], min_resource=1, reduction_factor=3)
    study = rung_study(vectors)
    cheap, stopped = at_rung(study, 0.60, 50)  # the least accurate, and by far the smallest: on the front
    assert stopped and not pareto.prune(study, frozen(study, cheap))  # Optuna's halving stops it; ours keeps it
    study = rung_study(vectors)
    dominated, _ = at_rung(study, 0.65, 950)  # worse than every other on both
    assert pareto.prune(study, frozen(study, dominated))
    study = rung_study(vectors)
    behind, _ = at_rung(study, 0.72, 650)  # dominated by (0.75, 600) alone: the second front, below the top 2 of 6
    assert pareto.prune(study, frozen(study, behind))
    assert pareto.rung_steps(30) == [1, 3, 9, 27]


def test_a_search_with_two_objectives_prunes_by_rank_and_records_each_objective_per_epoch(tmp_path):
    result = search(tmp_path, trials=9, epochs=4, pruner="successive_halving", seed=2)
    states = [t.state for t in result.trials]
    assert "pruned" in states and "complete" in states
    for frozen in result.study.get_trials():
        steps = sorted(frozen.intermediate_values)
        vectors = [frozen.user_attrs[vector_attr(s)] for s in steps]
        record = result.store.record(frozen.number)
        assert [v[0] for v in vectors] == [frozen.intermediate_values[s] for s in steps]  # the score, every epoch
        assert {v[1] for v in vectors} == {record.metrics["params"]}  # and the cost, measured once


def reported(study, vectors, steps=(0, 1)):
    """Trials of ``study`` that reported these (accuracy, params) vectors at each of ``steps``; running."""
    trials = []
    for accuracy, params in vectors:
        trial = study.ask()
        for step in steps:
            trial.set_user_attr(vector_attr(step), [accuracy, params])
            trial.report(accuracy, step)
        trials.append(trial)
    return trials


def test_hyperband_brackets_rank_each_trial_against_its_own_bracket_only():
    hyperband = ParetoHyperbandPruner(["max", "min"], min_resource=1, max_resource=9, reduction_factor=3)
    study = optuna.create_study(study_name="hb", direction="maximize")
    good = reported(study, [(0.9 - i / 100, 100 + i) for i in range(30)])  # a chain: each better on both than the next
    assert not hyperband.brackets  # made on the first call, when max_resource is known
    worst = reported(study, [(0.1, 10 ** 6)] * 6)  # dominated by every other trial
    for trial in worst:
        stopped = hyperband.prune(study, frozen(study, trial))
        assert stopped == (hyperband.bracket_of("hb", trial.number) == 0)  # only bracket 0 has a rung at step 1
    assert [b.rung_steps(30) for b in hyperband.brackets] == [[1, 3, 9, 27], [3, 9, 27], [9, 27]]
    brackets = [hyperband.bracket_of("hb", t.number) for t in good]
    assert set(brackets) == {0, 1, 2} and brackets.count(0) > brackets.count(1) > brackets.count(2)  # budgets 9, 5, 3
    # a bracket-0 trial in its bracket's top third, though not in the top third of the whole study: kept
    everyone = ParetoSuccessiveHalvingPruner(["max", "min"], min_resource=1, reduction_factor=3)
    kept = [t for t, b in zip(good, brackets) if b == 0 and not hyperband.prune(study, frozen(study, t))]
    assert any(everyone.prune(study, frozen(study, t)) for t in kept)


def test_hyperband_with_auto_max_resource_stops_nothing_before_a_trial_completes():
    hyperband = ParetoHyperbandPruner(["max", "min"])
    study = optuna.create_study(direction="maximize")
    trials = reported(study, [(0.9, 100)] * 3 + [(0.1, 10 ** 6)])
    assert not hyperband.prune(study, frozen(study, trials[-1])) and not hyperband.brackets
    study.tell(trials[0], 0.9)
    hyperband.prune(study, frozen(study, trials[-1]))
    assert hyperband.max_resource == 2 and len(hyperband.brackets) == 1  # last step 1: two epochs, one bracket


def test_a_search_with_two_objectives_and_hyperband_prunes_in_its_brackets(tmp_path):
    result = search(tmp_path, trials=12, epochs=4, pruner="hyperband", seed=1)
    assert {t.state for t in result.trials} == {"pruned", "complete"}
    assert result.pareto and all(t.state == "complete" for t in result.pareto)


@pytest.mark.parametrize("pruner, message", [
    ("median", "stops trials by the one score, which would cut cheap networks off the Pareto front"),
    ("lce", "with several objectives use pruner=successive_halving or pruner=hyperband"),
])
def test_a_pruner_that_ranks_by_the_score_alone_is_refused_with_two_objectives(tmp_path, pruner, message):
    with pytest.raises(ConfigError, match=message):
        search(tmp_path, pruner=pruner)


def test_tensorboard_shows_the_front_its_hypervolume_and_every_objective(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = search(tmp_path, trials=4, tensorboard=True, objectives={"val_accuracy": "max", "macs": "min"})
    run = EventAccumulator(str(tmp_path / "run" / "tb" / "search")).Reload()
    volumes = run.Scalars("search/hypervolume")
    assert {e.step for e in volumes} == {t.number for t in result.trials}  # after every trial (and again at the end)
    assert volumes[-1].value == pytest.approx(result.hypervolume())
    assert all(a.value <= b.value + 1e-12 for a, b in zip(volumes, volumes[1:]))  # a front's volume never shrinks
    image = run.Images("search/pareto_front")[-1]
    assert image.width > 200 and image.height > 200
    trial = EventAccumulator(str(tmp_path / "run" / "tb" / f"trial_{result.pareto[0].number:04d}")).Reload()
    assert {"hparam/val_accuracy", "hparam/macs"} <= set(trial.Tags()["scalars"])
