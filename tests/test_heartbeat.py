"""Heartbeats: a trial whose worker stops beating is lost (failed with its curve, re-queued once),
on the journal file (a beat of our own) and on an RDB storage (Optuna's heartbeat): SQLite, and real
PostgreSQL and MySQL (MariaDB) servers (tests/postgres_server.py, tests/mysql_server.py; skipped, saying
why, where none can run), whose clock is the server's."""

from __future__ import annotations

import time

import numpy as np
import pytest

import nas
from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.records import TrialState
from nas.store import Heartbeat, Outcome, open_store
from nas.store.optuna_store import BEAT_ATTR, LOST_REASON
from nas.testing import ToySpace

SPACE = ToySpace()


def arch(seed):
    return SPACE.architecture(SPACE.sample(np.random.default_rng(seed)))


def two_workers(tmp_path, url, heartbeat):
    """Two stores on one study, as two worker processes have."""
    return [open_store(url, run_dir=tmp_path, space=SPACE, heartbeat=heartbeat)[1] for _ in range(2)]


def test_a_journal_trial_whose_worker_stops_beating_is_failed_with_its_curve_and_requeued(tmp_path, monkeypatch):
    a, b = two_workers(tmp_path, f"journal:///{tmp_path / 'study.log'}", Heartbeat(interval=1, grace=5))
    trial = a.start(arch(0), text="t", parent=None, worker="a:1")
    a.beat(trial)
    for step, value in enumerate((0.1, 0.2)):
        a.report(trial, step, value)
    b.history()
    assert b.others_running() == [0] and b.fail_silent(requeue=1) == []  # beating: alive
    a.storage.set_trial_user_attr(trial.ref, BEAT_ATTR, time.time() - 100)  # its last beat, 100 s ago by its clock
    assert b.fail_silent(requeue=1) == []  # but b just saw it change: a skewed clock is no death
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 100)  # 100 s later on b's clock, no beat since
    lost = b.fail_silent(requeue=1)
    assert [(t.number, t.retry) for t in lost] == [(0, 1)] and "stopped beating (100s without a heartbeat)" in lost[0].reason
    record = b.history()[0]
    assert record.state is TrialState.FAILED and record.curve == (0.1, 0.2)  # the curve so far is kept
    assert b.fail_silent(requeue=1) == [] and b.others_running() == []  # failed once, by one worker
    # Its worker was alive after all (a pause longer than the grace): its result is refused, not raised.
    late = a.finish(trial, Outcome(state=TrialState.COMPLETE, value=0.9, curve=[0.1, 0.2, 0.9]))
    assert late.state is TrialState.FAILED and late.value is None
    retry = a.claim_waiting("a:1")
    assert retry is not None and retry.retry_of == 0 and retry.arch.key == record.arch.key
    assert a.in_budget() == 1


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def rdb_url(request, tmp_path):
    """An empty RDB storage: an SQLite file, or a database of its own on the session's PostgreSQL or
    MySQL (MariaDB) server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue(f"{'postgres' if request.param == 'postgresql' else 'mysql'}_server").fresh_database()


def test_an_rdb_trial_whose_worker_stops_beating_is_found_by_optunas_heartbeat(tmp_path, rdb_url):
    a, b = two_workers(tmp_path, rdb_url, Heartbeat(interval=1, grace=2))
    beating = a.start(arch(0), text="t", parent=None, worker="a:1")
    silent = a.start(arch(1), text="t", parent=None, worker="a:1")
    a.report(silent, 0, 0.3)
    for trial in (beating, silent):
        a.beat(trial)
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:  # one keeps beating, the other has stopped
        a.beat(beating)
        time.sleep(0.5)
    b.history()
    lost = b.fail_silent(requeue=1)
    assert [(t.number, t.retry, t.reason) for t in lost] == [(1, 2, LOST_REASON)]
    records = b.history()
    assert [r.state for r in records] == [TrialState.RUNNING, TrialState.FAILED, TrialState.WAITING]
    assert records[1].reason == LOST_REASON and records[1].curve == (0.3,) and records[2].retry_of == 1
    assert b.fail_silent(requeue=1) == []


def test_a_store_without_a_heartbeat_never_finds_a_trial_lost(tmp_path):
    store = open_store(None, run_dir=tmp_path, space=SPACE)[1]
    trial = store.start(arch(0), text="t", parent=None, worker="a:1")
    store.beat(trial)
    assert store.heartbeat is None and store.fail_silent(requeue=1) == [] and store.others_running() == []
    assert store.storage.get_trial(trial.ref).user_attrs.get(BEAT_ATTR) is None


@pytest.mark.parametrize("settings, message", [
    ({"interval": 0}, "`heartbeat.interval` must be a whole number of seconds >= 1, but got 0"),
    ({"grace": True}, "`heartbeat.grace` must be a whole number of seconds >= 1, but got True"),
    ({"interval": 10, "grace": 10}, "`heartbeat.grace > heartbeat.interval` must hold"),
])
def test_bad_heartbeat_settings_are_refused_naming_the_key(settings, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Heartbeat(**settings)


@pytest.mark.parametrize("override, message", [
    ("heartbeat.interval=0", "`heartbeat.interval` must be a whole number"),
    ("+heartbeat.beat=3", "unknown key(s) beat"),
    ("requeue=-1", "`requeue` must be an integer >= 0"),
])
def test_bad_heartbeat_config_is_refused_before_any_trial(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        nas.search(space=ToySpace(), estimator=Quick(), trials=1, out_dir=tmp_path, progress=False, overrides=[override],
                   storage=f"sqlite:///{tmp_path / 'shared.db'}")
    assert not (tmp_path / "shared.db").exists() or not nas.load(tmp_path, space=ToySpace()).trials


class Quick(nas.Estimator):
    input_shape, num_classes = (4,), 2

    def evaluate(self, arch: Architecture, report):
        return nas.Evaluation(score=ToySpace.score(arch.sample))
