"""Multi-fidelity scheduling: Optuna's successive halving (ASHA), Hyperband and median pruners chosen by
config name, BOHB as one config, with every strategy, the table estimator and real training."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from collections import Counter

import numpy as np
import optuna
import pytest

import nas
from nas import Integer, SearchSpace, TableEstimator
from nas._config import compose, instantiate
from nas.testing import ToySpace
from search_spaces.mlp import MLPSpace
from strategies import SequenceStrategy

EPOCHS = 27


class LevelSpace(SearchSpace):
    """One integer per architecture; architecture i learns towards level i (curves never cross)."""

    name = "levels"

    def __init__(self, n: int = 27) -> None:
        self.n = n

    def dimensions(self):
        return {"i": Integer(0, self.n - 1)}

    def build(self, sample, input_shape, num_classes):
        raise NotImplementedError("looked up, never built")


def level_curve(arch):
    level = 0.3 + 0.6 * int(arch.sample["i"]) / 26
    return {"score": level, "curve": [level * (1 - math.exp(-(t + 1) / 4)) for t in range(EPOCHS)], "seconds": float(EPOCHS)}


@pytest.mark.parametrize("name,cls", [("none", optuna.pruners.NopPruner), ("median", optuna.pruners.MedianPruner),
                                      ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
                                      ("hyperband", optuna.pruners.HyperbandPruner)])
def test_pruners_are_chosen_by_config_name(name, cls):
    assert isinstance(instantiate(compose([f"pruner={name}"]).pruner, kind="pruner"), cls)


def test_bohb_is_one_config_selecting_tpe_and_hyperband():
    cfg = compose(["strategy=bohb"])
    assert cfg.strategy._target_ == "optuna.samplers.TPESampler" and cfg.pruner._target_ == "optuna.pruners.HyperbandPruner"
    assert compose(["strategy=bohb", "pruner=median"]).pruner._target_ == "optuna.pruners.MedianPruner"  # the command line wins
    with pytest.raises(nas.ConfigError, match="Valid names.*hyperband"):
        compose(["pruner=hyperbnd"])


def test_successive_halving_stops_at_its_rungs_and_spends_a_third_per_rung(tmp_path):
    space = LevelSpace()
    order = np.random.default_rng(0).permutation(27).tolist()
    result = nas.search(space=space, strategy=SequenceStrategy(space, samples=[{"i": i} for i in order]),
                        estimator=TableEstimator(level_curve, space=space), trials=27, out_dir=tmp_path, progress=False,
                        tensorboard=False, pruner="successive_halving")
    epochs = Counter(int(r.metrics["epochs"]) for r in result.trials)
    # Optuna counts steps from 0, as the runner reports them: rungs at steps 1, 3, 9 = after 2, 4, 10 epochs
    assert set(epochs) <= {2, 4, 10, EPOCHS}
    reached = {rung: sum(n for e, n in epochs.items() if e > rung) for rung in (2, 4, 10)}
    # asynchronous: a trial is promoted if in the top third of those already at its rung (always, for the first two)
    assert reached[2] <= 27 / 3 + 4 and reached[4] <= reached[2] / 3 + 3 and reached[10] <= reached[4] / 3 + 3
    best = max(result.trials, key=lambda r: r.arch.sample["i"])
    assert best.state == "complete" and result.best.arch.sample["i"] == 26
    spent = sum(r.metrics["epochs"] for r in result.trials)
    assert spent < 0.35 * 27 * EPOCHS  # the declared budget: the top third goes on at each rung
    assert sum(r.cost for r in result.trials) == pytest.approx(spent)  # cost follows the epochs looked up


@pytest.mark.parametrize("name", ["random", "grid", "evolution", "local", "bo", "rl", "tpe", "gp", "bohb"])
def test_every_strategy_runs_under_successive_halving_on_table_curves(name, tmp_path):
    space = ToySpace()

    def entry(arch):
        score = ToySpace.score(arch.sample) + 0.3
        return {"score": score, "curve": [score * (1 - 0.5 ** (t + 1)) for t in range(8)], "seconds": 8.0}

    knobs = {"evolution": ["strategy.population_size=3", "strategy.tournament_size=2"], "bo": ["strategy.n_initial=3"],
             "tpe": ["strategy.n_startup_trials=3"], "gp": ["strategy.n_startup_trials=3"], "bohb": ["strategy.n_startup_trials=3"],
             "grid": ["strategy.shuffle=true"]}.get(name, [])
    pruner = None if name == "bohb" else "successive_halving"  # bohb brings Hyperband itself
    result = nas.search(space=space, strategy=name, estimator=TableEstimator(entry, space=space), trials=14, seed=0,
                        out_dir=tmp_path, progress=False, tensorboard=False, pruner=pruner, overrides=knobs)
    states = Counter(r.state for r in result.trials)
    assert sum(states.values()) == 14 and states["pruned"] >= 2 and states["complete"] >= 1, states
    assert all(r.metrics["epochs"] < 8 and len(r.curve) == r.metrics["epochs"] for r in result.trials if r.state == "pruned")


def test_nash_runs_under_successive_halving_and_breeds_from_its_best_complete_trial(tmp_path):
    """NASH needs a space with morphs (the toy space has none): the MLP space with a made-up table
    in which wider and deeper is better."""
    space = MLPSpace(widths=(16, 32, 64, 128), activation=("relu",))

    def entry(arch):
        s = arch.sample
        score = 0.4 + 0.05 * s["depth"] + sum(s[f"layer{i}.width"] for i in range(1, s["depth"] + 1)) / 2000
        return {"score": score, "curve": [score * (1 - 0.5 ** (t + 1)) for t in range(8)], "seconds": 8.0}

    result = nas.search(space=space, strategy="nash", estimator=TableEstimator(entry, space=space), trials=14, seed=0,
                        out_dir=tmp_path, progress=False, tensorboard=False, pruner="successive_halving",
                        overrides=["strategy.children=3"])
    trials = result.trials
    states = Counter(r.state for r in trials)
    assert sum(states.values()) == 14 and states["pruned"] >= 1 and states["complete"] >= 2, states
    assert trials[0].parent is None and all(r.parent is not None for r in trials[1:])
    for r in trials[1:]:  # every child is a morph of a complete trial, never of a pruned one
        parent = trials[r.parent]
        assert parent.state == "complete" and r.arch.key in {space.key(m.child) for m in space.morphs(parent.arch.sample)}
    assert result.best.value > trials[0].value  # the climb went somewhere


ASHA_WORKER = textwrap.dedent("""
    import math, sys
    import nas
    from nas import TableEstimator
    from nas.testing import ToySpace
    space = ToySpace()
    def entry(arch):
        score = ToySpace.score(arch.sample) + 0.3
        return {"score": score, "curve": [score * (1 - 0.5 ** (t + 1)) for t in range(8)], "seconds": 8.0}
    nas.search(space=space, strategy="random", estimator=TableEstimator(entry, space=space), trials=24, seed=int(sys.argv[2]),
               out_dir=sys.argv[1] + "/worker" + sys.argv[2], storage="sqlite:///" + sys.argv[1] + "/shared.db",
               progress=False, tensorboard=False, pruner=sys.argv[3], overrides=sys.argv[4:])
""")


@pytest.mark.slow
@pytest.mark.parametrize("pruner", [["successive_halving"], ["lce", "pruner.horizon=8", "pruner.accept_at=4"]], ids=["asha", "lce"])
def test_asha_two_workers_share_one_study_and_its_rungs(tmp_path, pruner):
    """Also pruner=lce (rungs at 1, 2, acceptance at 4 of the table's 8 epochs) on one storage with two workers: the
    budget holds, both prune, and no trial of either runs past the acceptance epoch."""
    workers = [subprocess.Popen([sys.executable, "-c", ASHA_WORKER, str(tmp_path), str(seed), *pruner]) for seed in (1, 2)]
    assert [w.wait(timeout=240) for w in workers] == [0, 0]
    study = optuna.load_study(study_name="nas", storage=f"sqlite:///{tmp_path}/shared.db")
    states = Counter(t.state.name for t in study.trials)
    # one budget for both: each worker checks it before starting a trial, so the two may both start the last one
    assert 24 <= sum(states.values()) <= 25 and states["PRUNED"] >= 4 and states["COMPLETE"] >= 2, states
    started = sorted((t.datetime_start, t.datetime_complete) for t in study.trials)
    assert any(b[0] < a[1] for a, b in zip(started, started[1:])), "the two workers never ran at the same time"
    if pruner[0] == "lce":
        assert all(len(t.intermediate_values) <= 4 for t in study.trials)
        assert all(len(t.intermediate_values) == 4 for t in study.trials if t.state.name == "COMPLETE")  # accepted, not run to 8


@pytest.mark.slow
def test_hyperband_prunes_real_training_and_keeps_the_cost_of_pruned_trials(tmp_path):
    result = nas.search(space="macro_chain", dataset="digits", strategy="random", trials=8, epochs=6, seed=0, out_dir=tmp_path,
                        progress=False, tensorboard=False, pruner="hyperband",
                        overrides=["estimator.threads=1", "pruner.max_resource=6", "space.widths=[8,16]"])
    pruned = [r for r in result.trials if r.state == "pruned"]
    complete = [r for r in result.trials if r.state == "complete"]
    assert pruned and complete
    assert all(r.metrics["epochs"] < 6 and r.cost > 0 for r in pruned)
    assert all(r.metrics["epochs"] == 6 for r in complete)


@pytest.mark.parametrize("message", [
    "(sqlite3.IntegrityError) UNIQUE constraint failed: alembic_version.version_num",
    '(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "alembic_version_pkc"',
    '(psycopg2.errors.DuplicateTable) relation "studies" already exists',
    # two `nas-search` processes on a new MariaDB database (tests/test_rdb_servers.py, seen in CI)
    "(pymysql.err.IntegrityError) (1062, \"Duplicate entry 'v3.2.0.a' for key 'PRIMARY'\")",
    "(pymysql.err.OperationalError) (1050, \"Table 'studies' already exists\")",
])
def test_a_worker_that_loses_the_race_to_create_the_tables_retries(tmp_path, monkeypatch, message):
    from nas.store import optuna_store as _runner

    real, calls = optuna.storages.RDBStorage, []

    def racing(*args, **kwargs):  # the first attempt meets tables another worker is creating
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(message)
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    _, storage = _runner.open_storage(f"sqlite:///{tmp_path}/race.db", tmp_path)
    assert len(calls) == 2 and isinstance(storage, real) and (tmp_path / "race.db").is_file()
    monkeypatch.setattr(optuna.storages, "RDBStorage", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no such host")))
    with pytest.raises(nas.ConfigError, match="`storage` must be a reachable Optuna storage URL.*no such host"):
        _runner.open_storage("postgresql://nobody@nowhere/db", tmp_path)


def test_tpe_sees_pruned_trials_with_their_partial_curves():
    from nas import Architecture, SamplerStrategy, TrialRecord

    space = ToySpace()
    strategy = SamplerStrategy(space, optuna.samplers.TPESampler, seed=0)
    sample = space.sample(np.random.default_rng(0))
    arch = Architecture(space="toy", sample=sample, key=space.key(sample))
    history = [TrialRecord(number=0, arch=arch, state="pruned", curve=(0.1, 0.2)),
               TrialRecord(number=1, arch=arch, state="complete", value=0.5, curve=(0.3, 0.4, 0.5))]
    pruned, complete = strategy._study_with(history).trials
    assert pruned.intermediate_values == {0: 0.1, 1: 0.2} and pruned.state == optuna.trial.TrialState.PRUNED
    assert complete.intermediate_values == {} and complete.value == 0.5  # a completed trial needs only its value
