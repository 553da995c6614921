"""Local workers: `nas-search workers=N` and `nas-worker RUN_DIR` on one study, real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nas
from nas import ConfigError

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}


def nas_search(*args, cwd, timeout=300):
    return subprocess.run([str(BIN / "nas-search"), *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def workers_of(result):
    return {r.worker for r in result.trials}


def test_two_workers_share_one_study_and_its_budget_exactly(tmp_path):
    run_dir = tmp_path / "run"
    done = nas_search("workers=2", "budget.trials=16", "estimator.epochs=3", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = nas.load(run_dir)
    assert len(result.trials) == 16 and all(r.state == "complete" for r in result.trials)
    assert len(workers_of(result)) == 2  # the coordinator (worker 0) and one worker process
    assert all(w.startswith(socket.gethostname() + ":") for w in workers_of(result))
    assert (run_dir / "study.log").is_file() and not (run_dir / "study.db").exists()  # the journal file by default
    assert json.loads((run_dir / "run.json").read_text())["storage"] == "journal://{run_dir}/study.log"
    assert "[w0] trial" in done.stdout and "[w1] trial" in done.stdout
    board = (run_dir / "leaderboard.md").read_text()
    assert "| worker |" in board and "16 trials: 16 complete." in board
    best = json.loads((run_dir / "best" / "arch.json").read_text())
    assert best["trial"] == result.best.number  # the study's best, whichever worker ran it
    assert len({r.arch.key for r in result.trials}) == 16  # draws follow the shared history, running trials included: none twice

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    search = EventAccumulator(str(run_dir / "tb" / "search"), size_guidance={"images": 0}).Reload()
    assert [e.step for e in search.Scalars("search/trial_val_accuracy")] == list(range(16))  # every trial, in order
    assert search.Scalars("search/best_val_accuracy")[-1].value == pytest.approx(result.best.value)
    assert "architecture/rank_1" in search.Tags()["images"] and search.Tags()["graph"]
    assert (run_dir / "tb" / "search_worker0").is_dir() and (run_dir / "tb" / "search_worker1").is_dir()


def test_many_workers_never_start_more_than_the_budget(tmp_path):
    """Three `nas-worker` processes started together race for 60 one-epoch MLP trials (a tenth of a
    second each): the lock around the budget check and the start keeps the count exact."""
    run_dir = tmp_path / "run"
    nas.search(space="mlp", trials=1, epochs=1, out_dir=run_dir, progress=False, tensorboard=False,
               storage="journal://{run_dir}/study.log")
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("trials: 1\n", "trials: 60\n", 1))
    racers = [subprocess.Popen([str(BIN / "nas-worker"), str(run_dir), "--index", str(i)], env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True) for i in range(3)]
    for racer in racers:
        assert racer.wait(timeout=300) == 0, racer.stderr.read() if racer.stderr else ""
    result = nas.load(run_dir)
    assert len(result.trials) == 60 and sum(r.state == "complete" for r in result.trials) == 60
    assert len(workers_of(result)) >= 3  # the first search's process and at least two racers


def test_workers_settings_are_checked_before_any_process_starts(tmp_path):
    with pytest.raises(ConfigError, match=r"`workers` must be an integer >= 0 .*but got -1"):
        nas.search(space="mlp", trials=1, out_dir=tmp_path / "a", progress=False, overrides=["workers=-1"])
    with pytest.raises(ConfigError, match=r"`workers=2` starts worker processes .*objects given in Python \(space\)"):
        nas.search(space=nas.get_space("mlp"), trials=1, out_dir=tmp_path / "b", progress=False, overrides=["workers=2"])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_workers_get_the_visible_gpus_round_robin():
    from nas.engine.pool import visible_gpus, worker_env

    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2, 5"}) == ["2", "5"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []  # CUDA hidden: CPU workers
    devices = [worker_env(i, {"PATH": "/bin"}, ["2", "5"])["CUDA_VISIBLE_DEVICES"] for i in range(5)]
    assert devices == ["2", "5", "2", "5", "2"]
    assert "CUDA_VISIBLE_DEVICES" not in worker_env(0, {"PATH": "/bin"}, [])
    assert worker_env(0, {"PATH": "/bin"}, [])["PATH"] == "/bin"


def test_nas_worker_needs_a_run_directory(tmp_path):
    done = subprocess.run([str(BIN / "nas-worker"), str(tmp_path)], env=ENV, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "must be a run directory holding config.yaml" in done.stderr


def _wait_for(predicate, seconds=120.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail("timed out waiting")


def _finished(run_dir):
    try:
        return sum(r.finished for r in nas.load(run_dir).trials)
    except Exception:
        return 0


def _running(run_dir):
    try:
        return sum(r.state == "running" for r in nas.load(run_dir).trials)
    except Exception:
        return 0


@pytest.mark.slow
def test_a_worker_attached_with_nas_worker_joins_the_running_search(tmp_path):
    """`workers=0` prepares the run for workers started elsewhere; one is started, a second attaches
    while it runs; they share the budget exactly."""
    run_dir = tmp_path / "run"
    # 8 epochs a trial: the 13 trials left when the second worker starts outlast its start-up (torch's import), which
    # at 3 epochs they did not always (the first worker finished the budget alone: a flake seen once)
    prepared = subprocess.run([str(BIN / "nas-search"), "workers=0", "budget.trials=14", "estimator.epochs=8", "tensorboard=false",
                               f"hydra.run.dir={run_dir}"], env=ENV, capture_output=True, text=True, timeout=120)
    assert prepared.returncode == 0, prepared.stderr
    assert f"attach workers with: nas-worker {run_dir}" in prepared.stdout and "| rank |" not in prepared.stdout
    assert nas.load(run_dir).trials == [] and (run_dir / "study.log").is_file()
    first = subprocess.Popen([str(BIN / "nas-worker"), str(run_dir), "--index", "1"], cwd=tmp_path, env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: _finished(run_dir) >= 1)
    attached = subprocess.run([str(BIN / "nas-worker"), str(run_dir), "--index", "9"], env=ENV, capture_output=True, text=True,
                              timeout=300)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0 and attached.returncode == 0, err + attached.stderr
    result = nas.load(run_dir)
    assert len(result.trials) == 14 and all(r.state == "complete" for r in result.trials)
    assert len(workers_of(result)) == 2 and "[w9] trial" in attached.stdout


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_the_budget_still_exact(tmp_path):
    run_dir = tmp_path / "run"
    coordinator = subprocess.Popen([str(BIN / "nas-search"), "workers=2", "budget.trials=8", "estimator.epochs=10", "tensorboard=false",
                                    f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
    me = f"{socket.gethostname()}:{coordinator.pid}"  # worker 0; kill the other one, in the middle of a trial

    def others_running():
        try:
            return [r for r in nas.load(run_dir).trials if r.state == "running" and r.worker != me]
        except Exception:
            return []

    _wait_for(lambda: bool(others_running()))
    victim = int(others_running()[0].worker.rpartition(":")[2])
    os.kill(victim, signal.SIGKILL)
    out, err = coordinator.communicate(timeout=300)
    assert coordinator.returncode == 0, err
    assert f"(pid {victim}) died (signal 9); restarting it" in out
    result = nas.load(run_dir)
    states = [r.state for r in result.trials]
    assert "running" not in states and "waiting" not in states
    killed = [r for r in result.trials if r.worker == f"{socket.gethostname()}:{victim}" and r.state == "failed"]
    assert len(killed) == 1 and f"its worker {socket.gethostname()}:{victim} died" in killed[0].reason
    assert f"Trial #{killed[0].number} failed (lost: its worker" in out and "re-queued as #" in out
    # The lost trial was run again (same architecture) by the restarted worker, at once: 8 finished, all complete.
    retry = [r for r in result.trials if r.retry_of == killed[0].number]
    assert len(retry) == 1 and retry[0].arch.key == killed[0].arch.key and retry[0].state == "complete"
    assert states.count("complete") == 8 and len(result.trials) == 9


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_and_rerunning_resumes(tmp_path):
    run_dir = tmp_path / "run"
    args = [str(BIN / "nas-search"), "workers=2", "budget.trials=6", "estimator.epochs=10", "tensorboard=false", f"hydra.run.dir={run_dir}"]
    coordinator = subprocess.Popen(args, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # a trial finished and one is training (a Ctrl-C between two trials of every worker interrupts none: nothing to assert)
    _wait_for(lambda: _finished(run_dir) >= 1 and _running(run_dir) >= 1)
    coordinator.send_signal(signal.SIGINT)
    out, err = coordinator.communicate(timeout=120)
    assert coordinator.returncode == 130 and "to resume" in err
    stopped = nas.load(run_dir).trials
    assert "running" not in [r.state for r in stopped]
    interrupted = [r for r in stopped if r.state == "failed" and "interrupted" in r.reason]
    assert interrupted and f"Trial #{interrupted[0].number} interrupted by the user (Ctrl-C): queued to run again" in out
    again = subprocess.run(args, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    # Re-running resumes: each interrupted trial is run again (the same architecture), and the budget is exact.
    final = nas.load(run_dir).trials
    assert sum(r.state == "complete" for r in final) == 6 and len(final) == 6 + len(interrupted), [r.state for r in final]
    for trial in interrupted:
        assert [r.arch.key for r in final if r.retry_of == trial.number and r.state == "complete"] == [trial.arch.key]


@pytest.mark.parametrize("storage, message", [
    ("sqlite:///{run_dir}/study.db", "is an SQLite file, which several processes writing at once lock"),
    ("memory", "lives in one process's memory"),
])
def test_workers_refuse_a_storage_they_cannot_share(tmp_path, storage, message):
    out = subprocess.run([str(BIN / "nas-search"), "workers=2", f"storage='{storage}'", "budget.trials=2", f"hydra.run.dir={tmp_path}"],
                         env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and message in out.stderr and "trial" not in out.stdout


def test_a_single_process_run_directory_takes_no_attached_worker(tmp_path):
    nas.search(space="mlp", trials=1, epochs=1, out_dir=tmp_path, progress=False, tensorboard=False)
    out = subprocess.run([str(BIN / "nas-worker"), str(tmp_path)], env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "is an SQLite file" in out.stderr


def test_a_trial_records_the_device_and_the_gpu_its_worker_was_given(monkeypatch, digits_splits):
    import torch

    from nas.estimators.training import TrainingEstimator

    estimator = TrainingEstimator(space=nas.get_space("mlp"), dataset=digits_splits, epochs=1, threads=1)
    space = estimator.build_space
    evaluation = estimator.evaluate(space.architecture(space.sample(np.random.default_rng(0))), lambda *a, **k: False)
    assert evaluation.metrics["device"] == "cpu"
    estimator.device = torch.device("cuda", 0)  # as a worker of `workers=N` on a GPU machine sees it (no CUDA needed to name it)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert estimator.device_label() == "cuda:0 (GPU 3)"
