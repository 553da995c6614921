"""A journal study on a full disk: the write that found no room is cut back to whole lines and retried
until there is room again, so the journal never holds a half line (with Optuna's own backend the next
append continued the half line and every later reader of the study failed). The disk fills for real:
a child process under a file size limit (RLIMIT_FSIZE), whose writes past it fail with EFBIG."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

from nas.store import open_store
from nas.testing import ToySpace

ROOT = Path(__file__).resolve().parents[1]

FILLS_UP = textwrap.dedent("""
    import json, os, resource, signal, sys, threading
    import numpy as np
    from pathlib import Path
    from nas.core.records import TrialState
    from nas.store import Outcome, open_store
    from nas.testing import ToySpace

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
    run_dir = Path(sys.argv[1]); space = ToySpace(); said = []
    store = open_store(f"journal:///{run_dir}/study.log", run_dir=run_dir, space=space)[1]
    store.notify = said.append
    archs = [space.architecture(space.sample(np.random.default_rng(seed))) for seed in range(4)]
    for number, arch in enumerate(archs[:3]):
        store.finish(store.start(arch, text="t", parent=None, worker="w:1"), Outcome(state=TrialState.COMPLETE, value=number / 10))
    last = store.start(archs[3], text="t", parent=None, worker="w:1")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(run_dir / "study.log") + 64, hard))  # the disk is full 64 bytes on
    room = threading.Timer(1.2, lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard)))  # room again, 1.2 s later
    room.start()
    store.finish(last, Outcome(state=TrialState.COMPLETE, value=0.9, metrics={"note": "x" * 400}))  # far more than 64 bytes
    room.join()
    print(json.dumps({"said": said}))
""")

# The same full disk under Optuna's own JournalFileBackend: what nas's appender is there for.
STOCK_FILLS_UP = textwrap.dedent("""
    import json, os, resource, signal, sys
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    path = os.path.join(sys.argv[1], "stock.log")
    study = optuna.create_study(storage=JournalStorage(JournalFileBackend(path)), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 50, hard))
    try:
        study.ask().set_user_attr("note", "x" * 500)
    except OSError:
        pass
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # room again
    half_line = not open(path, "rb").read().endswith(b"\\n")
    try:
        optuna.load_study(storage=JournalStorage(JournalFileBackend(path)), study_name="s").optimize(lambda t: 0.0, n_trials=1)
        optuna.load_study(storage=JournalStorage(JournalFileBackend(path)), study_name="s").trials
        broken = None
    except Exception as exc:
        broken = type(exc).__name__
    print(json.dumps({"half_line": half_line, "broken": broken}))
""")


LINUX_ONLY = pytest.mark.skipif(sys.platform != "linux", reason="needs RLIMIT_FSIZE and SIGXFSZ (Linux)")


def _run(script: str, folder: Path) -> dict:
    """``script`` in a child process (its file size limit is its own) on ``folder``; the JSON it prints last."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-c", script, str(folder)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@LINUX_ONLY
def test_optunas_own_journal_backend_is_broken_by_a_full_disk(tmp_path):
    """Why nas appends to the journal itself: Optuna's backend leaves the half line, and the study can
    no longer be read once the next append continues it. Should Optuna fix this, this test fails, and
    nas/store/journal_file.py can go."""
    stock = _run(STOCK_FILLS_UP, tmp_path)
    assert stock["half_line"] and stock["broken"] is not None, stock


@LINUX_ONLY
def test_a_full_disk_is_waited_out_and_the_journal_keeps_whole_lines(tmp_path):
    said = _run(FILLS_UP, tmp_path)["said"]
    assert any("full ([Errno 27] File too large); retrying in 0.5 s" in line for line in said), said
    assert any("writable again after" in line for line in said), said
    journal = (tmp_path / "study.log").read_bytes()
    assert journal.endswith(b"\n") and all(json.loads(line) for line in journal.splitlines())  # whole JSON lines only
    # Read anew, by nas and by Optuna: the four trials, the last one finished once, with its own result.
    trials = open_store(f"journal:///{tmp_path}/study.log", run_dir=tmp_path, space=ToySpace())[1].history()
    assert [(t.state, t.value) for t in trials] == [("complete", 0.0), ("complete", 0.1), ("complete", 0.2), ("complete", 0.9)]
    assert trials[3].metrics["note"] == "x" * 400
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.log")))
    assert len(optuna.load_study(study_name="nas", storage=storage).trials) == 4
