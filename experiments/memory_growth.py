"""Resident memory of one process over a long search: does it grow per trial?

    .venv/bin/python experiments/memory_growth.py [--trials 300] [--space mlp] [--epochs 1]

One `nas.search` in this process (real training on digits, TensorBoard and the best checkpoint on,
SQLite study), with a callback that reads, after every trial, this process's resident set size
(`/proc/self/statm`, Linux) and the bytes its C heap holds live (glibc's `mallinfo2`: what
native code such as torch's caches allocated and has not freed; freed heap the allocator keeps
counts in the resident size but not here). Growth is measured from trial 20 (imports, the dataset,
the first optimizer and TensorBoard writers are in memory by then) to the last trial; the target of
the scale-out issue is under 50 MB of resident memory for 300 trials. `import nas` bounds torch's
two native convolution caches, and the loop gives freed heap back at most every 10 s
(nas/_native_memory.py); set ONEDNN_PRIMITIVE_CACHE_CAPACITY and LRU_CACHE_CAPACITY to 1024 to see
torch's defaults. Prints both at a few points and their growth.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import tempfile
from pathlib import Path

import nas
from nas._native_memory import CAPACITIES

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mallinfo2():  # type: ignore[no-untyped-def]
    try:
        function = ctypes.CDLL("libc.so.6").mallinfo2  # glibc 2.33+
    except (OSError, AttributeError):
        return None
    function.restype = _MallInfo2
    return function


MALLINFO2 = _mallinfo2()


def live_heap_mb() -> float | None:
    """Bytes the C heap holds allocated (small blocks and mmapped ones), or ``None`` without glibc's mallinfo2."""
    if MALLINFO2 is None:
        return None
    info = MALLINFO2()
    return (info.uordblks + info.hblkhd) / 2**20


class MemoryProbe(nas.Callback):
    def __init__(self) -> None:
        self.samples: list[tuple[int, float, float | None]] = []

    def on_trial_end(self, record, evaluation) -> None:  # type: ignore[no-untyped-def]
        gc.collect()
        self.samples.append((record.number + 1, rss_mb(), live_heap_mb()))


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
    at = {n: (rss, heap) for n, rss, heap in probe.samples}
    points = [n for n in (1, args.warm, args.trials // 4, args.trials // 2, 3 * args.trials // 4, args.trials) if n in at]
    caches = ", ".join(f"{k}={os.environ.get(k)}" for k in CAPACITIES)
    print(f"{args.trials} trials of '{args.space}' ({args.epochs} epoch(s) each) in one process ({caches}); after trial:")
    for n in points:
        rss, heap = at[n]
        print(f"  {n:>5}: resident {rss:7.1f} MB" + (f"   live C heap {heap:7.1f} MB" if heap is not None else ""))
    growth = at[args.trials][0] - at[args.warm][0]
    per_100 = growth / (args.trials - args.warm) * 100
    print(f"resident growth from trial {args.warm} to {args.trials}: {growth:+.1f} MB ({per_100:+.2f} MB per 100 trials); "
          f"target < 50 MB: {'met' if growth < 50 else 'MISSED'}")
    first, last = at[args.warm][1], at[args.trials][1]
    if first is not None and last is not None:
        print(f"live C heap growth from trial {args.warm} to {args.trials}: {last - first:+.1f} MB")


if __name__ == "__main__":
    main()
