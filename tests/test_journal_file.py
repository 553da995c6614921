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
    size = os.path.getsize(run_dir / "study.log")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 64, hard))  # the disk is full 64 bytes on
    room = threading.Timer(1.2, lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard)))  # room again, 1.2 s later
    room.start()
    store.finish(last, Outcome(state=TrialState.COMPLETE, value=0.9, metrics={"note": "x" * 400}))  # far more than 64 bytes
    room.join()
    print(json.dumps({"said": said, "size_when_full": size}))
""")


@pytest.mark.skipif(sys.platform != "linux", reason="needs RLIMIT_FSIZE and SIGXFSZ (Linux)")
def test_a_full_disk_is_waited_out_and_the_journal_keeps_whole_lines(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-c", FILLS_UP, str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.strip().splitlines()[-1])["said"]
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
