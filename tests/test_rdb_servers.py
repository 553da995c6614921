"""nas on real database servers: PostgreSQL and MySQL (MariaDB), a throwaway one of each per test
session (tests/postgres_server.py, tests/mysql_server.py), 127.0.0.1 and a unix socket only; every test
here is skipped, saying why, where its server cannot run.

The store contract on them is tests/test_store.py's (its "postgresql" and "mysql" kinds) and the RDB
heartbeat tests/test_heartbeat.py's (its ``rdb_url``); here: the test servers themselves, searches of
separate processes on one study, ``nas-search workers=2 storage=<URL>``, and a server going away."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import types
from pathlib import Path

import optuna
import pytest

import nas
from nas.core.records import TrialState
from nas.store import Outcome, open_store
from nas.store.optuna_store import TRIAL_ATTR
from nas.testing import ToySpace
from tests import mysql_server, postgres_server
from tests.mysql_server import MySQLServer
from tests.postgres_server import PostgresServer, fresh_database

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}

# One search process of several on one study: waits for the others (a file each in argv[3]) so that
# they really run side by side, then searches with trials that take a moment.
SEARCHER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import nas
    from nas.testing import ToySpace

    class Quick(nas.Estimator):
        input_shape, num_classes = (4,), 2
        def evaluate(self, arch, report):
            time.sleep(0.2)
            return nas.Evaluation(score=ToySpace.score(arch.sample))

    out_dir, storage, barrier, count, trials = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    (barrier / out_dir.replace("/", "_")).touch()
    deadline = time.monotonic() + 120
    while len(list(barrier.iterdir())) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    nas.search(space=ToySpace(), estimator=Quick(), trials=trials, out_dir=out_dir, progress=True, tensorboard=False, storage=storage)
""")


def test_the_server_listens_on_loopback_only_and_comes_back_with_its_data_after_a_stop(postgres_server, tmp_path):
    """The helper the outage tests build on: stop, start again on the same data and the same port."""
    url = fresh_database(postgres_server)
    assert url.startswith(f"postgresql+psycopg2://nas@127.0.0.1:{postgres_server.port}/nas_")
    connection = postgres_server.connect()
    with connection.cursor() as cursor:
        cursor.execute("SHOW listen_addresses")
        assert cursor.fetchone() == ("127.0.0.1",)
        cursor.execute("SHOW unix_socket_directories")
        assert cursor.fetchone() == (str(postgres_server.socket_dir),)
    connection.close()
    store = open_store(url, run_dir=tmp_path, space=ToySpace())[1]
    space = ToySpace()
    trial = store.start(space.architecture({"depth": 1, "l1.op": "c", "lr": 0.1}), text="t", parent=None, worker="w:1")
    store.finish(trial, Outcome(state=TrialState.COMPLETE, value=0.5))
    store.close()
    import psycopg2

    port = postgres_server.port
    postgres_server.stop()
    try:
        with pytest.raises(psycopg2.OperationalError, match="Connection refused"):
            postgres_server.connect()
    finally:
        postgres_server.start()
    assert postgres_server.port == port
    again = open_store(url, run_dir=tmp_path, space=ToySpace())[1]
    assert [(r.number, r.state, r.value, r.worker) for r in again.history()] == [(0, "complete", 0.5, "w:1")]
    again.close()


@pytest.fixture
def fake_initdb(monkeypatch):
    """An initdb (and pg_ctl) that fails as a full disk would, where the postgres user may run it (as root)."""
    folder = Path(tempfile.mkdtemp(prefix="nas-fake-initdb-"))
    folder.chmod(0o755)
    fake = folder / "initdb"
    fake.write_text("#!/bin/sh\necho 'some progress' >&2\necho 'initdb: error: no room on the device' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(postgres_server, "find_binaries", lambda: (str(fake), str(fake)))
    yield
    shutil.rmtree(folder)


def _can_run_as_the_server_user() -> bool:
    """Whether initdb is reached at all: not root, or root with a postgres user and runuser."""
    if os.geteuid() != 0:
        return True
    try:
        pwd.getpwnam(postgres_server.SYSTEM_USER)
    except KeyError:
        return False
    return shutil.which("runuser") is not None


@pytest.mark.parametrize("broken, reason", [
    ("no_psycopg2", "psycopg2 is not installed"),
    ("no_binaries", "initdb and pg_ctl were found neither on PATH nor in /usr/lib/postgresql/*/bin"),
    ("initdb_fails", "initdb failed (exit 3): initdb: error: no room on the device"),
])
def test_a_server_that_cannot_run_says_why_and_leaves_nothing_behind(request, monkeypatch, broken, reason):
    """What the session fixture skips with; every check but the one broken passes."""
    monkeypatch.setitem(sys.modules, "psycopg2", None if broken == "no_psycopg2" else types.ModuleType("psycopg2"))  # None: its import fails
    if broken == "no_binaries":
        monkeypatch.setattr(postgres_server, "find_binaries", lambda: None)
    if broken == "initdb_fails":
        if not _can_run_as_the_server_user():
            pytest.skip("running as root without a postgres user or runuser: initdb is never reached")
        request.getfixturevalue("fake_initdb")
    server = PostgresServer().setup()
    assert server.reason is not None and reason in server.reason, server.reason
    assert server.root is None and not server.running


@pytest.fixture(params=["postgresql", "mysql"])
def server(request):
    """The session's PostgreSQL server, or its MySQL (MariaDB) one."""
    return request.getfixturevalue(f"{'postgres' if request.param == 'postgresql' else 'mysql'}_server")


@pytest.mark.parametrize("broken, reason", [
    ("no_pymysql", "PyMySQL is not installed"),
    ("no_binaries", "mariadb-install-db and mariadbd (or mysql_install_db and mysqld) were not found"),
])
def test_a_mysql_server_that_cannot_run_says_why_and_leaves_nothing_behind(monkeypatch, broken, reason):
    monkeypatch.setitem(sys.modules, "pymysql", None if broken == "no_pymysql" else types.ModuleType("pymysql"))
    monkeypatch.setattr(mysql_server, "find_binaries", lambda: None)
    server = MySQLServer().setup()
    assert server.reason is not None and reason in server.reason, server.reason
    assert server.root is None and not server.running


def test_the_mysql_server_listens_on_loopback_only_and_keeps_its_data_over_a_stop(mysql_server, tmp_path):
    connection = mysql_server.connect()
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@bind_address, @@skip_networking, @@version")
        bind, no_network, version = cursor.fetchone()
    connection.close()
    assert (bind, no_network) == ("127.0.0.1", 0) and "MariaDB" in version
    url = mysql_server.fresh_database()
    store = open_store(url, run_dir=tmp_path, space=ToySpace())[1]
    trial = store.start(ToySpace().architecture({"depth": 1, "l1.op": "c", "lr": 0.1}), text="t", parent=None, worker="w:1")
    store.finish(trial, Outcome(state=TrialState.COMPLETE, value=0.5))
    store.close()
    mysql_server.stop()
    mysql_server.start()
    assert [t.value for t in optuna.load_study(study_name="nas", storage=url).trials] == [0.5]


def test_two_search_processes_share_one_study(server, tmp_path):
    """Two OS processes, each `nas.search(..., storage=<url>)` with its own run directory, started
    together on a new database (both create its tables, the loser of that race retries)."""
    url = server.fresh_database()
    script, barrier = tmp_path / "searcher.py", tmp_path / "barrier"
    script.write_text(SEARCHER)
    barrier.mkdir()
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / f"w{i}"), url, str(barrier), "2", "12"], cwd=tmp_path, env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(err for _, err in outputs)
    trials = optuna.load_study(study_name="nas", storage=url).trials
    # Separate run directories, one study: the budget is checked under the server's advisory (named) lock, exact.
    assert len(trials) == 12, len(trials)
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # no number twice, none skipped
    assert all(t.state is optuna.trial.TrialState.COMPLETE for t in trials), [t.state for t in trials]
    workers = {t.user_attrs[TRIAL_ATTR]["worker"] for t in trials}
    assert {w.rpartition(":")[2] for w in workers} == {str(p.pid) for p in procs}  # both processes ran trials
    result = nas.load(tmp_path / "w0", space=ToySpace())  # read back through nas, from the server
    assert [(r.number, r.state, r.worker) for r in result.trials] == [
        (t.number, "complete", t.user_attrs[TRIAL_ATTR]["worker"]) for t in sorted(trials, key=lambda t: t.number)]


def test_nas_search_workers_on_a_mysql_storage(mysql_server, tmp_path):
    """`nas-search workers=2 storage=mysql+pymysql://...`: the budget exact (the server's named lock).
    On PostgreSQL, tests/test_dashboard.py runs the same command (and watches it)."""
    url = mysql_server.fresh_database()
    run_dir = tmp_path / "run"
    done = subprocess.run([str(BIN / "nas-search"), "workers=2", f"storage={url}", "study_name=s1", "budget.trials=6",
                           "estimator.epochs=1", "tensorboard=false", f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    trials = optuna.load_study(study_name="s1", storage=url).trials
    assert len(trials) == 6 and all(t.state is optuna.trial.TrialState.COMPLETE for t in trials), [t.state for t in trials]
    assert f", 2 workers, storage {url}" in done.stdout and "[w0] trial" in done.stdout
    # worker 1 (its own process, a few seconds of imports later) ran trials or found them all done: in this study
    assert "[w1] trial" in done.stdout or "[w1] Resuming study 's1'" in done.stdout, done.stdout
    assert json.loads((run_dir / "run.json").read_text())["storage"] == url
    result = nas.load(run_dir)
    assert len(result.trials) == 6 and result.best is not None
    assert "6 trials: 6 complete." in (run_dir / "leaderboard.md").read_text()


def test_a_database_that_goes_away_mid_search_is_retried_and_no_result_is_wrong(postgres_server, tmp_path):
    """The server stops (every connection dropped) and comes back 2 s later, or once the worker has met the
    outage (once, in CI, it stalled 3 s at the stop without meeting an error, and never said so): the worker retries with
    backoff, says so, and ends with the whole budget (24: the 21 trials left after the third take 4 s
    or more, longer than the server takes to stop), every value the one its architecture scores.
    On MySQL, the store's own retry is tested below (its driver's errors are others)."""
    server = postgres_server
    url = server.fresh_database()
    script, barrier = tmp_path / "searcher.py", tmp_path / "barrier"
    script.write_text(SEARCHER)
    barrier.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "run"), url, str(barrier), "1", "24"], cwd=tmp_path, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if sum(t.state.is_finished() for t in optuna.load_study(study_name="nas", storage=url).trials) >= 3:
                    break
            except Exception:
                pass
            time.sleep(0.2)
        server.stop()
        # down for 2 s at least, and until the worker has met the outage (a search that blocked silently
        # instead would hang here until the deadline, and fail below)
        down, deadline = time.monotonic(), time.monotonic() + 60
        while time.monotonic() < deadline and (time.monotonic() - down < 2 or not any("unreachable" in line for line in lines)):
            time.sleep(0.1)
    finally:
        if not server.running:
            server.start()
    proc.wait(timeout=300)
    reader.join(timeout=30)
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert "unreachable" in out and "retrying in" in out and "reachable again after" in out, out
    trials = optuna.load_study(study_name="nas", storage=url).trials
    assert len(trials) == 24 and all(t.state is optuna.trial.TrialState.COMPLETE for t in trials), [t.state for t in trials]
    assert all(t.value == ToySpace.score(t.params) for t in trials)  # no wrong result: each value its architecture's


def test_a_mysql_server_that_goes_away_is_retried_and_the_result_written_once(mysql_server, tmp_path):
    """The store on MariaDB: the server stops with a trial running and comes back 1.5 s later; the
    finish is retried (PyMySQL's "Lost connection" and "Can't connect" are transient), said, and
    written once, with its value."""
    import threading

    url = mysql_server.fresh_database()
    store = open_store(url, run_dir=tmp_path, space=ToySpace())[1]
    said: list[str] = []
    store.notify = said.append
    trial = store.start(ToySpace().architecture({"depth": 1, "l1.op": "c", "lr": 0.1}), text="t", parent=None, worker="w:1")
    mysql_server.stop()
    back = threading.Timer(1.5, mysql_server.start)
    back.start()
    try:
        store.finish(trial, Outcome(state=TrialState.COMPLETE, value=0.5))
    finally:
        back.join()
    assert any("unreachable ((pymysql.err.OperationalError)" in line and "retrying in 0.5 s" in line for line in said), said
    assert any("reachable again after" in line for line in said), said
    trials = optuna.load_study(study_name="nas", storage=url).trials
    assert [(t.state, t.value) for t in trials] == [(optuna.trial.TrialState.COMPLETE, 0.5)]
    store.close()
