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
from nas.core.workers import this_process, this_worker, worker_is_gone
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

    nas.search(space=ToySpace(), estimator=Slow(), trials=5, out_dir=sys.argv[1], progress=False, storage=sys.argv[2] or None)
""")


class Quick(nas.Estimator):
    input_shape, num_classes = (4,), 2

    def evaluate(self, arch, report):
        return nas.Evaluation(score=ToySpace.score(arch.sample))


@pytest.mark.parametrize("shared", [False, True], ids=["own_sqlite", "shared_storage"])
def test_killed_worker_keeps_finished_trials_and_resume_marks_the_stale_one(tmp_path, shared):
    """In a shared storage a running trial may be another live worker's; one whose worker was a
    process of this machine that is gone is marked failed all the same."""
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
                         storage=storage if shared else None)
    states = [r.state for r in resumed.trials]
    assert states == ["complete", "complete", "failed", "complete", "complete"]
    assert "worker stopped" in resumed.trials[2].reason
    assert resumed.trials[3].worker == this_worker()


def test_a_worker_is_gone_only_when_it_was_a_process_of_this_machine_that_ended():
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    host, me = socket.gethostname(), this_process()
    assert worker_is_gone(f"{host}:{ended.pid}") and worker_is_gone(f"{host}:{ended.pid}", me)
    assert not worker_is_gone(this_worker()) and not worker_is_gone(this_worker(), me)
    assert not worker_is_gone(f"another-{host}:{ended.pid}")  # another machine's worker may be alive
    assert not worker_is_gone(None) and not worker_is_gone("no pid here")
    if me:  # Linux: a pid now another process's, a zombie, another container
        assert worker_is_gone(this_worker(), {**me, "started": "1"})  # our pid, but a process that started at boot
        assert not worker_is_gone(f"{host}:{ended.pid}", {**me, "pid_namespace": "pid:[1]"})  # not ours to see
        zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # exits and is not reaped until wait()
        deadline = time.time() + 30
        while Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z" and time.time() < deadline:
            time.sleep(0.05)
        started = Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[19]
        assert worker_is_gone(f"{host}:{zombie.pid}", {**me, "started": started})
        zombie.wait()


def test_a_running_trial_of_a_live_worker_in_a_shared_storage_is_left_alone(tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    nas.search(space=ToySpace(), estimator=Quick(), trials=1, out_dir=tmp_path / "a", progress=False, storage=storage)
    study = optuna.load_study(study_name="nas", storage=storage)
    done = study.trials[0]
    info = done.user_attrs[TRIAL_ATTR]
    elsewhere = {**info, "worker": "another-host:1", "process": {}}
    for attrs in ({**info, "worker": this_worker(), "process": this_process()}, elsewhere):  # this process, and another machine's
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, params=done.params,
                                                  distributions=done.distributions, user_attrs={TRIAL_ATTR: attrs}))
    resumed = nas.search(space=ToySpace(), estimator=Quick(), trials=4, out_dir=tmp_path / "b", progress=False, storage=storage)
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
