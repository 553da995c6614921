"""Generate a set of real learning curves by training architectures of one of our spaces.

    .venv/bin/python experiments/make_curves.py [--space macro_chain] [--dataset mnist1d]
        [--trials 240] [--epochs 40] [--seed 0] [--workers 2] [--out experiments/curves/macro_chain_mnist1d_40ep.csv]

Random architectures of ``--space`` are each trained ``--epochs`` epochs (the training estimator's
defaults: Adam, cosine learning-rate schedule, one CPU thread) by a real ``nas.search`` with no
pruner, so every curve runs to its end. The search's run directory (``<out>.run/``) keeps every
finished trial: an interrupted generation rerun with the same arguments resumes where it stopped.
The CSV has one row per completed trial: ``number``, ``arch`` (JSON), ``params``, ``seconds``
(training time), ``final`` (validation accuracy at the last epoch) and ``val_accs`` (a JSON list,
one validation accuracy per epoch, in [0, 1]). ``experiments/lce_scheduler.py`` reads it.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="macro_chain")
    parser.add_argument("--dataset", default="mnist1d")
    parser.add_argument("--trials", type=int, default=240)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine (one CPU thread each)")
    parser.add_argument("--out", default=None, help="CSV to write (default experiments/curves/<space>_<dataset>_<epochs>ep.csv)")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.epochs < 2:
        parser.error(f"--trials >= 1 and --epochs >= 2 must hold, but got --trials {args.trials} --epochs {args.epochs}")
    out = Path(args.out) if args.out else ROOT / "experiments" / "curves" / f"{args.space}_{args.dataset}_{args.epochs}ep.csv"
    out.parent.mkdir(parents=True, exist_ok=True)

    import nas

    result = nas.search(space=args.space, strategy="random", dataset=args.dataset, trials=args.trials, epochs=args.epochs,
                        seed=args.seed, out_dir=out.with_suffix(".run"), pruner="none", tensorboard=False,
                        overrides=["estimator.schedule=cosine", f"workers={args.workers}"])
    rows = write_curves(result.trials, out, args.epochs)
    print(f"{rows} curves of {args.epochs} epochs -> {out}")


def write_curves(trials: list, out: Path, epochs: int) -> int:
    """One CSV row per completed trial whose curve has all ``epochs`` points; returns how many."""
    rows = 0
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["number", "arch", "params", "seconds", "final", "val_accs"])
        writer.writeheader()
        for t in trials:
            if not t.completed or len(t.curve) != epochs:
                continue
            writer.writerow({"number": t.number, "arch": t.arch.to_json(),
                             "params": t.metrics.get("params", ""), "seconds": round(float(t.cost or 0.0), 3),
                             "final": t.curve[-1], "val_accs": json.dumps([round(v, 6) for v in t.curve])})
            rows += 1
    return rows


if __name__ == "__main__":
    main()
