"""Trials per minute with 1 and 2 local workers on one study (`nas-search workers=N`), side by side.

    .venv/bin/python experiments/worker_throughput.py [--trials 20] [--epochs 5] [--workers 1 2] [--repeats 1]

Each run is a whole `nas-search` command as a user types it (the default space, strategy and
dataset; real training, one thread per worker), timed from start to exit: process start-up,
every worker's imports and the coordinator's summary included. Runs alternate by repeat. Prints
trials per minute for each worker count, the speed-up over one worker (target: >= 1.8 with 2
workers on 2 cores), and whether every run trained the same set of architectures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nas

BIN = Path(sys.executable).parent


def search_span(run_dir: Path) -> float:
    """Seconds from the first trial's start to the last trial's end, from the study's own timestamps."""
    import optuna

    from nas._results import run_file
    from nas.store import open_storage

    meta = run_file(run_dir)
    _, storage = open_storage(meta["storage"], run_dir)
    trials = optuna.load_study(study_name=meta["study_name"], storage=storage).trials
    start = min(t.datetime_start for t in trials if t.datetime_start is not None)
    end = max(t.datetime_complete for t in trials if t.datetime_complete is not None)
    return (end - start).total_seconds()


def one_run(workers: int, trials: int, epochs: int) -> tuple[float, float, list[str], int]:
    with tempfile.TemporaryDirectory(prefix="nas-throughput-") as tmp:
        run_dir = Path(tmp) / "run"
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",)}
        start = time.perf_counter()
        done = subprocess.run([str(BIN / "nas-search"), f"workers={workers}", f"budget.trials={trials}", f"estimator.epochs={epochs}",
                               "progress=false", f"hydra.run.dir={run_dir}"], env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"workers={workers} failed:\n{done.stderr[-2000:]}")
        result = nas.load(run_dir)
        complete = sum(r.state == "complete" for r in result.trials)
        return seconds, search_span(run_dir), sorted(r.arch.key for r in result.trials), complete


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    times: dict[int, list[float]] = {n: [] for n in args.workers}
    spans: dict[int, list[float]] = {n: [] for n in args.workers}
    keys: set[tuple[str, ...]] = set()
    for repeat in range(args.repeats):
        for n in (args.workers if repeat % 2 == 0 else list(reversed(args.workers))):
            seconds, span, trial_keys, complete = one_run(n, args.trials, args.epochs)
            times[n].append(seconds)
            spans[n].append(span)
            keys.add(tuple(trial_keys))
            print(f"workers={n}: {args.trials} trials ({complete} complete) in {seconds:.1f} s = {60 * args.trials / seconds:.1f} trials/min",
                  flush=True)
    base, base_span = statistics.median(times[args.workers[0]]), statistics.median(spans[args.workers[0]])
    print(f"\n{os.cpu_count()} cores, {args.trials} trials x {args.epochs} epochs, one thread per worker, {args.repeats} repeat(s)")
    print("                whole command                      | first trial's start to last trial's end")
    for n in args.workers:
        med, span = statistics.median(times[n]), statistics.median(spans[n])
        print(f"workers={n}: {med:6.1f} s {60 * args.trials / med:5.1f} trials/min speed-up {base / med:.2f}x | "
              f"{span:6.1f} s {60 * args.trials / span:5.1f} trials/min speed-up {base_span / span:.2f}x")
    print("same architectures in every run:", len(keys) == 1)


if __name__ == "__main__":
    main()
