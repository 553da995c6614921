"""CPU threads: one by default (fast on a shared machine, the same results anywhere), recorded, checked."""

from __future__ import annotations

import json

import pytest
import torch

import nas
from nas import ConfigError, TrainingEstimator


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "two"])
def test_threads_must_be_a_positive_integer_or_null(digits_splits, bad):
    with pytest.raises(ConfigError, match=r"`threads` must be an integer >= 1 or null \(every core\), but got"):
        TrainingEstimator(space=nas.get_space("mlp"), dataset=digits_splits, threads=bad)


def test_one_thread_by_default_and_every_core_on_request(digits_splits, monkeypatch):
    monkeypatch.setattr("nas.estimators.training.available_cpus", lambda: 2)
    TrainingEstimator(space=nas.get_space("mlp"), dataset=digits_splits, device="cpu")
    assert torch.get_num_threads() == 1
    est = TrainingEstimator(space=nas.get_space("mlp"), dataset=digits_splits, device="cpu", threads=None)
    assert torch.get_num_threads() == 2 and est.describe()["threads"] == 2


def test_resuming_on_another_thread_count_says_so(tmp_path, capsys):
    kw = dict(space="mlp", strategy="random", dataset="digits", epochs=1, seed=0, out_dir=tmp_path)
    nas.search(trials=1, overrides=["estimator.threads=1"], **kw)
    assert json.loads((tmp_path / "run.json").read_text())["estimator"]["threads"] == 1
    capsys.readouterr()
    resumed = nas.search(trials=2, overrides=["estimator.threads=2"], **kw)
    out = capsys.readouterr().out
    assert "trained on 1 CPU thread(s), these train on 2" in out and "estimator.threads=1 trains as before" in out
    assert len(resumed.trials) == 2  # a note, not a refusal: how fast it runs is not what it measures
    capsys.readouterr()
    nas.search(trials=3, overrides=["estimator.threads=2"], **kw)
    assert "CPU thread" not in capsys.readouterr().out  # now recorded as 2


def test_null_threads_takes_every_core_from_the_command_line_config(tmp_path, monkeypatch):
    monkeypatch.setattr("nas.estimators.training.available_cpus", lambda: 2)
    nas.search(space="mlp", dataset="digits", trials=1, epochs=1, out_dir=tmp_path / "a", progress=False, tensorboard=False,
               overrides=["estimator.threads=null"])
    assert json.loads((tmp_path / "a" / "run.json").read_text())["estimator"]["threads"] == 2
    with pytest.raises(ConfigError, match=r"`epochs` must be a number \(its default is 10\), but got None"):
        nas.search(space="mlp", dataset="digits", trials=1, out_dir=tmp_path / "b", progress=False, overrides=["estimator.epochs=null"])
