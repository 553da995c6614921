"""Chaos: workers on one study, real training, and a supervisor that kill -9s a random worker every
few seconds and starts a new one in its place, until the budget is done. Then the invariants.

    .venv/bin/python experiments/chaos.py [--workers 4] [--trials 24] [--epochs 8] [--kill-every 3]
                                          [--max-kills 8] [--storage URL | --start-postgres] [--json FILE]

1. ``nas-search workers=0`` prepares a run directory and its study (a journal file by default; or
   ``--storage``, e.g. a PostgreSQL URL) for workers started elsewhere.
2. ``--workers`` ``nas-worker`` processes search it, one thread each.
3. Every ``--kill-every`` seconds (jittered, seeded) the supervisor kills a random worker that is in
   the middle of a trial with SIGKILL and starts a new worker with ``--replaces host:pid`` (as
   ``workers=N`` does), until ``--max-kills``; then lets them finish. Re-runs are killed too, so a
   trial may be lost more than once: ``--requeue`` (5) re-runs are allowed, not the default 1; and
   every epoch is checkpointed (``checkpoints.every=0``; the default, 30 s, outlasts these trials).
4. It snapshots every finished trial while the chaos goes on, and checks at the end: exactly
   ``--trials`` COMPLETE trials; none RUNNING or WAITING; no finished trial's state, value or curve
   changed after it finished; every architecture completed once (random search does not repeat
   one), a lost trial's retry being the same architecture; every resumed trial's curve is whole
   (``--epochs`` points) and continues the lost one's (the same values for the epochs it resumed).

Prints kills survived, trials lost and re-queued, trials resumed from a checkpoint, epochs saved by
resuming, and each invariant; exits 1 if one fails. ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nas

BIN = Path(sys.executable).parent


def finished_trials(run_dir: Path) -> dict[int, tuple[str, float | None, tuple[float, ...]]]:
    try:
        trials = nas.load(run_dir).trials
    except Exception:  # a half-written study read mid-append: the next snapshot will do
        return {}
    return {r.number: (str(r.state), r.value, tuple(r.curve)) for r in trials if r.finished}


def running_workers(run_dir: Path) -> set[str]:
    try:
        return {r.worker for r in nas.load(run_dir).trials if r.state == "running" and r.worker}
    except Exception:
        return set()


def chaos(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    prepare = [str(BIN / "nas-search"), "workers=0", f"budget.trials={args.trials}", f"estimator.epochs={args.epochs}",
               "tensorboard=false", f"seed={args.seed}", "heartbeat.interval=1", "heartbeat.grace=5", f"requeue={args.requeue}", "checkpoints.every=0",
               f"hydra.run.dir={run_dir}",
               *([f"storage='{args.storage}'"] if args.storage else []), *args.override]
    done = subprocess.run(prepare, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"preparing the run failed:\n{done.stderr[-3000:]}")
    logs = run_dir / "worker-logs"
    logs.mkdir()
    host = socket.gethostname()
    procs: dict[int, subprocess.Popen] = {}

    def start(index: int, replaces: str | None = None) -> None:
        log = open(logs / f"w{index}-{len(os.listdir(logs))}.log", "w")
        command = [str(BIN / "nas-worker"), str(run_dir), "--index", str(index)]
        procs[index] = subprocess.Popen(command + (["--replaces", replaces] if replaces else []), env=env, stdout=log,
                                        stderr=subprocess.STDOUT)

    rng = random.Random(args.seed)
    started = time.perf_counter()
    for index in range(args.workers):
        start(index)
    kills, snapshots, seen = 0, 0, {}
    changed: list[str] = []
    next_kill = time.perf_counter() + args.kill_every * rng.uniform(0.5, 1.5)
    while any(p.poll() is None for p in procs.values()):
        if time.perf_counter() - started > args.timeout:
            for p in procs.values():
                p.kill()
            sys.exit(f"the workers did not finish within {args.timeout} s")
        now = finished_trials(run_dir)
        snapshots += 1
        for number, was in seen.items():
            if number in now and now[number] != was:
                changed.append(f"#{number}: {was} -> {now[number]}")
        seen.update(now)
        if kills < args.max_kills and time.perf_counter() >= next_kill:
            busy = running_workers(run_dir)
            victims = [i for i, p in procs.items() if p.poll() is None and f"{host}:{p.pid}" in busy]
            if victims:
                index = rng.choice(victims)
                victim = procs[index]
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                kills += 1
                start(index, replaces=f"{host}:{victim.pid}")
            next_kill = time.perf_counter() + args.kill_every * rng.uniform(0.5, 1.5)
        time.sleep(0.3)
    seconds = time.perf_counter() - started
    failed_workers = {i: p.returncode for i, p in procs.items() if p.returncode != 0}

    trials = nas.load(run_dir).trials
    final = {r.number: (str(r.state), r.value, tuple(r.curve)) for r in trials if r.finished}
    changed += [f"#{n}: {was} -> {final.get(n)}" for n, was in seen.items() if final.get(n) != was]
    by_number = {r.number: r for r in trials}
    retries = [r for r in trials if r.retry_of is not None]
    resumed = [r for r in retries if "resumed_from" in r.metrics]
    complete = [r for r in trials if r.state == "complete"]
    keys = [r.arch.key for r in complete]
    broken_curves = [r.number for r in complete if len(r.curve) != args.epochs]
    discontinuous = [r.number for r in resumed
                     if r.curve[:r.metrics["resumed_steps"]] != by_number[r.metrics["resumed_from"]].curve[:r.metrics["resumed_steps"]]]
    figures = {
        "storage": args.storage or "journal file", "workers": args.workers, "trials_budget": args.trials, "epochs": args.epochs,
        "seconds": round(seconds, 1), "kills": kills, "trials_in_study": len(trials), "complete": len(complete),
        "running_or_waiting": sum(r.state in ("running", "waiting") for r in trials),
        "lost": sum(r.state == "failed" and any(t.retry_of == r.number for t in retries) for r in trials),
        "failed_not_rerun": sorted(r.number for r in trials if r.state == "failed" and not any(t.retry_of == r.number for t in retries)),
        "requeued": len(retries), "resumed_from_checkpoint": len(resumed),
        "epochs_saved": sum(int(r.metrics["resumed_steps"]) for r in resumed),
        "finished_trials_changed": sorted(set(changed)), "snapshots": snapshots,
        "architectures_completed_twice": len(keys) - len(set(keys)),
        "retry_with_another_architecture": [r.number for r in retries if r.arch.key != by_number[r.retry_of].arch.key],
        "curves_not_whole": broken_curves, "resumed_curves_discontinuous": discontinuous, "workers_failed": failed_workers,
    }
    figures["ok"] = (figures["complete"] == args.trials and not figures["running_or_waiting"] and not figures["finished_trials_changed"]
                     and not figures["architectures_completed_twice"] and not figures["retry_with_another_architecture"]
                     and not broken_curves and not discontinuous and not failed_workers and not figures["failed_not_rerun"])
    return figures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--kill-every", type=float, default=3.0, help="seconds between kills, on average")
    p.add_argument("--max-kills", type=int, default=8)
    p.add_argument("--storage", default=None, help="an Optuna storage URL (default: the run directory's journal file)")
    p.add_argument("--start-postgres", action="store_true", help="start a throwaway PostgreSQL server (tests/postgres_server.py) "
                   "and use a new database of it as the storage")
    p.add_argument("--requeue", type=int, default=5, help="times a lost trial is re-run (the chaos kills re-runs too)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--out", type=Path, default=None, help="the run directory (default: a temporary one)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("override", nargs="*", help="more nas-search overrides, e.g. space=mlp")
    args = p.parse_args()
    server = None
    if args.start_postgres:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.postgres_server import PostgresServer, fresh_database

        server = PostgresServer().setup()
        if server.reason:
            sys.exit(f"no PostgreSQL server: {server.reason}")
        args.storage = fresh_database(server)
    try:
        with tempfile.TemporaryDirectory(prefix="nas-chaos-") as tmp:
            figures = chaos(args, args.out or Path(tmp) / "run")
    finally:
        if server is not None:
            server.close()
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    sys.exit(0 if figures["ok"] else 1)


if __name__ == "__main__":
    main()
