"""Multi-objective strategies on NAS-Bench-201: CIFAR-10 accuracy against parameters, and against MACs.

    .venv/bin/python experiments/nb201_pareto.py [--seeds 20] [--evaluations 50 100 200] [--workers 2]
        [--strategies random nsga2 motpe evolution bo] [--out runs/nb201_pareto]

Every cell's parameter count is computed once with our builder at the benchmark's size (5 cells per
stage, 16 stem channels, 32x32x3 input, 10 classes): all 15,625 networks are built and counted, and the
counts are checked against the published column (NASLib's ``params`` for the cells it lists). MACs (the
multiply-accumulates of convolutions and linear layers, what ``costs=[macs]`` records) depend only on how
many 3x3 and 1x1 convolutions a cell holds, so they are measured once per such count and checked by
measuring 100 random cells in full. Both are cached in ``$XDG_CACHE_HOME/nas/`` (``~/.cache/nas``).

Each strategy runs through the same Strategy objects, configs and table estimator as ``nas-search``
(``objectives={cifar10: max, params: min}``), in memory; the hypervolume of the front after 50, 100 and 200
evaluations is divided by the exact hypervolume of the table's true front (every cell), with the fixed
reference point below. Writes ``pareto.md`` and ``results.json`` to ``--out`` and a picture of one seed's
fronts against the true one (``fronts_<objective>.png``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

#: Fixed reference points (accuracy %, then the cost in millions): 85 % is below every cell of the true front (the
#: cheapest reaches 86.80 %), so each member counts and the volume measures the trade-off, not the 0-85 % band that
#: nearly every cell clears; the costs are above the largest network (1.53 M parameters, 220.1 M MACs).
REFERENCE = {"params": (85.0, 1.6), "macs": (85.0, 220.0)}
STRATEGIES = ("random", "nsga2", "motpe", "evolution", "bo")
BENCHMARK_SIZE = {"cells_per_stage": 5, "stem_channels": 16}


def _cache_file(table_dir: Path) -> Path:
    digest = hashlib.sha256((table_dir / "nb201_test_accuracy.csv").read_bytes()).hexdigest()[:12]
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nas"
    return root / f"nb201_costs_{digest}.json"


def _count_params(texts: list[str]) -> list[int]:
    import torch

    import nas

    torch.set_num_threads(1)
    space = nas.get_space("cell_nb201", **BENCHMARK_SIZE)
    out = []
    for text in texts:
        model = space.build(space.parse(text), (3, 32, 32), 10)
        out.append(sum(p.numel() for p in model.parameters()))
    return out


def _macs(text: str) -> float:
    import nas
    from nas.costs.providers import MacsCost

    space = nas.get_space("cell_nb201", **BENCHMARK_SIZE)
    return float(MacsCost().measure(space.build(space.parse(text), (3, 32, 32), 10), (3, 32, 32))["macs"])


def _signature(text: str) -> tuple[int, int]:
    return text.count("nor_conv_3x3"), text.count("nor_conv_1x1")


def cell_costs(table_dir: Path, workers: int) -> dict[str, dict[str, float]]:
    """``{cell: {"params": millions, "macs": millions}}`` for all 15,625 cells (cached; see the module docstring)."""
    cache = _cache_file(table_dir)
    if cache.is_file():
        return json.loads(cache.read_text())
    from nas.contrib.nb201 import nb201_table

    texts = sorted(nb201_table(str(table_dir)))
    start = time.perf_counter()
    print(f"building all {len(texts):,} NAS-Bench-201 networks at the benchmark's size to count their parameters "
          f"({workers} processes; once, then cached in {cache})", flush=True)
    chunks = [texts[i::workers * 8] for i in range(workers * 8)]
    counts: dict[str, int] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for chunk, got in zip(chunks, pool.map(_count_params, chunks)):
            counts.update(zip(chunk, got))
    print(f"  counted in {time.perf_counter() - start:.0f} s", flush=True)
    by_signature = {sig: _macs(next(t for t in texts if _signature(t) == sig)) for sig in sorted({_signature(t) for t in texts})}
    rng = np.random.default_rng(0)
    for text in rng.choice(texts, size=100, replace=False):  # MACs follow the conv counts: checked in full
        measured = _macs(str(text))
        assert measured == by_signature[_signature(str(text))], (text, measured)
    _check_published(table_dir, counts)
    costs = {t: {"params": counts[t] / 1e6, "macs": by_signature[_signature(t)] / 1e6} for t in texts}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(costs))
    return costs


def _check_published(table_dir: Path, counts: dict[str, int]) -> int:
    """Our counts against NASLib's published ``params`` column (millions) for the cells it lists."""
    published = table_dir / "nb201_subset_valacc_zerocost.json"
    if not published.is_file():
        print("  (no published parameter column to check against)")
        return 0
    by_index = ["skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3"]
    cells = json.loads(published.read_text())["cifar10"]
    for key, row in cells.items():
        ops = [by_index[int(v)] for v in key.strip("()").split(",")]
        text = "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)
        assert abs(counts[text] / 1e6 - row["params"]["score"]) < 1e-6, (text, counts[text], row["params"]["score"])
    print(f"  parameter counts equal the published column for all {len(cells)} cells it lists")
    return len(cells)


def one_run(name: str, cost: str, seed: int, evaluations: int, table_dir: str) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    import nas
    from nas._api import make_strategy
    from nas._config import load_group_file
    from nas.contrib.nb201 import nb201_table
    from nas.core.objectives import parse_objectives
    from nas.engine.loop import run_in_memory
    from nas.estimators.table import TableEstimator

    costs = cell_costs(Path(table_dir), 1)
    table = {text: {"cifar10": row["cifar10"], **costs[text]} for text, row in nb201_table(table_dir).items()}
    space = nas.get_space("cell_nb201")
    strategy = make_strategy(load_group_file("strategy", name)[1], space, seed, budget=evaluations)
    strategy.objectives = parse_objectives({"cifar10": "max", cost: "min"})
    start = time.perf_counter()
    history = run_in_memory(strategy, TableEstimator(table, space=space, metric="cifar10"), evaluations)
    points = [[r.metrics["cifar10"], r.metrics[cost]] if r.state == "complete" else None for r in history]
    return {"strategy": name, "cost": cost, "seed": seed, "seconds": time.perf_counter() - start, "points": points}


def hypervolume_of(points: list[list[float]], reference: tuple[float, float]) -> float:
    from nas.core.pareto import hypervolume, minimised

    if not points:
        return 0.0
    return hypervolume(minimised(points, ["max", "min"]), minimised([list(reference)], ["max", "min"])[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--evaluations", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--costs", nargs="+", default=["params", "macs"], choices=sorted(REFERENCE))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/nb201_pareto"))
    args = parser.parse_args()
    from nas.contrib.nb201 import nb201_dir, nb201_table

    table_dir = nb201_dir()
    costs = cell_costs(table_dir, args.workers)
    accuracy = nb201_table(str(table_dir))
    true_hv = {c: hypervolume_of([[accuracy[t]["cifar10"], costs[t][c]] for t in costs], REFERENCE[c]) for c in args.costs}
    longest = max(args.evaluations)
    jobs = [(name, cost, seed, longest, str(table_dir)) for name in args.strategies for cost in args.costs for seed in range(args.seeds)]
    runs, start = [], time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(one_run, *job) for job in jobs]
        for i, future in enumerate(as_completed(futures), start=1):
            run = future.result()
            runs.append(run)
            done = [p for p in run["points"] if p is not None]
            ratio = hypervolume_of(done, REFERENCE[run["cost"]]) / true_hv[run["cost"]]
            print(f"[{i}/{len(jobs)}] {run['strategy']:<9} {run['cost']:<6} seed {run['seed']:<3} "
                  f"hypervolume {100 * ratio:.2f}% of the true front's ({run['seconds']:.1f} s)", flush=True)
    wall = time.perf_counter() - start
    lines = []
    summary: dict[str, Any] = {}
    for cost in args.costs:
        lines += [f"### NAS-Bench-201 CIFAR-10 accuracy vs {cost}: hypervolume as % of the true front's "
                  f"(reference point: accuracy {REFERENCE[cost][0]:g} %, {cost} {REFERENCE[cost][1]:g} M), mean ± std over {args.seeds} seeds", "",
                  "| strategy | " + " | ".join(f"after {n}" for n in args.evaluations) + " | seconds per run |",
                  "|---|" + "---:|" * (len(args.evaluations) + 1)]
        for name in args.strategies:
            mine = [r for r in runs if r["strategy"] == name and r["cost"] == cost]
            ratios = {n: [100 * hypervolume_of([p for p in r["points"][:n] if p is not None], REFERENCE[cost]) / true_hv[cost]
                          for r in mine] for n in args.evaluations}
            summary.setdefault(cost, {})[name] = {n: (float(np.mean(v)), float(np.std(v))) for n, v in ratios.items()}
            lines.append(f"| {name} | " + " | ".join(f"{np.mean(v):.2f} ± {np.std(v):.2f}" for v in ratios.values())
                         + f" | {np.mean([r['seconds'] for r in mine]):.2f} |")
        lines += ["", f"True front: {true_hv[cost]:.4g} (accuracy % x {cost} M) from all {len(costs):,} cells.", ""]
    lines.append(f"Whole benchmark: {wall:.0f} s wall time, {len(runs)} runs, {args.workers} worker processes.")
    text = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pareto.md").write_text(text + "\n")
    (args.out / "results.json").write_text(json.dumps({"true_hypervolume": true_hv, "reference": REFERENCE, "summary": summary,
                                                       "runs": runs}))
    _plot(runs, costs, accuracy, args)
    print("\n" + text + f"\n\nwritten: {args.out / 'pareto.md'}")


def _plot(runs: list[dict[str, Any]], costs: dict[str, dict[str, float]], accuracy: dict[str, dict[str, float]],
          args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nas.core.pareto import front, minimised

    for cost in args.costs:
        every = np.array([[accuracy[t]["cifar10"], costs[t][cost]] for t in costs])
        fig, ax = plt.subplots(figsize=(7, 5))
        ax.scatter(every[:, 1], every[:, 0], s=2, c="lightgrey", label="all 15,625 cells")
        true = every[front(minimised(every, ["max", "min"]))]
        true = true[np.argsort(true[:, 1])]
        ax.step(true[:, 1], true[:, 0], where="post", c="black", label="true front")
        for name in args.strategies:
            run = next(r for r in runs if r["strategy"] == name and r["cost"] == cost and r["seed"] == 0)
            found = np.array([p for p in run["points"] if p is not None])
            mine = found[front(minimised(found, ["max", "min"]))]
            mine = mine[np.argsort(mine[:, 1])]
            ax.step(mine[:, 1], mine[:, 0], where="post", label=f"{name} (seed 0, {len(run['points'])} evaluations)")
        ax.set_xlabel(f"{cost} (millions)")
        ax.set_ylabel("CIFAR-10 test accuracy (%)")
        ax.set_ylim(max(0.0, float(true[:, 0].min()) - 5), 95)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        fig.savefig(args.out / f"fronts_{cost}.png", dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    main()
