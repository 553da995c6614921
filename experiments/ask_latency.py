"""How long one ask takes with 200 completed trials, per strategy, on the NAS-Bench-201 cell space.

    .venv/bin/python experiments/ask_latency.py [--history 200] [--repeats 20] [--strategies bo rl evolution ...]

Two cases: *warm* (the instance that ran the history asks once more: the usual case in a search)
and *fresh* (a new instance given the same history: a resumed search, or another worker).
Target from the strategy issue: our BO asks in under 100 ms with 200 completed trials.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

import nas
from nas._api import make_strategy
from nas._config import load_group_file
from nas.contrib.nb201 import NB201Estimator
from nas.engine.loop import run_in_memory


def build(name: str, space: nas.SearchSpace, seed: int) -> nas.Strategy:
    return make_strategy(load_group_file("strategy", name)[1], space, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--strategies", nargs="+", default=["random", "evolution", "local", "bo", "rl", "tpe", "gp"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=Warning, module="optuna")
    space = nas.get_space("cell_nb201")
    estimator = NB201Estimator(space=space)
    print("| strategy | warm ask, median (max) | fresh ask (resume), median (max) |\n|---|---:|---:|")
    for name in args.strategies:
        strategy = build(name, space, 0)
        history = run_in_memory(strategy, estimator, args.history)
        warm, fresh = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            strategy.ask(history)
            warm.append(time.perf_counter() - t)
        for _ in range(max(3, args.repeats // 4)):
            other = build(name, space, 0)
            t = time.perf_counter()
            other.ask(history)
            fresh.append(time.perf_counter() - t)
        print(f"| {name} | {1000 * statistics.median(warm):.1f} ms ({1000 * max(warm):.1f}) | "
              f"{1000 * statistics.median(fresh):.1f} ms ({1000 * max(fresh):.1f}) |", flush=True)


if __name__ == "__main__":
    main()
