"""pruner=lce inside real searches: epochs and final test accuracy against the same search unpruned and with successive halving.

    .venv/bin/python experiments/lce_real_use.py [--trials 24] [--epochs 16] [--datasets digits mnist1d]
        [--strategies random evolution] [--out runs/lce_real_use]

For each dataset and strategy, five real searches of ``macro_chain`` (training estimator, one CPU
thread, seed 0): ``pruner=none``, ``successive_halving`` and ``lce`` with ``--trials`` trials, ``lce``
with ``--more`` times as many (the epochs it saves spent on new candidates), and ``lce`` accepting at
epoch 8 instead of its automatic choice. Rows already in ``results.json`` are kept (``--fresh``: all again). Epochs count every epoch
trained: the search's trials (pruned and accepted ones for what they ran) plus the final phase
(``final.retrain_top_k``, which ``lce`` sets to 1: its winner trained to the end). The accuracy is
the test accuracy of the model the search hands over: the final phase's retrained winner for
``lce``, the best trial for the others. Writes ``real_use.md`` and ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: (label, pruner, trials as a multiple of --trials (0: --more), overrides)
RUNS: tuple[tuple[str, str, int, list[str]], ...] = (
    ("none", "none", 1, []), ("successive_halving", "successive_halving", 1, []), ("lce", "lce", 1, []),
    ("lce, more trials", "lce", 0, []), ("lce, accept_at 8", "lce", 1, ["pruner.accept_at=8"]))


def one(dataset: str, strategy: str, label: str, pruner: str, trials: int, epochs: int, overrides: list[str],
        out: Path) -> dict[str, Any]:
    import shutil

    import nas

    run_dir = out / f"{dataset}_{strategy}_{label.replace(', ', '_').replace(' ', '_')}"
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    result = nas.search(space="macro_chain", strategy=strategy, dataset=dataset, trials=trials, epochs=epochs, pruner=pruner, seed=0,
                        out_dir=run_dir, progress=False, tensorboard=False, overrides=overrides)
    seconds = time.perf_counter() - start
    search_epochs = sum(int(t.metrics.get("epochs", len(t.curve))) for t in result.trials)
    final = result.final
    best = result.best
    if final:
        winner = max((r for r in final if r["final_score"] is not None), key=lambda r: r["final_score"])
        test, val, number = winner["test_accuracy"], winner["final_score"], winner["trial"]
    else:
        test, val, number = best.metrics.get("test_accuracy"), best.value, best.number
    states = [str(t.state) for t in result.trials]
    return {"dataset": dataset, "strategy": strategy, "pruner": label, "trials": trials, "epochs": epochs,
            "search_epochs": search_epochs, "final_epochs": epochs * len(final), "total_epochs": search_epochs + epochs * len(final),
            "complete": states.count("complete"), "pruned": states.count("pruned"),
            "accepted": sum(1 for t in result.trials if t.metrics.get("accepted_at_epoch")),
            "winner": number, "val_accuracy": val, "test_accuracy": test, "seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--more", type=int, default=4, help="trials of the last run, as a multiple of --trials")
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist1d"])
    parser.add_argument("--strategies", nargs="+", default=["random", "evolution"])
    parser.add_argument("--out", default=str(ROOT / "runs" / "lce_real_use"))
    parser.add_argument("--fresh", action="store_true", help="run every search again (default: keep the rows of results.json)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kept = [] if args.fresh or not (out / "results.json").is_file() else json.loads((out / "results.json").read_text())
    rows = []
    for dataset in args.datasets:
        for strategy in args.strategies:
            for label, pruner, factor, overrides in RUNS:
                trials = args.trials * (factor or args.more)
                key = (dataset, strategy, label, trials, args.epochs)
                row = next((r for r in kept if (r["dataset"], r["strategy"], r["pruner"], r["trials"], r["epochs"]) == key), None)
                row = row or one(dataset, strategy, label, pruner, trials, args.epochs, overrides, out)
                rows.append(row)
                print(f"{dataset:8s} {strategy:10s} {label:18s} {row['trials']:3d} trials  epochs {row['total_epochs']:4d} (search {row['search_epochs']}, "
                      f"final {row['final_epochs']})  test {row['test_accuracy']:.4f}  val {row['val_accuracy']:.4f}  "
                      f"{row['complete']} complete / {row['pruned']} pruned / {row['accepted']} accepted  {row['seconds']:.0f} s", flush=True)
                (out / "results.json").write_text(json.dumps(rows, indent=1))
    lines = [f"trials of {args.epochs} epochs, macro_chain, seed 0", "",
             "| dataset | strategy | pruner | trials | epochs (search + final) | of unpruned | test accuracy | val accuracy | seconds |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        base = next(r for r in rows if r["dataset"] == row["dataset"] and r["strategy"] == row["strategy"] and r["pruner"] == "none")
        lines.append(f"| {row['dataset']} | {row['strategy']} | {row['pruner']} | {row['trials']} | {row['total_epochs']} ({row['search_epochs']} + "
                     f"{row['final_epochs']}) | {row['total_epochs'] / base['total_epochs']:.2f} | {row['test_accuracy']:.4f} | "
                     f"{row['val_accuracy']:.4f} | {row['seconds']:.0f} |")
    text = "\n".join(lines) + "\n"
    (out / "real_use.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
