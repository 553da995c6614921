"""Resident memory of one process over a long search: does it grow per trial?

    .venv/bin/python experiments/memory_growth.py [--trials 300] [--space mlp] [--epochs 1] [--storage sqlite]

One `nas.search` in this process (real training on digits, TensorBoard and the best checkpoint on,
SQLite study), with a callback that reads this process's resident set size (`/proc/self/statm`,
Linux) after every trial. Growth is measured from trial 20 (imports, the dataset, the first
optimizer and TensorBoard writers are in memory by then) to the last trial; the target of the
scale-out issue is under 50 MB for 300 trials. `import nas` bounds torch's two native convolution
caches (nas/_native_caches.py); set ONEDNN_PRIMITIVE_CACHE_CAPACITY / LRU_CACHE_CAPACITY to 1024 to see torch's defaults. Prints RSS at a few points and the growth per 100 trials.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
from pathlib import Path

import nas
from nas._native_caches import CAPACITIES

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


class MemoryProbe(nas.Callback):
    def __init__(self) -> None:
        self.samples: list[tuple[int, float]] = []

    def on_trial_end(self, record, evaluation) -> None:  # type: ignore[no-untyped-def]
        gc.collect()
        self.samples.append((record.number + 1, rss_mb()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=300)
    p.add_argument("--space", default="mlp")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--warm", type=int, default=20, help="trials before growth is counted")
    args = p.parse_args()
    probe = MemoryProbe()
    with tempfile.TemporaryDirectory(prefix="nas-memory-") as tmp:
        nas.search(space=args.space, trials=args.trials, epochs=args.epochs, out_dir=Path(tmp) / "run", progress=False, callbacks=[probe])
    at = dict(probe.samples)
    points = [n for n in (1, args.warm, args.trials // 4, args.trials // 2, 3 * args.trials // 4, args.trials) if n in at]
    caches = ", ".join(f"{k}={os.environ.get(k)}" for k in CAPACITIES)
    print(f"{args.trials} trials of '{args.space}' ({args.epochs} epoch(s) each) in one process ({caches}); resident memory after trial:")
    for n in points:
        print(f"  {n:>5}: {at[n]:7.1f} MB")
    growth = at[args.trials] - at[args.warm]
    per_100 = growth / (args.trials - args.warm) * 100
    print(f"growth from trial {args.warm} to {args.trials}: {growth:+.1f} MB ({per_100:+.2f} MB per 100 trials); target < 50 MB: "
          f"{'met' if growth < 50 else 'MISSED'}")


if __name__ == "__main__":
    main()
