"""Per-trial time outside evaluation, through `nas.search`, on the NAS-Bench-201 table: flat over a long run?

    .venv/bin/python experiments/trial_overhead.py [--trials 5000] [--storages sqlite memory journal] [--window 100]

For each storage, one search of `--trials` random trials on `cell_nb201` with the `nb201` table
estimator, TensorBoard on, progress lines off (printing 5,000 lines measures the terminal). A
callback stamps the end of every trial; a trial's time outside evaluation is the time between two
stamps minus the seconds its evaluation took (a lookup: microseconds). Reported: the mean over the
first and the last `--window` trials, their ratio, and how long TensorBoard takes to load the run
directory (its EventMultiplexer, what `tensorboard --logdir` does on start).
Targets (the lifecycle issue): last/first <= 1.2; <= 15 ms per trial on SQLite, <= 5 ms in memory;
TensorBoard loads the run in under 30 s. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

import nas


class Stamps(nas.Callback):
    """Wall time at each trial's end, and what its evaluation cost."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.costs: list[float] = []

    def on_search_start(self, search) -> None:
        super().on_search_start(search)
        self.ends.append(time.perf_counter())  # the first trial's time runs from here

    def on_trial_end(self, record, evaluation) -> None:
        self.ends.append(time.perf_counter())
        self.costs.append(record.cost or 0.0)


def tensorboard_load_seconds(logdir: Path) -> tuple[float, int]:
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

    start = time.perf_counter()
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    return time.perf_counter() - start, len(mux.Runs())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--storages", nargs="+", default=["sqlite", "memory", "journal"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    urls = {"sqlite": None, "memory": "memory", "journal": "journal:///{run_dir}/study.log"}
    print(f"| storage | trials | first {args.window}: ms/trial | last {args.window}: ms/trial | last/first | total s | "
          f"TensorBoard load s (runs) |\n|---|---:|---:|---:|---:|---:|---:|", flush=True)
    for name in args.storages:
        with tempfile.TemporaryDirectory() as tmp:
            stamps = Stamps()
            start = time.perf_counter()
            result = nas.search(space="cell_nb201", strategy="random", estimator="nb201", trials=args.trials, seed=0,
                                out_dir=Path(tmp) / "run", storage=urls[name], progress=False, callbacks=[stamps])
            total = time.perf_counter() - start
            outside = [1000 * (b - a - c) for a, b, c in zip(stamps.ends, stamps.ends[1:], stamps.costs)]
            first, last = statistics.mean(outside[:args.window]), statistics.mean(outside[-args.window:])
            tb_seconds, runs = tensorboard_load_seconds(Path(tmp) / "run" / "tb")
            assert len(result.trials) == args.trials
            print(f"| {name} | {len(outside)} | {first:.2f} | {last:.2f} | {last / first:.2f} | {total:.1f} | {tb_seconds:.1f} ({runs}) |",
                  flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
