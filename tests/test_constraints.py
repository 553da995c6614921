"""Constraints checked before training: an infeasible candidate is recorded with its costs, never trained, and
outside the trial budget; costs join every trained trial's metrics; bad declarations stop the search first."""

from __future__ import annotations

import optuna
import pytest

import nas
from nas import ConfigError, TableEstimator
from nas.core.objectives import parse_constraints
from nas.costs import TableCost
from nas.costs.screen import ScreenedEstimator

LATENCY = {"latency": {"warmup": 1, "repeats": 5}}


def search(tmp_path, **kwargs):
    kwargs = {"space": "macro_chain", "trials": 4, "epochs": 1, "out_dir": tmp_path / "run", "progress": False,
              "tensorboard": False, **kwargs}
    return nas.search(**kwargs)


def test_an_infeasible_candidate_is_recorded_untrained_and_outside_the_budget(tmp_path):
    result = search(tmp_path, costs=["params", "macs", LATENCY], constraints={"params": "<=20000"}, tensorboard=True)
    trained = [t for t in result.trials if t.state == "complete"]
    refused = [t for t in result.trials if t.metrics.get("infeasible")]
    assert len(trained) == 4 and refused  # the budget counts trained candidates; seed 0 draws a big one first
    for t in refused:
        assert t.state == "failed" and t.reason.startswith("infeasible before training: params ") and "> 20000" in t.reason
        assert t.metrics["params"] > 20_000 and "val_accuracy" not in t.metrics and t.cost < 1.0  # measured, not trained
    for t in trained:
        assert t.metrics["params"] <= 20_000 and t.metrics["latency_ms"] > 0 and t.metrics["latency_ms_spread"] >= 0
        assert t.metrics["macs"] > 0 and "val_accuracy" in t.metrics
    board = result.leaderboard()
    assert "| latency ms |" in board and f"({len(refused)} infeasible: refused before training by the constraints)" in board
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    columns = EventAccumulator(str(tmp_path / "run" / "tb" / f"trial_{trained[0].number:04d}")).Reload().Tags()["scalars"]
    assert {"hparam/params", "hparam/macs", "hparam/latency_ms"} <= set(columns)  # HParams table columns
    again = nas.load(tmp_path / "run")  # what the run directory keeps
    assert [t.metrics.get("infeasible") for t in again.trials] == [t.metrics.get("infeasible") for t in result.trials]


def test_a_constrained_metric_brings_its_provider_and_hydra_overrides_declare_it(tmp_path):
    result = search(tmp_path, trials=2, overrides=['constraints={macs: "<=200000"}'])
    assert all("macs" in t.metrics for t in result.trials)
    assert all(t.metrics["macs"] <= 200_000 for t in result.trials if t.state == "complete")
    assert "constraints" in (tmp_path / "run" / "run.json").read_text()


def test_constraints_no_random_candidate_meets_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="`constraints` leave nothing of space 'macro_chain': none of 200 random candidates, nor "
                                          "the smallest a descent from the closest reached .* meets params <= 1 \\(the least was "
                                          "[0-9,]+\\)\\. Loosen them\\."):
        search(tmp_path, constraints={"params": "<=1"})
    assert not (tmp_path / "run").exists()


def test_the_reachability_check_descends_to_the_spaces_smallest_architecture():
    """Four convolution layers: 200 random candidates never draw the smallest (every layer a 16-wide
    separable convolution, 2,074 params); the descent from the closest reaches it, so a bound below every
    random draw is accepted and one below the smallest network is refused naming it."""
    import numpy as np

    from nas.costs.base import measure
    from nas.costs.providers import make_providers
    from nas.costs.screen import check_reachable
    from search_spaces.macro_chain import MacroChainSpace

    space = MacroChainSpace(depth=[4], ops=["conv3x3", "conv5x5", "sep_conv3x3", "dil_conv3x3"])
    params = make_providers(["params"])
    inner = TableEstimator(lambda arch: 0.5, space=space)
    inner.input_shape, inner.num_classes = (1, 8, 8), 10
    rng = np.random.default_rng(0)
    least_drawn = min(measure(params, space, space.sample(rng), input_shape=(1, 8, 8), num_classes=10)["params"] for _ in range(200))

    def screened(bound):
        return ScreenedEstimator(inner, space=space, providers=params, constraints=parse_constraints({"params": f"<={bound}"}))

    assert least_drawn > 2074
    check_reachable(screened(least_drawn - 1))  # the same 200 draws (seed 0) meet nothing: the descent finds one
    with pytest.raises(ConfigError, match='meets params <= 2073 \\(the least was 2,074\\)') as refused:
        check_reachable(screened(2073))
    assert str(refused.value).count('op="sep_conv3x3" layer') == 4 and 'width=32' not in str(refused.value)


def test_a_search_the_constraints_leave_nothing_to_ends_at_the_cap_saying_so(tmp_path):
    """Built by hand (no probe): a phone's latency table where every candidate is too slow."""
    said = []

    class Listen(nas.Callback):
        def on_message(self, text):
            said.append(text)

    space = nas.get_space("macro_tiny")
    phone = TableCost(metrics=["latency_ms"], table={"any": {"latency_ms": 9.0}}, key_of=lambda s: "any")
    estimator = ScreenedEstimator(TableEstimator(lambda arch: 0.5, space=space), space=space, providers=[phone],
                                  constraints=parse_constraints({"latency_ms": "<=2"}))
    result = nas.search(space=space, estimator=estimator, trials=3, out_dir=tmp_path / "run", progress=False, tensorboard=False,
                        overrides=["budget.max_infeasible=5"], callbacks=[Listen()])
    assert [t.state for t in result.trials] == ["failed"] * 5 and all(t.metrics["infeasible"] for t in result.trials)
    assert all(t.reason == "infeasible before training: latency_ms 9 > 2" for t in result.trials)
    assert any("5 candidates broke the constraints before training (the cap, budget.max_infeasible, is 5)" in s for s in said), said


@pytest.mark.parametrize("kwargs, message", [
    ({"constraints": {"val_acc": ">=0.9"}}, "`constraints.val_acc` must name a metric a trial has: a cost measured before "
                                            "training .* or one measured after \\(.*val_accuracy.*\\), but got 'val_acc'"),
    ({"constraints": {"params": "<= abc"}}, "`constraints.params` must read '<= NUMBER' or '>= NUMBER'"),
    ({"costs": ["flops"]}, "Unknown cost 'flops'"),
    ({"overrides": ["budget.max_infeasible=0"], "constraints": {"params": "<=20000"}}, "`budget.max_infeasible` must be an integer >= 1"),
])
def test_bad_declarations_are_refused_before_anything_runs(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        search(tmp_path, **kwargs)
    assert not (tmp_path / "run" / "study.db").exists()


CONVS = ("nor_conv_1x1", "nor_conv_3x3")


def phone_screened(space):
    """A phone's latency table: cells with more than 2 convolutions are too slow; the score rewards 3x3 convolutions,
    so the best cells lie next to infeasible ones (45.6% of the 15,625 cells are infeasible)."""
    def convs(sample):
        return sum(v in CONVS for v in sample.values())

    phone = TableCost(metrics=["latency_ms"], table={"fast": {"latency_ms": 1.0}, "slow": {"latency_ms": 9.0}},
                      key_of=lambda s: "fast" if convs(s) <= 2 else "slow")
    score = TableEstimator(lambda arch: float(sum(v == "nor_conv_3x3" for v in arch.sample.values())), space=space)
    return ScreenedEstimator(score, space=space, providers=[phone], constraints=parse_constraints({"latency_ms": "<=2"}))


def test_optunas_samplers_are_told_the_constraints_and_draw_fewer_infeasible_cells(tmp_path):
    """The mirror of the history TPE samples from holds an infeasible trial as Optuna's `set_constraint` would
    leave it (PRUNED, `constraints:latency_ms` > 0), a feasible one with its violation <= 0. TPE then spent 32
    infeasible draws on 40 trained cells; told nothing (infeasible trials as plain failures, which it ignores)
    it spent 60, more than random search's 41 (experiments/constraint_screening.py, seed 0)."""
    from nas.store.adapters import SamplerStrategy

    space = nas.get_space("cell_nb201", network=None)
    result = nas.search(space=space, strategy="tpe", estimator=phone_screened(space), trials=40, out_dir=tmp_path / "run",
                        progress=False, tensorboard=False, overrides=["budget.max_infeasible=1000"])
    refused = sum(t.metrics.get("infeasible") is True for t in result.trials)
    assert sum(t.state == "complete" for t in result.trials) == 40 and refused < 45, refused
    strategy = SamplerStrategy(space, optuna.samplers.TPESampler, seed=0)
    study = strategy._study_with(result.trials)
    mirrored = {t.number: t for t in study.trials}
    for record in result.trials:
        trial = mirrored[record.number]
        if record.metrics.get("infeasible"):
            assert trial.state.name == "PRUNED" and trial.system_attrs["constraints:latency_ms"] == 7.0
        else:
            assert trial.state.name == "COMPLETE" and trial.system_attrs["constraints:latency_ms"] == -1.0
