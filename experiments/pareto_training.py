"""Accuracy against measured CPU latency with real training, under a latency constraint.

    .venv/bin/python experiments/pareto_training.py [--datasets digits mnist1d] [--seeds 0 1] [--trials 30]
        [--epochs 9] [--bound 0.25] [--out runs/pareto_training]

For each dataset and seed, the same budget of trained candidates (``--trials``) of ``macro_chain``, each
candidate's latency measured before training (median of 10 timed forward passes of one input on one
thread), ``constraints={latency_ms: "<=BOUND"}``, objectives ``{val_accuracy: max, latency_ms: min}``:

- ``random``: random search, every candidate trained its full ``--epochs``;
- ``evolution``: our multi-objective evolution, every candidate trained fully;
- ``evolution+moasha``: the same with successive halving promoting by non-dominated rank.

Prints and writes ``pareto_training.md``: hypervolume (reference: validation accuracy 0.5 and the latency
bound), front size, epochs trained, seconds, and the candidates the constraint refused before training
with the seconds that saved (refused x the mean seconds of a fully trained candidate, against the
milliseconds their measurement took). Runs one after another (timings are not shared with anything).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

RUNS = {"random": ("random", "none"), "evolution": ("evolution", "none"), "evolution+moasha": ("evolution", "successive_halving")}


def one(dataset: str, name: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    import nas

    strategy, pruner = RUNS[name]
    out = args.out / f"{dataset}-{name}-{seed}"
    start = time.perf_counter()
    result = nas.search(space="macro_chain", strategy=strategy, dataset=dataset, trials=args.trials, epochs=args.epochs, seed=seed,
                        out_dir=out, progress=False, tensorboard=False, pruner=pruner,
                        objectives={"val_accuracy": "max", "latency_ms": "min"},
                        costs=[{"latency": {"warmup": 3, "repeats": 10, "threads": 1}}],
                        constraints={"latency_ms": f"<={args.bound}"}, reference=[0.5, args.bound],
                        overrides=["estimator.threads=1"])
    wall = time.perf_counter() - start
    trials = result.trials
    trained = [t for t in trials if not t.infeasible]
    full = [t for t in trained if t.state == "complete" and t.metrics.get("epochs") == args.epochs]
    refused = [t for t in trials if t.infeasible]
    mean_full = float(np.mean([t.metrics["seconds"] for t in full])) if full else float("nan")
    return {"dataset": dataset, "run": name, "seed": seed, "hypervolume": result.hypervolume(), "front": len(result.pareto),
            "epochs": int(sum(t.metrics.get("epochs", len(t.curve)) for t in trained)), "pruned": sum(t.state == "pruned" for t in trials),
            "seconds": wall, "refused": len(refused), "refusing_seconds": float(sum(t.metrics.get("cost_seconds", 0.0) for t in refused)),
            "saved_seconds": len(refused) * mean_full,
            "front_points": [[t.metrics["val_accuracy"], t.metrics["latency_ms"]] for t in result.pareto]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist1d"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--bound", type=float, default=0.25, help="latency_ms bound of the constraint")
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--out", type=Path, default=Path("runs/pareto_training"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    for dataset in args.datasets:
        for seed in args.seeds:
            for name in args.runs:
                row = one(dataset, name, seed, args)
                rows.append(row)
                print(f"{dataset:<8} {name:<17} seed {seed}: hypervolume {row['hypervolume']:.4f}, front {row['front']}, "
                      f"{row['epochs']} epochs ({row['pruned']} pruned), {row['refused']} refused before training, "
                      f"{row['seconds']:.0f} s", flush=True)
    lines = [f"### macro_chain, {args.trials} trained candidates, {args.epochs} epochs, latency_ms <= {args.bound} "
             f"(reference: val_accuracy 0.5, latency {args.bound} ms), mean over seeds {args.seeds}", "",
             "| dataset | run | hypervolume | front | epochs trained | seconds | refused before training | refusing took | training them would have taken |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for dataset in args.datasets:
        for name in args.runs:
            mine = [r for r in rows if r["dataset"] == dataset and r["run"] == name]
            mean = {k: float(np.mean([r[k] for r in mine])) for k in ("hypervolume", "front", "epochs", "seconds", "refused",
                                                                         "refusing_seconds", "saved_seconds")}
            lines.append(f"| {dataset} | {name} | {mean['hypervolume']:.4f} | {mean['front']:.1f} | {mean['epochs']:.0f} | "
                         f"{mean['seconds']:.0f} | {mean['refused']:.1f} | {mean['refusing_seconds']:.2f} s | {mean['saved_seconds']:.0f} s |")
    text = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pareto_training.md").write_text(text + "\n")
    import json

    (args.out / "results.json").write_text(json.dumps(rows))
    print("\n" + text)


if __name__ == "__main__":
    main()
