"""Many workers, each trial a table lookup: what the storage itself sustains. Trials per second,
errors and the exact budget with N `nas-worker` processes on one study, on the journal file and on
PostgreSQL, side by side.

    .venv/bin/python experiments/table_workers.py [--workers 8] [--trials 2000] [--postgres URL | --start-postgres]

The space is NAS-Bench-201's cell, the estimator its table (no training: every second goes to the
storage, the budget lock and the workers' reads of the shared history), random search. For each
storage: ``nas-search workers=0`` prepares the run, the workers search it until the budget is spent,
and the study's own timestamps give the span from the first trial's start to the last trial's end.
``--start-postgres`` starts a throwaway server as the test suite does (tests/postgres_server.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nas

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))


def one_storage(label: str, storage: str | None, workers: int, trials: int, tmp: Path) -> dict:
    run_dir = tmp / label
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    prepare = [str(BIN / "nas-search"), "workers=0", "space=cell_nb201", "estimator=nb201", "strategy=random",
               f"budget.trials={trials}", "tensorboard=false", "progress=false", f"hydra.run.dir={run_dir}",
               *([f"storage='{storage}'"] if storage else [])]
    done = subprocess.run(prepare, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{label}: preparing failed:\n{done.stderr[-2000:]}")
    start = time.perf_counter()
    procs = [subprocess.Popen([str(BIN / "nas-worker"), str(run_dir), "--index", str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(workers)]
    outputs = [p.communicate() for p in procs]
    seconds = time.perf_counter() - start
    trials_read = nas.load(run_dir).trials
    from experiments.worker_throughput import search_span

    span = search_span(run_dir)
    errors = sum(line.startswith(("Traceback", "error:")) or "WARNING" in line for _, err in outputs for line in err.splitlines())
    errors += sum("WARNING" in line for out, _ in outputs for line in out.splitlines())
    return {"storage": label, "workers": workers, "trials": len(trials_read),
            "complete": sum(r.state == "complete" for r in trials_read), "failed": sum(r.state == "failed" for r in trials_read),
            "exit_codes": sorted({p.returncode for p in procs}), "errors_and_warnings": errors,
            "per_worker": sorted(sum(r.worker == w for r in trials_read) for w in {r.worker for r in trials_read}),
            "span_s": round(span, 2), "trials_per_s": round(len(trials_read) / span, 1), "whole_s": round(seconds, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--trials", type=int, default=2000)
    p.add_argument("--postgres", default=None, help="a PostgreSQL URL (an empty database)")
    p.add_argument("--start-postgres", action="store_true", help="start a throwaway PostgreSQL server for the run")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    server = None
    if args.start_postgres:
        from tests.postgres_server import PostgresServer, fresh_database

        server = PostgresServer().setup()
        if server.reason:
            sys.exit(f"no PostgreSQL server: {server.reason}")
        args.postgres = fresh_database(server)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="nas-table-workers-") as tmp:
            rows.append(one_storage("journal file", None, args.workers, args.trials, Path(tmp)))
            if args.postgres:
                rows.append(one_storage("postgresql", args.postgres, args.workers, args.trials, Path(tmp)))
    finally:
        if server is not None:
            server.close()
    print("| storage | workers | trials | complete | failed | errors/warnings | trials per worker | span | trials/s | whole command |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['storage']} | {r['workers']} | {r['trials']} | {r['complete']} | {r['failed']} | {r['errors_and_warnings']} | "
              f"{r['per_worker']} | {r['span_s']} s | {r['trials_per_s']} | {r['whole_s']} s |")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
