"""The table estimator, NAS-Bench-201 through it, and the in-memory loop the strategy benchmark uses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import nas
from nas import ConfigError, TableEstimator
from nas.contrib.nb201 import NB201Estimator
from nas.engine.loop import run_in_memory
from nas.testing import ToySpace
from strategies import GridSearch, SequenceStrategy

NB201 = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "nb201"
BEST_CIFAR10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"  # index 6111
needs_nb201 = pytest.mark.skipif(not (NB201 / "nb201_test_accuracy.csv").is_file(), reason=f"benchmark data {NB201} is missing")


def toy_table():
    space = ToySpace(max_depth=1, with_float=False)
    return space, {space.format({"depth": 1, "l1.op": op}): {"score": s, "curve": [s / 2, s], "seconds": 10.0}
                   for op, s in (("a", 0.2), ("b", 0.5))}


def test_table_estimator_looks_up_records_cost_and_fails_missing_architectures(tmp_path):
    space, table = toy_table()
    strategy = SequenceStrategy(space, samples=[{"depth": 1, "l1.op": op} for op in "abc"])
    result = nas.search(space=space, strategy=strategy, estimator=TableEstimator(table, space=space), trials=3,
                        out_dir=tmp_path, progress=False)
    a, b, c = result.trials
    assert (a.value, b.value) == (0.2, 0.5) and result.best.number == 1
    assert b.curve == (0.25, 0.5) and b.cost == 10.0 and b.metrics["epochs"] == 2
    assert c.state == "failed" and 'l1.op="c"' in c.reason and "not in the table (2 entries)" in c.reason


def test_table_estimator_takes_a_function_and_canonical_keys():
    space = ToySpace(max_depth=1, with_float=False)
    arch = space.architecture({"depth": 1, "l1.op": "b"})
    by_function = TableEstimator(lambda a: 0.7 if a.sample["l1.op"] == "b" else None, space=space)
    assert by_function.evaluate(arch, lambda *a, **k: False).score == 0.7
    by_key = TableEstimator({arch.key: {"accuracy": 0.9}}, metric="accuracy")
    assert by_key.evaluate(arch, lambda *a, **k: False).metrics["accuracy"] == 0.9
    with pytest.raises(nas.TrialFailed, match="no `score`; it has \\['accuracy'\\]"):
        TableEstimator({arch.key: {"accuracy": 0.9}}).evaluate(arch, lambda *a, **k: False)
    with pytest.raises(ConfigError, match="`table` must be a mapping"):
        TableEstimator(42)


def test_table_curve_goes_through_the_pruner(tmp_path):
    space, table = toy_table()
    strategy = SequenceStrategy(space, samples=[{"depth": 1, "l1.op": "a"}, {"depth": 1, "l1.op": "b"}])
    result = nas.search(space=space, strategy=strategy, estimator=TableEstimator(table, space=space), trials=2, out_dir=tmp_path,
                        progress=False, pruner=optuna.pruners.ThresholdPruner(lower=0.2))
    pruned, kept = result.trials
    assert pruned.state == "pruned" and pruned.cost == pytest.approx(5.0)  # half the curve, half the cost
    assert kept.state == "complete" and kept.value == 0.5


def test_run_in_memory_records_failures_and_stops_when_exhausted():
    space, table = toy_table()
    history = run_in_memory(GridSearch(space, seed=0), TableEstimator(table, space=space), 10)
    assert [r.state for r in history] == ["complete", "complete", "failed"]


@needs_nb201
def test_nb201_search_in_python_scores_by_lookup(tmp_path):
    from nas.contrib.nb201 import nb201_table

    result = nas.search(space="cell_nb201", strategy="evolution", estimator="nb201", trials=30, seed=0, out_dir=tmp_path,
                        progress=False, tensorboard=False)
    table = nb201_table()
    best = result.best
    assert best.score == table[result.space.format(best.arch.sample)]["cifar10"]
    assert set(best.metrics) >= {"cifar10", "cifar100", "imagenet16-120"}
    assert len({r.arch.key for r in result.trials}) == 30  # evolution skips keys already tried


@needs_nb201
def test_nb201_dataset_column_from_hydra_command_line(tmp_path):
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run([str(bin_dir / "nas-search"), "space=cell_nb201", "estimator=nb201", "estimator.dataset=cifar100",
                           "strategy=local", "budget.trials=6", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = nas.load(tmp_path / "run")
    assert [r.value for r in result.trials] == [r.metrics["cifar100"] for r in result.trials]
    assert result.meta["estimator"] == {"estimator": "nb201", "dataset": "cifar100"}


@needs_nb201
def test_nb201_bad_settings_fail_before_any_lookup(tmp_path):
    with pytest.raises(ConfigError, match="Unknown dataset 'cifar1000'. Did you mean 'cifar100'"):
        NB201Estimator(dataset="cifar1000")
    with pytest.raises(ConfigError, match="Run with space=cell_nb201"):
        nas.search(space="mlp", estimator="nb201", trials=1, out_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="`path` must be a folder holding nb201_test_accuracy.csv"):
        NB201Estimator(path=str(tmp_path))


@needs_nb201
def test_nb201_table_has_every_cell_and_the_published_maxima():
    from nas.contrib.nb201 import nb201_table

    table = nb201_table()
    assert len(table) == 15_625
    assert max(table, key=lambda a: table[a]["cifar10"]) == BEST_CIFAR10 and list(table).index(BEST_CIFAR10) == 6111
    assert table[BEST_CIFAR10]["cifar10"] == pytest.approx(94.37, abs=0.005)
    assert max(v["cifar100"] for v in table.values()) == pytest.approx(73.51, abs=0.005)
    assert max(v["imagenet16-120"] for v in table.values()) == pytest.approx(47.31, abs=0.005)


@pytest.mark.parametrize("name", ["random", "grid", "evolution", "local", "bo", "rl", "tpe", "gp"])
def test_every_strategy_searches_on_with_a_pruner_stopping_lookups(name, tmp_path):
    space = ToySpace()

    def entry(arch):  # a three-epoch curve rising to the toy score
        score = ToySpace.score(arch.sample)
        return {"score": score, "curve": [score / 3, 2 * score / 3, score], "seconds": 3.0}

    knobs = {"evolution": ["strategy.population_size=3", "strategy.tournament_size=2"], "bo": ["strategy.n_initial=3"],
             "tpe": ["strategy.n_startup_trials=3"], "gp": ["strategy.n_startup_trials=3"], "grid": ["strategy.shuffle=true"]}.get(name, [])
    result = nas.search(space=space, strategy=name, estimator=TableEstimator(entry, space=space), trials=12, seed=0, out_dir=tmp_path,
                        progress=False, tensorboard=False, pruner=optuna.pruners.ThresholdPruner(lower=0.1), overrides=knobs)
    states = [r.state for r in result.trials]
    assert len(states) == 12 and set(states) <= {"complete", "pruned"}
    assert "pruned" in states and "complete" in states
    assert all(r.cost == pytest.approx(1.0) for r in result.trials if r.state == "pruned")  # stopped after the first of 3 epochs


@needs_nb201
def test_a_truncated_or_foreign_nb201_table_is_refused_naming_what_it_holds(tmp_path):
    from nas.contrib.nb201 import NB201_FILE, nb201_dir

    lines = (nb201_dir() / NB201_FILE).read_text().splitlines()
    (tmp_path / "short").mkdir()
    (tmp_path / "short" / NB201_FILE).write_text("\n".join(lines[:101]) + "\n")
    with pytest.raises(ConfigError, match="must hold all 15,625 cells of the benchmark, but holds 100 distinct ones"):
        NB201Estimator(path=str(tmp_path / "short"))
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / NB201_FILE).write_text("arch,acc\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,10\n")
    with pytest.raises(ConfigError, match="lacks ArchitectureString, CIFAR10TestAccuracy200Epochs"):
        NB201Estimator(path=str(tmp_path / "foreign"))


@needs_nb201
def test_the_nb201_check_command_summarises_the_table_and_fails_without_one(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "nas.contrib.nb201"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "15,625 cells" in ok.stdout and "best cifar10: 94.37%" in ok.stdout and "(the file this project was tested with)" in ok.stdout
    missing = subprocess.run([sys.executable, "-m", "nas.contrib.nb201", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "Getting the NAS-Bench-201 table" in missing.stderr
