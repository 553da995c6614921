"""Optuna's gRPC storage proxy (`storage=grpc://host:port`): a proxy the test runs in front of a
journal file, and searches through it, one process and `workers=2`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import optuna
import pytest

import nas
from nas.core.errors import ConfigError
from nas.store import open_storage
from nas.testing import ToySpace

pytestmark = pytest.mark.skipif(not hasattr(optuna.storages, "run_grpc_proxy_server"), reason="Optuna's gRPC proxy needs Optuna >= 4.2")
BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


class Quick(nas.Estimator):
    input_shape, num_classes = (4,), 2

    def evaluate(self, arch, report):
        return nas.Evaluation(score=ToySpace.score(arch.sample))


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    """A gRPC proxy on 127.0.0.1 in front of a journal file, served from a thread of this process."""
    folder = tmp_path_factory.mktemp("grpc")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = open_storage(f"journal:///{folder / 'study.log'}", folder)[1]
    threading.Thread(target=optuna.storages.run_grpc_proxy_server, args=(backend,), kwargs={"host": "127.0.0.1", "port": port},
                     daemon=True).start()
    url = f"grpc://127.0.0.1:{port}"
    for _ in range(100):  # until it answers
        try:
            open_storage(url, folder)
            break
        except ConfigError:
            import time

            time.sleep(0.1)
    return url


def test_a_search_through_the_grpc_proxy(proxy, tmp_path):
    result = nas.search(space=ToySpace(), estimator=Quick(), trials=6, out_dir=tmp_path, progress=False, storage=proxy,
                        overrides=["study_name=one"])
    assert len(result.trials) == 6 and all(r.state == "complete" for r in result.trials)
    assert [r.value for r in nas.load(tmp_path, space=ToySpace()).trials] == [r.value for r in result.trials]


@pytest.mark.slow
def test_two_local_workers_through_the_grpc_proxy_share_the_budget_exactly(proxy, tmp_path):
    done = subprocess.run([str(BIN / "nas-search"), "workers=2", "space=mlp", "budget.trials=6", "estimator.epochs=1", "tensorboard=false",
                           f"storage='{proxy}'", "study_name=two", f"hydra.run.dir={tmp_path / 'run'}"], env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    trials = nas.load(tmp_path / "run").trials
    assert len(trials) == 6 and all(r.state == "complete" for r in trials)


def test_a_grpc_url_without_a_proxy_is_refused_before_any_trial(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here
    with pytest.raises(ConfigError, match="must be a reachable gRPC storage proxy"):
        nas.search(space=ToySpace(), estimator=Quick(), trials=1, out_dir=tmp_path, progress=False, storage=f"grpc://127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="must name a host and port"):
        open_storage("grpc://nohost", tmp_path)
