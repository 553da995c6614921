"""Nothing finished is lost: a worker killed outright, and an install outside the repository."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest

import nas
from nas.core.workers import this_worker
from nas.store.optuna_store import TRIAL_ATTR
from nas.testing import ToySpace

ROOT = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import sys, time
    import nas
    from nas.testing import ToySpace

    class Slow(nas.Estimator):
        input_shape, num_classes = (4,), 2
        def evaluate(self, arch, report):
            if self.__dict__.setdefault("calls", 0) == 2:
                time.sleep(120)          # the parent kills us here
            self.calls += 1
            return nas.Evaluation(score=ToySpace.score(arch.sample), model=ToySpace().build(arch.sample, (4,), 2))

    nas.search(space=ToySpace(), estimator=Slow(), trials=5, out_dir=sys.argv[1], progress=False, storage=sys.argv[2] or None,
               overrides=["heartbeat.interval=1", "heartbeat.grace=2"])
""")


class Quick(nas.Estimator):
    input_shape, num_classes = (4,), 2

    def evaluate(self, arch, report):
        return nas.Evaluation(score=ToySpace.score(arch.sample))


@pytest.mark.parametrize("shared", [False, True], ids=["own_sqlite", "shared_storage"])
def test_killed_worker_keeps_finished_trials_and_resume_runs_the_lost_one_again(tmp_path, shared):
    """Alone on its study, whatever was left running is lost; in a shared storage a running trial may
    be another live worker's, and is lost only once its worker has stopped beating for the grace."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    storage = f"sqlite:///{tmp_path / 'shared.db'}" if shared else f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "run"), storage if shared else ""], cwd=ROOT)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            try:
                trials = optuna.load_study(study_name="nas", storage=storage).trials
            except Exception:
                trials = []
            if len(trials) == 3 and trials[2].state == optuna.trial.TrialState.RUNNING:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the worker never reached its third trial")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = nas.load(tmp_path / "run", space=ToySpace())
    assert [r.state for r in killed.trials] == ["complete", "complete", "running"]
    assert {r.worker for r in killed.trials} == {f"{socket.gethostname()}:{proc.pid}"}
    assert (tmp_path / "run" / "best" / "weights.pt").exists()

    resumed = nas.search(space=ToySpace(), estimator=Quick(), trials=5, out_dir=tmp_path / "run", progress=False,
                         storage=storage if shared else None, overrides=["heartbeat.interval=1", "heartbeat.grace=2"])
    states = [r.state for r in resumed.trials]
    assert states == ["complete", "complete", "failed", "complete", "complete", "complete"]  # five finished: the budget
    lost = resumed.trials[2]
    assert ("worker stopped" if not shared else "stopped beating") in lost.reason
    retry = next(r for r in resumed.trials if r.retry_of == 2)
    assert retry.arch.key == lost.arch.key and retry.state == "complete" and retry.worker == this_worker()
    assert retry.number == (3 if not shared else 5)  # alone: at once; shared: once the grace had passed


def test_a_running_trial_of_a_worker_that_does_not_beat_is_left_alone(tmp_path):
    """A trial left running in a shared storage by a worker without a heartbeat (an older nas, plain
    Optuna) cannot be told lost: it is neither failed nor waited for."""
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    nas.search(space=ToySpace(), estimator=Quick(), trials=1, out_dir=tmp_path / "a", progress=False, storage=storage)
    study = optuna.load_study(study_name="nas", storage=storage)
    done = study.trials[0]
    info = {k: v for k, v in done.user_attrs[TRIAL_ATTR].items() if k != "beats"}
    for worker in (this_worker(), "another-host:1"):
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, params=done.params,
                                                  distributions=done.distributions, user_attrs={TRIAL_ATTR: {**info, "worker": worker}}))
    resumed = nas.search(space=ToySpace(), estimator=Quick(), trials=4, out_dir=tmp_path / "b", progress=False, storage=storage,
                         overrides=["heartbeat.interval=1", "heartbeat.grace=2"])
    assert [r.state for r in resumed.trials] == ["complete", "running", "running", "complete"]


@pytest.mark.slow
def test_pip_install_outside_the_repository_gives_a_working_nas_search(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    probe = subprocess.run([sys.executable, "-c", "import nas, nas._config as c; print(nas.__file__); print(c.config_dir())"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert str(target) in probe.stdout.splitlines()[0] and str(target) in probe.stdout.splitlines()[1]
    out = subprocess.run([sys.executable, str(target / "bin" / "nas-search"), "space=mlp", "budget.trials=1", "estimator.epochs=1",
                          f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "trial   1/1" in out.stdout
