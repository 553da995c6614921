"""The Hydra app as users call it: overrides, sweeps, errors, and the leaderboard command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nas

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
# The commands import this checkout's code (not whichever checkout the environment was installed from).
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}


def run(args, cwd, check=True):
    proc = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_nas_search_cell_space_grid_with_overrides(tmp_path):
    out = run(["nas-search", "space=cell_nb201", "strategy=grid", "dataset=digits", "budget.trials=3",
               "estimator.epochs=1", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert "trial   3/3" in out.stdout and "| rank |" in out.stdout
    assert f"tensorboard --logdir {tmp_path / 'run' / 'tb'}" in out.stdout
    result = nas.load(tmp_path / "run")
    assert len(result.trials) == 3 and result.space.name == "cell_nb201"
    # grid walks keys in order, each once
    assert len({r.arch.key for r in result.trials}) == 3
    board = run(["nas-leaderboard", str(tmp_path / "run")], cwd=tmp_path)
    assert board.stdout.strip() == result.leaderboard().strip()


def test_multirun_gives_one_run_directory_per_job(tmp_path):
    run(["nas-search", "-m", "space=mlp", "strategy=random,grid", "seed=0,1", "budget.trials=1", "estimator.epochs=1",
         "tensorboard=false", f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    runs = sorted(p for p in (tmp_path / "sweep").iterdir() if (p / "run.json").exists())
    assert len(runs) == 4
    assert {nas.load(p).meta["strategy"] for p in runs} == {"random", "grid"}


def test_a_strategy_built_on_another_entry_runs_in_the_app(tmp_path):
    out = run(["nas-search", "strategy=bohb", "budget.trials=2", "estimator.epochs=1", "dataset=digits", "tensorboard=false",
               f"run_dir={tmp_path / 'run'}", f"hydra.run.dir={tmp_path / 'hydra'}"], cwd=tmp_path)
    assert "strategy 'tpe'" in out.stdout and "pruner 'hyperband'" in out.stdout
    assert len(nas.load(tmp_path / "run").trials) == 2


# The nas-search app with its search replaced by compositions of ours, then one of the app's own.
APP_COMPOSING = """
import sys
from types import SimpleNamespace

import hydra
from hydra.core.global_hydra import GlobalHydra

import nas, nas._api, nas.cli
from nas._config import compose, load_group_file

def run_from_config(cfg, run_dir):
    apps = GlobalHydra.instance().hydra
    compose(["strategy=bohb"])
    load_group_file("strategy", "bohb")
    nas.get_space("macro_chain")
    assert GlobalHydra.instance().hydra is apps, "the app's Hydra was replaced"
    again = hydra.compose("config", overrides=["strategy=bohb"])
    print("app composes:", again.strategy._target_, again.pruner._target_)
    return SimpleNamespace(leaderboard=lambda: "(leaderboard)", best=None)

nas._api.run_from_config = run_from_config
sys.argv = ["nas-search", "strategy=bohb", "tensorboard=false", "hydra.run.dir=" + sys.argv[1]]
nas.cli.search_main()
"""


def test_composing_inside_the_app_leaves_the_apps_hydra_working(tmp_path):
    out = run(["python", "-c", APP_COMPOSING, str(tmp_path / "run")], cwd=tmp_path)
    assert "app composes: optuna.samplers.TPESampler optuna.pruners.HyperbandPruner" in out.stdout


def test_errors_are_one_line_and_exit_2(tmp_path):
    proc = run(["nas-search", "space=mlp", "storage=not-a-url", f"hydra.run.dir={tmp_path / 'r'}"], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "error: `storage` must be an Optuna storage URL" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_tpe_strategy_through_config(tmp_path):
    out = run(["nas-search", "space=mlp", "strategy=tpe", "budget.trials=3", "estimator.epochs=1",
               f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert "strategy 'tpe'" in out.stdout
    assert len(nas.load(tmp_path / "run").trials) == 3


@pytest.mark.parametrize("args, message", [
    (["strategy=randm"], "error: Unknown strategy 'randm'. Did you mean 'random'? Valid names: bo, bohb, evolution, gp, grid, local, "
                         "motpe, nash, nsga2, nsga3, random, rl, tpe."),
    (["-m", "strategy=random,grdi"], "error: Unknown strategy 'grdi'. Did you mean 'grid'?"),
    (["estimator.epochs=abc"], "error: estimator: `epochs` must be a number (its default is 10), but got 'abc'."),
    (["estimator.lr=fast"], "error: estimator: `lr` must be a number (its default is 0.003), but got 'fast'."),
    (["seed=abc"], "error: `seed` must be an integer or null, but got 'abc'."),
    (["budget.trials=abc"], "error: `budget.trials` must be an integer >= 1 (or null with a timeout), but got 'abc'."),
], ids=["unknown-name", "unknown-in-a-sweep", "epochs", "lr", "seed", "trials"])
def test_command_line_errors_are_the_python_ones_in_one_line_with_exit_2(tmp_path, args, message):
    proc = run(["nas-search", *args, f"hydra.run.dir={tmp_path / 'r'}", f"hydra.sweep.dir={tmp_path / 'm'}"], cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().startswith(message), proc.stderr  # the whole line, or its start where the valid names follow
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()  # refused before it ran: nothing left behind


def test_two_searches_started_in_the_same_second_get_their_own_run_directories(tmp_path):
    procs = [subprocess.Popen([str(BIN / "nas-search"), "space=mlp", "budget.trials=1", "estimator.epochs=1", "tensorboard=false",
                               "progress=false"], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all((r / "best" / "weights.pt").exists() for r in runs)
    assert {r.name.rpartition("-")[2] for r in runs} == {str(p.pid) for p in procs}


def test_help_says_what_the_commands_do_with_their_groups_and_examples(tmp_path):
    search = run(["nas-search", "--help"], cwd=tmp_path).stdout
    assert search.startswith("nas-search: neural architecture search for PyTorch.") and "powered by Hydra" not in search
    assert "strategy: bo, bohb, evolution, gp, grid, local, motpe, nash, nsga2, nsga3, random, rl, tpe" in search  # the registry's names
    assert "== Examples ==" in search and "nas-search -m strategy=random,evolution seed=0,1,2" in search
    board = run(["nas-leaderboard", "--help"], cwd=tmp_path).stdout
    assert "Print the leaderboard of a run directory" in board and "``" not in board
