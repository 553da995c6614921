"""Checkpoints: the re-run of a lost trial resumes where the lost one stopped, and its curve is the
one an unbroken run draws."""

from __future__ import annotations

import time

import numpy as np
import pytest

import nas
from nas.core.errors import ConfigError
from nas.engine.loop import Budget, SearchLoop
from nas.engine.resume import TrialCheckpoints, checkpoints_from_config
from nas.estimators.training import TrainingEstimator
from nas.store import open_store
from strategies import RandomSearch

EPOCHS = 5


class Killed(BaseException):
    """Stands for kill -9 in the middle of a trial: nothing of the loop's runs after it."""


class DiesInEpoch(TrainingEstimator):
    """Training that dies during epoch ``die_at`` (after the checkpoints of the epochs before it)."""

    die_at: int | None = None
    dies_with: type[BaseException] = Killed

    def evaluate(self, arch, report, parent=None):
        def dying(step, value, **scalars):
            if step == self.die_at:
                raise self.dies_with()
            return report(step, value, **scalars)

        for name in ("checkpoint", "resume", "deadline_passed"):
            setattr(dying, name, getattr(report, name))
        return super().evaluate(arch, dying, parent)


def loop_in(run_dir, estimator, *, recover):
    space = estimator.build_space
    run_dir.mkdir(parents=True, exist_ok=True)
    _, store = open_store(None, run_dir=run_dir, space=space)
    return SearchLoop(space=space, strategy=RandomSearch(space, seed=3), estimator=estimator, store=store, budget=Budget(trials=1),
                      run_dir=run_dir, recover_stale=recover, checkpoints=TrialCheckpoints(run_dir / "checkpoints"))


@pytest.mark.parametrize("dies_with, said_then", [(Killed, "Trial #0 failed (interrupted: the worker stopped before the trial "
                                                             "finished); re-queued as #1"),
                                                    (KeyboardInterrupt, "Trial #0 interrupted by the user (Ctrl-C): queued to run "
                                                                        "again as #1 when the search is resumed")],
                         ids=["kill-9", "ctrl-c"])
def test_a_lost_trial_is_run_again_from_its_last_checkpoint_and_its_curve_is_unbroken(tmp_path, digits_splits, dies_with, said_then):
    """Killed (the loop never hears of it: the resumed search finds the trial lost) or interrupted by
    Ctrl-C (the loop fails it and queues it at once): either way the re-run resumes from epoch 3."""
    space = nas.get_space("mlp")
    make = dict(space=space, dataset=digits_splits, epochs=EPOCHS, threads=1, seed=0)
    unbroken = loop_in(tmp_path / "unbroken", TrainingEstimator(**make), recover="own").run()[0]

    dying = DiesInEpoch(**make)
    dying.die_at, dying.dies_with = 3, dies_with  # epochs 0, 1, 2 done and saved; killed in epoch 3
    run_dir = tmp_path / "lost"
    said: list[str] = []  # what both loops say: the interrupted one, then the resumed one
    listener = type("Said", (nas.Callback,), {"on_message": lambda self, text: said.append(text)})()
    first = loop_in(run_dir, dying, recover="own")
    first.callbacks.callbacks.append(listener)
    with pytest.raises(dies_with):
        first.run()
    assert (run_dir / "checkpoints" / "trial-00000.pt").is_file()

    again = loop_in(run_dir, TrainingEstimator(**make), recover="own")
    again.callbacks.callbacks.append(listener)
    history = again.run()
    lost, retry = history
    assert lost.state == "failed" and retry.retry_of == 0 and retry.state == "complete"
    assert any(said_then in line for line in said), said
    assert retry.metrics["resumed_from"] == 0 and retry.metrics["resumed_steps"] == 3  # three epochs not trained again
    assert retry.arch.key == unbroken.arch.key
    np.testing.assert_array_equal(retry.curve, unbroken.curve)  # the same five epochs, to the last bit (CPU)
    assert retry.value == unbroken.value and retry.metrics["epochs"] == EPOCHS
    assert list((run_dir / "checkpoints").iterdir()) == []  # finished: its checkpoints and the lost one's are gone


def test_without_a_checkpoint_the_re_run_starts_from_scratch(tmp_path, digits_splits):
    space = nas.get_space("mlp")
    dying = DiesInEpoch(space=space, dataset=digits_splits, epochs=2, threads=1)
    dying.die_at = 0  # before any checkpoint
    with pytest.raises(Killed):
        loop_in(tmp_path, dying, recover="own").run()
    (tmp_path / "checkpoints" / "trial-00000.pt").write_bytes(b"torn")  # and a torn file is no checkpoint either
    retry = loop_in(tmp_path, TrainingEstimator(space=space, dataset=digits_splits, epochs=2, threads=1), recover="own").run()[1]
    assert retry.state == "complete" and "resumed_from" not in retry.metrics and len(retry.curve) == 2


def test_checkpoints_every_n_seconds_save_at_most_that_often(tmp_path, monkeypatch):
    saver = TrialCheckpoints(tmp_path, every=30)
    assert not saver.due(0)  # the first offer starts the clock: a trial shorter than 30 s is never saved
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 31)
    assert saver.due(0) and not saver.due(1)
    saver.save(0, {"x": 1})
    assert not saver.due(0) and saver.load(0) == {"x": 1}
    saver.remove(0)
    assert saver.load(0) is None
    every_epoch = TrialCheckpoints(tmp_path / "e", every=0)
    assert every_epoch.due(0) and every_epoch.due(0)


@pytest.mark.parametrize("node, message", [
    ({"every": -1}, "`checkpoints.every` must be a number of seconds >= 0"),
    ({"every": 0, "often": 1}, "unknown key(s) often"),
])
def test_bad_checkpoint_settings_are_refused_naming_the_key(tmp_path, node, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        checkpoints_from_config(node, tmp_path)
    assert checkpoints_from_config({"every": None}, tmp_path) is None


def test_a_full_disk_costs_the_checkpoint_not_the_trial(tmp_path, digits_splits, monkeypatch):
    def full(self, number, state):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TrialCheckpoints, "save", full)
    loop = loop_in(tmp_path, TrainingEstimator(space=nas.get_space("mlp"), dataset=digits_splits, epochs=3, threads=1), recover="own")
    said = []
    loop.callbacks.callbacks.append(type("Said", (nas.Callback,), {"on_message": lambda self, text: said.append(text)})())
    record = loop.run()[0]
    assert record.state == "complete" and len(record.curve) == 3
    warnings = [line for line in said if "checkpoint not saved" in line]
    assert len(warnings) == 1 and "No space left on device" in warnings[0] and "from scratch" in warnings[0]  # said once, not per epoch


class CtrlCAt(nas.Callback):
    """Ctrl-C while the loop is outside training: as trial ``at`` starts (the store has it RUNNING, the
    estimator not yet), or as it ends (the store has it finished, the callbacks not yet all told)."""

    def __init__(self, hook: str, at: int) -> None:
        self.hook, self.at = hook, at

    def on_trial_start(self, trial):
        if self.hook == "start" and trial.number == self.at:
            raise KeyboardInterrupt

    def on_trial_end(self, record, evaluation=None):
        if self.hook == "end" and record.number == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("hook, states", [("start", ["complete", "failed", "waiting"]), ("end", ["complete", "complete"])])
def test_ctrl_c_outside_training_leaves_no_trial_running(tmp_path, digits_splits, hook, states):
    """A Ctrl-C that lands while a trial is being started (not yet training) fails it as interrupted and
    queues it, like one during training; one that lands after it is recorded leaves it as it was."""
    make = dict(space=nas.get_space("mlp"), dataset=digits_splits, epochs=1, threads=1, seed=0)
    loop = loop_in(tmp_path, TrainingEstimator(**make), recover="own")
    loop.budget = Budget(trials=3)
    loop.callbacks.callbacks.append(CtrlCAt(hook, at=1))
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    trials = sorted(loop.store.history(), key=lambda r: r.number)
    assert [r.state for r in trials] == states
    if hook == "start":
        assert "interrupted by the user" in trials[1].reason
        assert loop.store.claim_waiting("someone") is not None  # queued to run again when resumed
