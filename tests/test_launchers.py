"""A sweep of workers: `nas-search -m hydra/launcher=workers_local worker=0,1 storage=...` starts one
Hydra job per worker through submitit's local executor, each one process on the shared study."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nas
from nas.core.errors import ConfigError

BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_a_submitit_sweep_of_two_workers_shares_one_study_and_its_budget(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the submitit launcher comes with the `cluster` extra")
    storage = f"journal:///{tmp_path / 'shared' / 'study.log'}"
    done = subprocess.run([str(BIN / "nas-search"), "-m", "hydra/launcher=workers_local", "worker=0,1", "space=mlp", "budget.trials=8",
                           "estimator.epochs=3", "tensorboard=false", f"storage='{storage}'", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Submitit 'local' sweep output dir" in done.stdout + done.stderr
    jobs = sorted((tmp_path / "sweep").glob("*_*worker=*"))
    assert [j.name[0] for j in jobs] == ["0", "1"] and all((j / "run.json").is_file() for j in jobs)  # no storage URL in the names
    for job in jobs:  # each job reads the whole shared study
        trials = nas.load(job).trials
        assert len(trials) == 8 and all(r.state == "complete" for r in trials)
    logs = list((tmp_path / "sweep" / ".submitit").rglob("*_log.out"))
    assert len(logs) == 2 and all("[w" in log.read_text() for log in logs)  # two processes, each a tagged worker


@pytest.mark.parametrize("overrides, message", [
    (["worker=0"], "needs a `storage` every job shares"),
    (["worker=0", "workers=2", "storage='journal:///tmp/x.log'"], "`workers` must be 1"),
    (["worker=0", "storage='sqlite:///shared.db'"], "for a sweep of workers (worker=0), but 'sqlite:///shared.db' is an SQLite file"),
    (["worker=-1", "storage='journal:///tmp/x.log'"], "`worker` must be a job's index >= 0"),
])
def test_a_sweep_worker_without_a_shared_storage_is_refused(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("`", ".")):
        nas.search(space="mlp", trials=1, out_dir=tmp_path / "run", progress=False, overrides=overrides)
    assert not (tmp_path / "run" / "run.json").exists()
