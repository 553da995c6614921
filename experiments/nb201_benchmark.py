"""Benchmark every strategy on the NAS-Bench-201 table (a Hydra app; config in conf/nb201_benchmark.yaml).

    .venv/bin/python experiments/nb201_benchmark.py [seeds=20] [datasets=[cifar10,cifar100]] [strategies=[evolution,bo]]

Writes to its run directory (printed at the end):
- ``benchmark.md``: per dataset, best test accuracy found (mean +- std over seeds) after 25, 50, 100
  and 200 evaluations for each strategy, seconds per run, the targets and the whole wall time;
- ``results.json``: every run's sequence of looked-up accuracies;
- ``tb/<dataset>/<strategy>``: TensorBoard curves of best-so-far (mean over seeds) against evaluations
  (``tensorboard --logdir <run dir>/tb``).
Strategies run in memory (no study: a lookup costs microseconds, a storage round trip milliseconds),
through the same Strategy objects, configs and table estimator that ``nas-search`` uses.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

#: Slowest first, so the process pool ends together.
_COST_ORDER = ("gp", "bo", "tpe", "rl", "local", "evolution", "grid", "random")


def one_run(name: str, overrides: dict[str, Any], seed: int, dataset: str, evaluations: int, path: str | None) -> dict[str, Any]:
    """One strategy, one seed, one dataset column: the accuracies it looked up, in order."""
    import torch

    torch.set_num_threads(1)
    import nas
    from nas._api import make_strategy
    from nas._config import load_group_file
    from nas.contrib.nb201 import NB201Estimator
    from nas.engine.loop import run_in_memory

    space = nas.get_space("cell_nb201")
    node = OmegaConf.merge(load_group_file("strategy", name)[1], overrides)
    strategy = make_strategy(node, space, seed)
    estimator = NB201Estimator(space=space, dataset=dataset, path=path)
    start = time.perf_counter()
    history = run_in_memory(strategy, estimator, evaluations)
    return {"strategy": name, "seed": seed, "dataset": dataset, "seconds": time.perf_counter() - start,
            "values": [r.value if r.value is not None else float("nan") for r in history]}


def best_so_far(values: list[float], length: int) -> np.ndarray:
    """Running maximum, padded with its last value when a run ended early (an exhausted strategy)."""
    curve = np.fmax.accumulate(np.nan_to_num(np.asarray(values, dtype=float), nan=-np.inf)) if values else np.array([-np.inf])
    return np.concatenate([curve, np.full(max(0, length - len(curve)), curve[-1])])[:length]


def summarise(runs: list[dict[str, Any]], cfg: DictConfig, wall: float) -> tuple[str, dict[str, Any]]:
    checkpoints = [int(n) for n in cfg.evaluations]
    length = max(checkpoints)
    lines, summary = [], {}
    for dataset in cfg.datasets:
        lines += [f"### NAS-Bench-201, {dataset}: best test accuracy (%) found, mean ± std over {cfg.seeds} seeds", "",
                  "| strategy | " + " | ".join(f"after {n}" for n in checkpoints) + " | seconds per run |",
                  "|---|" + "---:|" * (len(checkpoints) + 1)]
        for name in cfg.strategies:
            mine = [r for r in runs if r["strategy"] == name and r["dataset"] == dataset]
            curves = np.stack([best_so_far(r["values"], length) for r in mine])
            stats = {n: (float(curves[:, n - 1].mean()), float(curves[:, n - 1].std())) for n in checkpoints}
            seconds = float(np.mean([r["seconds"] for r in mine]))
            summary.setdefault(dataset, {})[name] = {"mean_std": stats, "seconds_per_run": seconds, "curve_mean": curves.mean(0).tolist(),
                                                      "curve_std": curves.std(0).tolist()}
            lines.append(f"| {name} | " + " | ".join(f"{m:.2f} ± {s:.2f}" for m, s in stats.values()) + f" | {seconds:.2f} |")
        lines.append("")
        for name, target in (cfg.targets.get(dataset) or {}).items():
            if name in summary[dataset]:
                got = summary[dataset][name]["mean_std"].get(int(target.at))
                if got is not None:
                    verdict = "met" if got[0] >= target.min else f"MISSED by {target.min - got[0]:.2f}"
                    lines.append(f"- target {name} >= {target.min:.2f} after {target.at}: {got[0]:.2f} ({verdict})")
        lines.append("")
    lines.append(f"Whole benchmark: {wall:.0f} s wall time, {len(runs)} runs, {cfg.workers} worker processes.")
    return "\n".join(lines), summary


def write_tensorboard(summary: dict[str, Any], out: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    for dataset, per_strategy in summary.items():
        for name, s in per_strategy.items():
            with SummaryWriter(str(out / "tb" / dataset / name)) as writer:
                for step, (m, sd) in enumerate(zip(s["curve_mean"], s["curve_std"]), start=1):
                    writer.add_scalar(f"best_so_far/{dataset}", m, step)
                    writer.add_scalar(f"best_so_far_std/{dataset}", sd, step)


def run_benchmark(cfg: DictConfig, out: Path) -> str:
    from nas._config import check_name

    for name in cfg.strategies:
        check_name("strategy", name)  # a typo fails here, before any run
    overrides = OmegaConf.to_container(cfg.strategy_overrides, resolve=True) or {}
    jobs = [(name, overrides.get(name, {}), seed, dataset, max(cfg.evaluations), cfg.path)
            for name in sorted(cfg.strategies, key=lambda n: _COST_ORDER.index(n) if n in _COST_ORDER else -1)
            for dataset in cfg.datasets for seed in range(int(cfg.seeds))]
    start, runs = time.perf_counter(), []
    with ProcessPoolExecutor(max_workers=int(cfg.workers), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(one_run, *job) for job in jobs]
        for i, future in enumerate(as_completed(futures), start=1):
            run = future.result()
            runs.append(run)
            best = max((v for v in run["values"] if not math.isnan(v)), default=float("nan"))
            print(f"[{i}/{len(jobs)}] {run['strategy']:<10} seed {run['seed']:<3} {run['dataset']}: best {best:.2f} "
                  f"in {len(run['values'])} evaluations ({run['seconds']:.1f} s)  elapsed {time.perf_counter() - start:.0f} s", flush=True)
    wall = time.perf_counter() - start
    table, summary = summarise(runs, cfg, wall)
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps({"config": OmegaConf.to_container(cfg, resolve=True), "runs": runs}))
    write_tensorboard(summary, out)
    print("\n" + table)
    print(f"\nwritten: {out / 'benchmark.md'}\nreview:  tensorboard --logdir {out / 'tb'}")
    return table


@hydra.main(version_base=None, config_path="conf", config_name="nb201_benchmark")
def main(cfg: DictConfig) -> None:
    run_benchmark(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
