"""optuna-dashboard (the `dashboard` extra) on a study while `nas-search workers=2` writes to it: the
dashboard's own WSGI app, called in-process, on the storage nas opens (``open_storage``: a journal file
read and written under nas's kernel lock, or a PostgreSQL server). Every response is well-formed, the
dashboard follows the search as it runs, the search finishes unharmed, and the dashboard's final view
is the one nas loads.

Routes (optuna_dashboard/_app.py): ``GET /api/studies`` lists the studies (``study_summaries``);
``GET /api/studies/<study_id>`` is a study's detail, its ``trials`` among it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest

import nas
from nas.store import open_storage
from tests.postgres_server import fresh_database

optuna_dashboard = pytest.importorskip("optuna_dashboard", reason="optuna-dashboard comes with the `dashboard` and `test` extras")

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
TRIALS = 8
EPOCHS = 8  # trials long enough (about 0.5 s each here) that polls every 0.2 s see them running
JOURNAL = "journal://{run_dir}/study.log"  # what `workers=2` uses when no storage is given


class Dashboard:
    """optuna-dashboard's WSGI app on nas's own storage for ``url`` (a journal is opened with nas's lock).

    The app keeps a study's trials for 2 s (its in-memory cache): what one open dashboard shows.
    ``fresh=True`` asks a new app on the same storage instead, which reads the storage on every call."""

    def __init__(self, url: str, run_dir: Path) -> None:
        self.storage = open_storage(url, run_dir)[1]
        self.app = optuna_dashboard.wsgi(self.storage)

    def get(self, path: str, fresh: bool = False) -> tuple[int, object]:
        """``GET path``: (the status code, the parsed JSON body); a body that is not JSON fails the test."""
        environ: dict = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": ""}
        setup_testing_defaults(environ)
        seen: dict = {}

        def start_response(status, headers, exc_info=None):
            seen["status"], seen["headers"] = status, dict(headers)

        chunks = (optuna_dashboard.wsgi(self.storage) if fresh else self.app)(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        code = int(seen["status"].split()[0])
        assert seen["headers"].get("Content-Type", "").startswith("application/json"), (path, seen["status"], seen["headers"], body[:300])
        try:
            return code, json.loads(body)
        except ValueError:
            pytest.fail(f"GET {path} ({seen['status']}) is not JSON: {body[:300]!r}")

    def study_id(self, name: str = "nas") -> int | None:
        code, listing = self.get("/api/studies")
        assert code == 200, listing
        ids = [s["study_id"] for s in listing["study_summaries"] if s["study_name"] == name]
        assert len(ids) <= 1, listing
        return ids[0] if ids else None

    def trials(self, study_id: int, fresh: bool = False) -> list[dict]:
        code, detail = self.get(f"/api/studies/{study_id}", fresh=fresh)
        assert code == 200, detail
        assert detail["name"] == "nas" and detail["directions"] == ["maximize"], detail
        trials = detail["trials"]
        numbers = sorted(t["number"] for t in trials)
        assert numbers == list(range(len(trials))), numbers  # no trial twice, none missing
        return trials

    def close(self) -> None:
        engine = getattr(self.storage, "engine", None)
        if engine is not None:
            engine.dispose()


@pytest.fixture(params=["journal", "postgresql"])
def storage(request):
    """The storage URL of the search: nas's default journal file for workers, or a fresh PostgreSQL database."""
    if request.param == "journal":
        return JOURNAL
    return fresh_database(request.getfixturevalue("postgres_server"))


@pytest.mark.slow
def test_the_dashboard_follows_a_running_search_without_harming_it(storage, tmp_path):
    run_dir = tmp_path / "run"
    args = [str(BIN / "nas-search"), "workers=2", f"budget.trials={TRIALS}", "space=mlp", f"estimator.epochs={EPOCHS}", "tensorboard=false",
            f"hydra.run.dir={run_dir}"] + ([] if storage == JOURNAL else [f"storage='{storage}'"])
    out_file, err_file = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out_file.open("w") as out, err_file.open("w") as err:
        search = subprocess.Popen(args, cwd=tmp_path, env=ENV, stdout=out, stderr=err, text=True)
    dashboard = None
    counts: dict[str, list[int]] = {"open": [], "fresh": []}  # trials seen by the open dashboard, and read anew, per poll
    running_polls = 0  # polls that saw trials running (in the open dashboard or read anew)
    try:
        deadline = time.monotonic() + 240
        while search.poll() is None:
            assert time.monotonic() < deadline, "nas-search did not finish in 240 s"
            # run.json is written once the study exists in the storage: open the dashboard on it then.
            if dashboard is None and (run_dir / "run.json").exists():
                dashboard = Dashboard(storage, run_dir)
            if dashboard is not None:
                study_id = dashboard.study_id()
                assert study_id is not None, "the study nas created is not listed"
                running = False
                for view in ("open", "fresh"):
                    trials = dashboard.trials(study_id, fresh=view == "fresh")
                    assert not counts[view] or len(trials) >= counts[view][-1], (view, counts[view], len(trials))  # none disappear
                    assert all(t["state"] in ("Running", "Complete") for t in trials), [t["state"] for t in trials]
                    counts[view].append(len(trials))
                    running = running or any(t["state"] == "Running" for t in trials)
                running_polls += running
            time.sleep(0.2)
    finally:
        if search.poll() is None:
            search.kill()
            search.wait()
        if dashboard is not None:
            dashboard.close()
    stdout, stderr = out_file.read_text(), err_file.read_text()
    assert search.returncode == 0, stderr
    # No stall on a lock (Optuna's "taking longer than ... to acquire the lock file", SQL "is locked"), no retried database.
    for trouble in ("unreachable", "retrying", "to acquire the lock", "Forcibly releasing", "is locked", "Traceback"):
        assert trouble not in stdout + stderr, stdout + stderr
    # The dashboard really watched the search: it saw trials running, and their number grow while it ran.
    assert len(counts["fresh"]) >= 10 and running_polls >= 3, (running_polls, counts)
    for view in ("open", "fresh"):
        assert min(counts[view]) < TRIALS and len(set(counts[view])) >= 2 and max(counts[view]) <= TRIALS, counts

    result = nas.load(run_dir)
    assert len(result.trials) == TRIALS and all(r.state == "complete" for r in result.trials), [r.state for r in result.trials]
    final = Dashboard(storage, run_dir)  # a fresh app: the one above caches a study's trials for 2 s
    try:
        study_id = final.study_id()
        assert study_id is not None
        seen = sorted(final.trials(study_id), key=lambda t: t["number"])
    finally:
        final.close()
    assert [(t["number"], t["state"].lower(), t["values"]) for t in seen] == [
        (r.number, r.state, [r.value]) for r in sorted(result.trials, key=lambda r: r.number)]
    assert [{p["name"] for p in t["params"]} for t in seen] == [set(r.arch.sample) for r in sorted(result.trials, key=lambda r: r.number)]


def test_a_dashboard_write_takes_the_workers_journal_lock_at_once_and_leaves_it(tmp_path):
    """A note saved through `nas-dashboard`'s app on a journal study: written under the workers' own
    lock (``study.log.flock``), at once. Optuna's stock symlink lock uses ``study.log.lock``; when nas's
    lock had that name, such a write waited out the symlink lock's 30 s grace and then deleted it."""
    from nas.cli import dashboard_app

    run_dir = tmp_path / "run"
    done = subprocess.run([str(BIN / "nas-search"), "workers=0", "space=mlp", "budget.trials=1", f"hydra.run.dir={run_dir}"],
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    app = dashboard_app(run_dir)
    environ: dict = {"REQUEST_METHOD": "PUT", "PATH_INFO": "/api/studies/0/note", "QUERY_STRING": "",
                     "CONTENT_TYPE": "application/json"}
    setup_testing_defaults(environ)
    body = json.dumps({"version": 1, "body": "a note from the dashboard"}).encode()
    environ["CONTENT_LENGTH"], environ["wsgi.input"] = str(len(body)), io.BytesIO(body)
    seen: dict = {}
    start = time.perf_counter()
    b"".join(app(environ, lambda status, headers, exc_info=None: seen.update(status=status)))
    assert seen["status"].startswith("204") and time.perf_counter() - start < 5
    assert (run_dir / "study.log.flock").is_file() and not (run_dir / "study.log.lock").exists()
    storage = open_storage("journal://{run_dir}/study.log", run_dir)[1]
    attrs = storage.get_study_system_attrs(storage.get_study_id_from_name("nas"))  # where the dashboard keeps notes
    assert any("a note from the dashboard" in str(v) for v in attrs.values())


def test_nas_dashboard_needs_a_run_directory(tmp_path):
    out = subprocess.run([str(BIN / "nas-dashboard"), str(tmp_path)], env=ENV, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "must be a run directory holding run.json" in out.stderr
