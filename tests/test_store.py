"""The trial store contract, on every store: SQLite, journal file, Optuna's in-memory storage, a real
PostgreSQL server and a real MySQL (MariaDB) server (throwaway ones, tests/postgres_server.py and
tests/mysql_server.py; skipped, saying why, where none can run) and the plain-Python MemoryStore; the
private Optuna calls of nas/store/optuna_store.py, pinned on the three RDB storages; the layout written before the lifecycle redesign still loads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import optuna
import time

import pytest

import nas
from nas.core.records import Inheritance, TrialState
from nas.store import MemoryStore, OptunaStore, Outcome, open_store, record_from_trial
from nas.store import optuna_store
from nas.store.optuna_store import RESULT_ATTR, TRIAL_ATTR, discard_last_trial, distribution
from nas.testing import ToySpace

ROOT = Path(__file__).resolve().parents[1]
SPACE = ToySpace()
SERVERS = {"postgresql": "postgres_server", "mysql": "mysql_server"}  # kinds on a real server: the session fixture of each
KINDS = ["sqlite", "journal", "memory", "python", *SERVERS]
RDB_KINDS = ["sqlite", *SERVERS]  # Optuna's RDBStorage: the private reads and writes pinned below
SHARED_KINDS = ["sqlite", "journal", *SERVERS]  # storages several stores open at once
_server: dict = {}  # the server kind of the running test: the session's server, a database per folder, the stores


@pytest.fixture(autouse=True)
def _server_kind(request):
    """A test of a server kind gets the session's server of that kind (or is skipped with the
    reason); :func:`make_store` gives it a fresh database per folder, and its stores are closed after."""
    callspec = getattr(request.node, "callspec", None)
    kind = callspec.params.get("kind") if callspec is not None else None
    if kind in SERVERS:
        _server.update(kind=kind, server=request.getfixturevalue(SERVERS[kind]), databases={}, stores=[])
    yield
    for store in _server.get("stores", ()):
        store.close()
    _server.clear()


def make_store(kind: str, tmp_path: Path, **kw):
    if kind == "python":
        return MemoryStore()
    if kind in SERVERS:
        databases = _server["databases"]
        if tmp_path not in databases:
            databases[tmp_path] = _server["server"].fresh_database()
        store = open_store(databases[tmp_path], run_dir=tmp_path, space=SPACE, **kw)[1]
        assert store.storage.engine.dialect.name == kind
        _server["stores"].append(store)
        return store
    url = {"sqlite": f"sqlite:///{tmp_path}/s.db", "journal": f"journal:///{tmp_path}/s.log", "memory": "memory"}[kind]
    return open_store(url, run_dir=tmp_path, space=SPACE, **kw)[1]


def arch(seed: int):
    return SPACE.architecture(SPACE.sample(np.random.default_rng(seed)))


@pytest.mark.parametrize("kind", KINDS)
def test_start_finish_and_read_back_typed_records(tmp_path, kind):
    store = make_store(kind, tmp_path)
    a, b, c = (store.start(arch(s), text=SPACE.format(arch(s).sample), parent=None if s == 0 else 0, worker="h:1") for s in range(3))
    assert [t.number for t in (a, b, c)] == [0, 1, 2]
    assert [r.state for r in store.history()] == [TrialState.RUNNING] * 3
    inh = Inheritance(parent=0, morphism="widen l1", fraction=0.5, preservation_error=1e-7)
    ra = store.finish(a, Outcome(state=TrialState.COMPLETE, value=0.7, curve=[0.1, 0.7], cost=2.5, fidelity={"epochs": 2},
                                 metrics={"test_accuracy": 0.6}))
    store.finish(b, Outcome(state=TrialState.PRUNED, curve=[0.2], cost=1.0, inheritance=inh, reason="pruned after 1"))
    store.finish(c, Outcome(state=TrialState.FAILED, reason="ValueError: boom"))
    history = store.history()
    assert history[0] == ra
    first, second, third = history
    assert (first.value, first.curve, first.cost, dict(first.fidelity), dict(first.metrics)) == (
        0.7, (0.1, 0.7), 2.5, {"epochs": 2}, {"test_accuracy": 0.6})
    assert first.arch == a.arch and first.worker == "h:1" and first.parent is None and first.completed
    assert second.state == "pruned" and second.value is None and second.inheritance == inh and second.parent == 0
    assert third.state is TrialState.FAILED and third.reason == "ValueError: boom" and not third.completed
    assert store.best() == first and store.count(TrialState.COMPLETE, TrialState.FAILED) == 2


@pytest.mark.parametrize("kind", SHARED_KINDS)
def test_a_second_store_on_the_same_storage_sees_the_first_ones_trials(tmp_path, kind):
    """Two workers: each reads only what changed, and sees the other's trials, running and finished."""
    one, two = make_store(kind, tmp_path), make_store(kind, tmp_path)
    t0 = one.start(arch(0), text="a", parent=None, worker="one:1")
    t1 = two.start(arch(1), text="b", parent=None, worker="two:2")
    assert [r.worker for r in one.history()] == ["one:1", "two:2"] and [r.number for r in two.history()] == [0, 1]
    two.finish(t1, Outcome(state=TrialState.COMPLETE, value=0.9))
    one.finish(t0, Outcome(state=TrialState.COMPLETE, value=0.4))
    assert [(r.state, r.value) for r in one.history()] == [("complete", 0.4), ("complete", 0.9)]
    assert one.best().number == 1 and two.best() is not None and two.history()[0].value == 0.4 and two.best().number == 1


@pytest.mark.parametrize("kind", RDB_KINDS)
def test_a_trial_another_worker_created_before_ours_is_never_skipped(tmp_path, kind):
    """Our own finished trials are not read back; a trial of another worker created between our
    last read and our own trial is still read, running and then finished."""
    one, two = make_store(kind, tmp_path), make_store(kind, tmp_path)
    one.history()
    theirs = two.start(arch(1), text="", parent=None, worker="two:2")
    ours = one.start(arch(0), text="", parent=None, worker="one:1")
    one.finish(ours, Outcome(state=TrialState.COMPLETE, value=0.1))
    assert [(r.number, r.state) for r in one.history()] == [(0, "running"), (1, "complete")]
    two.finish(theirs, Outcome(state=TrialState.COMPLETE, value=0.9))
    assert [(r.number, r.state, r.value) for r in one.history()] == [(0, "complete", 0.9), (1, "complete", 0.1)]
    assert one._changed_trials() == []  # and then nothing is read again


@pytest.mark.parametrize("kind", RDB_KINDS)
def test_the_incremental_read_queries_only_what_changed(tmp_path, kind):
    """Pins the private RDBStorage._get_trials the store reads with (4.1+: trials above the last
    finished id plus the unfinished ones named; 4.0: all but the finished ids given), and nothing else."""
    store = make_store(kind, tmp_path)
    done = [store.start(arch(s), text="", parent=None, worker=None) for s in range(3)]
    for t in done[:2]:
        store.finish(t, Outcome(state=TrialState.COMPLETE, value=0.5))
    store.history()
    ids = store._ids
    if optuna_store._RDB_READ == "since":
        changed = store.storage._get_trials(store.study_id, states=None, included_trial_ids={ids[2]}, trial_id_greater_than=ids[1])
    else:
        changed = store.storage._get_trials(store.study_id, states=None, excluded_trial_ids={ids[0], ids[1]})
    assert [t.number for t in changed] == [2]
    assert [t.number for t in store._changed_trials()] == [2]  # the running one only
    store.finish(done[2], Outcome(state=TrialState.COMPLETE, value=0.6))
    store.history()
    assert store._changed_trials() == []  # everything finished and read: the query returns nothing


@pytest.mark.parametrize("kind", RDB_KINDS)
def test_creating_a_trial_returns_it_with_its_number(tmp_path, kind):
    """Pins the private RDBStorage._create_new_trial the store creates trials with."""
    store = make_store(kind, tmp_path)
    template = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, params={}, distributions={}, user_attrs={"k": 1})
    created = [store.storage._create_new_trial(store.study_id, template_trial=template) for _ in range(2)]
    assert [t.number for t in created] == [0, 1] and created[1].user_attrs == {"k": 1}
    assert store.storage.get_trial_number_from_id(created[1]._trial_id) == 1


@pytest.mark.parametrize("kind", RDB_KINDS)
def test_running_trials_of_a_dead_worker_are_failed_with_the_reason_and_requeued_once(tmp_path, kind):
    store = make_store(kind, tmp_path)
    store.start(arch(0), text="x0", parent=None, worker="gone:1")
    store.start(arch(1), text="x1", parent=None, worker="alive:2")
    other = make_store(kind, tmp_path)  # another process on the same study
    lost = other.fail_running(lambda record: record.worker == "gone:1", "its worker died", requeue=1)
    assert [(t.number, t.retry) for t in lost] == [(0, 2)]
    again = make_store(kind, tmp_path).history()
    assert [(r.state, r.reason, r.retry_of) for r in again] == [("failed", "its worker died", None), ("running", None, None),
                                                                ("waiting", None, 0)]
    assert again[2].arch.key == again[0].arch.key and other.in_budget() == 2  # the retry takes the lost one's place
    retry = other.claim_waiting("new:3")
    assert retry is not None and (retry.number, retry.retry_of, retry.worker) == (2, 0, "new:3")
    assert store.claim_waiting("late:4") is None  # taken already: one worker runs a retry
    # lost again: its one retry is spent, so it is failed and not queued a third time
    lost = store.fail_running(lambda record: record.worker == "new:3", "died again", requeue=1)
    assert [(t.number, t.retry) for t in lost] == [(2, None)]
    assert store.in_budget() == 2 and store.finished_count() == 1


@pytest.mark.parametrize("kind", RDB_KINDS)
def test_a_pruner_sees_the_stored_trial_and_stops_it(tmp_path, kind):
    store = make_store(kind, tmp_path, pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    trial = store.start(arch(0), text="", parent=None, worker=None)
    assert store.report(trial, 0, 0.7) is False and store.report(trial, 1, 0.3) is True
    stored = store.storage.get_trial(trial.ref)
    assert stored.intermediate_values == {0: 0.7, 1: 0.3}
    # without a pruner nothing is written per report: the curve is stored once, at finish
    (tmp_path / "plain").mkdir()
    plain = make_store(kind, tmp_path / "plain")
    t = plain.start(arch(0), text="", parent=None, worker=None)
    assert plain.report(t, 0, 0.1) is False and plain.storage.get_trial(t.ref).intermediate_values == {}


def test_discard_last_trial_leaves_the_in_memory_study_as_a_replay_would():
    """Pins the InMemoryStorage layout SamplerStrategy relies on."""
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(params={"x": 1.0}, distributions={"x": optuna.distributions.FloatDistribution(0, 2)},
                                              value=1.0))
    study.ask()
    assert discard_last_trial(study) is True
    assert len(study.trials) == 1 and study.ask().number == 1


def test_open_store_refuses_malformed_urls_with_the_key_named(tmp_path):
    for url, match in (("nowhere", "`storage` must be an Optuna storage URL"), ("journal://", "must name a file"),
                       ("postgresql://nobody@127.0.0.1:1/none", "`storage` must be a reachable Optuna storage URL")):
        with pytest.raises(nas.ConfigError, match=re.escape(match)):
            open_store(url, run_dir=tmp_path, space=SPACE)
    with pytest.raises(nas.ConfigError, match="`study_name` must name a study .* 'other' is not there"):
        open_store(f"sqlite:///{tmp_path}/x.db", run_dir=tmp_path, space=SPACE, study_name="other", create=False)


def test_a_study_written_in_the_layout_before_the_redesign_reads_the_same(tmp_path):
    """Run directories of the previous release kept flat nas:metrics with magic keys; they load."""
    storage = f"sqlite:///{tmp_path}/old.db"
    study = optuna.create_study(storage=storage, study_name="nas", direction="maximize")
    a = arch(0)
    dists = {n: distribution(SPACE.dimensions()[n]) for n in a.sample}
    study.add_trial(optuna.trial.create_trial(
        params=dict(a.sample), distributions=dists, value=0.8,
        user_attrs={"nas:key": a.key, "nas:worker": "h:1", "nas:parent": 3, "nas:weights": "w1",
                    "nas:metrics": {"curve": [0.5, 0.8], "seconds": 4.0, "test_accuracy": 0.7, "fidelity": {"epochs": 2},
                                    "parent": 3, "morphism": "widen l1", "function_preserving": True, "inherited_fraction": 0.9,
                                    "preservation_error": 1e-8}}))
    (record,) = OptunaStore(optuna.storages.RDBStorage(storage), space=SPACE).history()
    assert (record.value, record.curve, record.cost, record.worker, record.parent, record.weights) == (0.8, (0.5, 0.8), 4.0, "h:1", 3, "w1")
    assert dict(record.metrics) == {"test_accuracy": 0.7} and dict(record.fidelity) == {"epochs": 2}
    assert record.inheritance == Inheritance(parent=3, morphism="widen l1", fraction=0.9, preservation_error=1e-8)
    assert record.arch.key == a.key


def test_two_attributes_per_trial_and_nothing_of_ours_else(tmp_path):
    result = nas.search(space=SPACE, estimator=nas.TableEstimator(lambda arch: 0.5), trials=2, out_dir=tmp_path, progress=False,
                        tensorboard=False)
    study = optuna.load_study(study_name="nas", storage=f"sqlite:///{tmp_path}/study.db")
    assert all(set(t.user_attrs) == {TRIAL_ATTR, RESULT_ATTR} for t in study.trials)
    assert [record_from_trial(t, SPACE) for t in study.trials] == result.trials
    assert json.loads(json.dumps(study.trials[0].user_attrs[TRIAL_ATTR]))["key"] == result.trials[0].arch.key


def test_only_the_store_module_names_optuna_internals():
    """Optuna's private attributes appear in nas/store/optuna_store.py and nowhere else of ours."""
    private = re.compile(r"\._storage\b|\._study_id\b|\._trial_id\b|_thread_local|storage\._studies|_trial_id_to_study_id|\._get_trials\b|\._create_new_trial\b")
    offenders = sorted(str(p.relative_to(ROOT)) for folder in ("nas", "search_spaces", "strategies", "experiments")
                       for p in (ROOT / folder).rglob("*.py") if private.search(p.read_text()))
    assert offenders == ["nas/store/optuna_store.py"]


@pytest.mark.parametrize("kind", SHARED_KINDS)
def test_the_budget_lock_is_held_by_one_store_of_the_study_at_a_time(tmp_path, kind):
    """Two stores on one study (two workers, on one host or two): the second waits for the first's
    budget lock (a PostgreSQL advisory lock, a MySQL named lock; a file lock next to a journal or
    SQLite file). On MariaDB a GET_LOCK with a negative timeout is refused, not taken: this failed."""
    import threading

    first, second = make_store(kind, tmp_path), make_store(kind, tmp_path)
    events: list[str] = []
    held = threading.Event()

    def other() -> None:
        held.wait(10)
        with second.budget_lock():
            events.append("second in")

    thread = threading.Thread(target=other)
    thread.start()
    with first.budget_lock():
        held.set()
        time.sleep(0.5)  # the other one is waiting all this time
        events.append("first out")
    thread.join(10)
    assert events == ["first out", "second in"]
    with first.budget_lock():  # released: taken again at once
        pass


def test_only_an_unreachable_database_is_retried(tmp_path, monkeypatch):
    from sqlalchemy.exc import IntegrityError, OperationalError

    from nas.store.optuna_store import transient

    refused = OperationalError("SELECT 1", {}, Exception("connection refused"))
    wrapped = optuna.exceptions.StorageInternalError("commit failed")
    wrapped.__cause__ = refused
    assert transient(refused) and transient(wrapped)
    assert not transient(IntegrityError("INSERT", {}, Exception("duplicate key"))) and not transient(ValueError("bad value"))

    store = make_store("sqlite", tmp_path)
    said, calls = [], []
    store.notify = said.append
    real = store.storage._create_new_trial

    def flaky(*args, **kwargs):  # the database is away for two attempts, then back
        calls.append(1)
        if len(calls) <= 2:
            raise refused
        return real(*args, **kwargs)

    monkeypatch.setattr(store.storage, "_create_new_trial", flaky)
    trial = store.start(arch(0), text="", parent=None, worker=None)
    assert trial.number == 0 and len(calls) == 3
    assert len(said) == 3 and "unreachable" in said[0] and "retrying in 0.5 s" in said[0] and "retrying in 1 s" in said[1]
    assert "reachable again" in said[2]
    store.patience = 0  # no patience: the error is raised at once
    calls.clear()
    with pytest.raises(OperationalError):
        store.start(arch(1), text="", parent=None, worker=None)


@pytest.mark.parametrize("kind", RDB_KINDS)
def test_a_start_whose_commit_landed_before_the_connection_dropped_is_not_created_twice(tmp_path, monkeypatch, kind):
    """The database took the new trial, then the connection dropped before its answer: the retried start
    finds that trial (by the token its start carries) instead of creating a second and leaving the first
    RUNNING for ever, with no worker to finish it."""
    from sqlalchemy.exc import OperationalError

    store = make_store(kind, tmp_path)
    store.notify = lambda text: None
    real, calls = store.storage._create_new_trial, []

    def lands_then_drops(*args, **kwargs):
        calls.append(1)
        created = real(*args, **kwargs)
        if len(calls) == 1:
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
        return created

    monkeypatch.setattr(store.storage, "_create_new_trial", lands_then_drops)
    trial = store.start(arch(0), text="t", parent=None, worker="h:1")
    assert len(calls) == 1  # found, not created again
    store.finish(trial, Outcome(state=TrialState.COMPLETE, value=0.5))
    second = store.start(arch(1), text="t", parent=None, worker="h:1")  # the next start: a trial of its own
    assert (trial.number, second.number) == (0, 1) and len(calls) == 2
    states = [t.state for t in optuna.load_study(study_name="nas", storage=store.storage).trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING]


@pytest.mark.parametrize("sampler", ["NSGAIISampler", "NSGAIIISampler"])
def test_genetic_generation_names_the_attribute_optunas_genetic_samplers_write(sampler):
    """Pins the private convention nas.SamplerStrategy replays: each trial's generation, in its system attributes."""
    from nas.store.optuna_store import genetic_generation

    made = getattr(optuna.samplers, sampler)(population_size=3, seed=0)
    key, population = genetic_generation(made)
    assert population == 3 and genetic_generation(optuna.samplers.TPESampler(seed=0)) is None
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=made)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=7)
    assert [t.system_attrs[key] for t in study.trials] == [0, 0, 0, 1, 1, 1, 2]


class _DeadConnection:
    """A lock's connection to a server that went away: every call fails as psycopg2 fails through SQLAlchemy."""

    def __init__(self, close_error=None):
        from sqlalchemy import exc

        self.dead = exc.OperationalError("SELECT pg_advisory_unlock(:key)", {}, Exception("server closed the connection unexpectedly"))
        self.close_error, self.invalidated = close_error or self.dead, False

    def execute(self, statement, params):
        raise self.dead

    def close(self):
        raise self.close_error

    def invalidate(self):
        self.invalidated = True


def test_giving_a_lock_back_to_a_server_that_went_away_is_no_failure():
    """CI once failed test_a_database_that_goes_away_mid_search_is_retried_and_no_result_is_wrong here: the server
    stopped while a worker held the budget lock, the release was forgiven, but closing the connection (a rollback)
    raised and ended the search. The server dropped the lock with the connection: both are forgiven now."""
    from nas.store.optuna_store import release_lock

    dead = _DeadConnection()
    release_lock(dead, "SELECT pg_advisory_unlock(:key)", {"key": 1})
    assert dead.invalidated
    with pytest.raises(ValueError, match="not a connection error"):
        release_lock(_DeadConnection(close_error=ValueError("not a connection error")), "SELECT 1", {})
