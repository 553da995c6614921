"""The audit on real searches: digits and mnist1d (the top 3 against the baselines, and the seconds it takes),
a planted weak slice (does the audit find it?), and robustness across a Pareto front (does the ranking change?).

    .venv/bin/python experiments/audit_report.py [--trials 12] [--epochs 6] [--out runs/audit_report]

1. digits and mnist1d: a search (random strategy, ``--trials`` candidates of ``--epochs`` epochs), then
   ``nas.audit(result)`` with every section filled (a declared group, ``ink``: above or below the median ink;
   input features for partial dependence; the test order read as a stream for error autocorrelation): its
   seconds and each model's accuracy, macro F1, ECE, worst slice, and the ink group's accuracy gap.
2. A planted weak slice: digits as an npz file with a declared group (``g_train`` / ``g_test``: half the test
   examples, none of the training ones, "dark"), the images of one class (3) in the dark group darkened to a
   fifth with sensor noise. The audit must rank ``group x true class = dark / 3`` worst and show the group gap
   in its fairness table.
3. Robustness across a front: a search (twice the trials) with objectives ``{val_accuracy: max, params: min}``; the winner (best
   validation accuracy), a smaller and (when there is one) a larger front member, audited under FGSM and PGD:
   the order by robust accuracy at each epsilon against the order by clean accuracy.

Writes ``results.json`` and ``audit_report.md`` to ``--out``; each run's report is in its run directory.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import nas
from nas.model_audit.run import run_dataset

PLANTED_CLASS, DARKENED, NOISE, TRAIN_SHARE = 3, 0.2, 2.0, 0.0
#: Input features (flattened indices) for partial dependence: digits' centre pixels, mnist1d's signal positions.
FEATURES = {"digits": (27, 28, 35, 36), "mnist1d": (5, 20, 35)}


def searched(name: str, out: Path, trials: int, epochs: int, **kwargs: Any) -> Any:
    return nas.search(space="macro_chain", trials=trials, epochs=epochs, out_dir=out / name, progress=False, tensorboard=False,
                      seed=0, **kwargs)


def planted_npz(path: Path, seed: int = 0) -> Path:
    """digits with a group "dark" (``TRAIN_SHARE`` of the training examples, none by default; half the test
    examples: a population the training data does not represent), whose class-3 images are darkened to a fifth
    with sensor noise (std 2 of 16). (Darkening alone is no weakness: these networks see standardised inputs and
    are nearly scale-invariant; nor is a 5 % share of noisy dark 3s in training, which the networks learn.)"""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    rng = np.random.default_rng(seed)
    x_train, x_test, y_train, y_test = train_test_split(data.images.astype(np.float32), data.target, test_size=0.3,
                                                        random_state=seed, stratify=data.target)
    groups = []
    for x, y, share in ((x_train, y_train, TRAIN_SHARE), (x_test, y_test, 0.5)):
        group = np.where(rng.random(len(y)) < share, "dark", "normal")
        planted = (group == "dark") & (y == PLANTED_CLASS)  # low light: dark, and the sensor's noise shows
        x[planted] = np.clip(x[planted] * DARKENED + rng.normal(0.0, NOISE, x[planted].shape), 0.0, 16.0)
        groups.append(group)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, g_train=groups[0], g_test=groups[1])
    return path


def summary(report: Any) -> list[dict[str, Any]]:
    rows = []
    for m in report.models:
        ranked = [s for s in m["slices"] if s["size"] >= 10]
        rows.append({"model": m["name"], "kind": m["kind"], "accuracy": m["classification"]["accuracy"],
                     "macro_f1": m["classification"]["averages"]["macro"]["f1"], "ece": m["calibration"]["ece"],
                     "worst_slice": f"{ranked[0]['slice']} = {ranked[0]['value']} ({ranked[0]['accuracy']:.3f}, n={ranked[0]['size']})"
                     if ranked else None, "seconds": m["seconds"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("runs/audit_report"))
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    lines = ["# The audit on real searches", ""]

    for dataset in ("digits", "mnist1d"):
        result = searched(dataset, out, args.trials, args.epochs, dataset=dataset)
        started = time.perf_counter()
        x_test = run_dataset(result).x_test.numpy()
        mass = x_test.reshape(len(x_test), -1).sum(axis=1)
        ink = np.where(mass > np.median(mass), "heavy", "light")  # a declared group: how much ink (signal) an example has
        report = nas.audit(result, slices={"ink": ink}, features=list(FEATURES[dataset]), ordered=True, progress=None)
        seconds = time.perf_counter() - started
        sections = {k: all(bool(m.get(k)) for m in report.candidates)
                    for k in ("classification", "slices", "fairness", "calibration", "robustness", "sensitivity", "errors")}
        assert all(sections.values()), sections
        gap = report.candidates[0]["fairness"]["ink"]["largest_gap"]["difference"]
        results[dataset] = {"seconds": seconds, "sections": sections, "models": summary(report), "ink_gap": gap}
        lines += [f"## {dataset}: top 3 and baselines, audited in {seconds:.1f} s (every section filled; the best candidate's "
                  f"accuracy gap across `ink`: {gap:.3f})", "", "| model | kind | accuracy | macro F1 | ECE | worst slice |",
                  "|---|---|---:|---:|---:|---|"]
        lines += [f"| {r['model']} | {r['kind']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['ece']:.4f} | {r['worst_slice']} |"
                  for r in results[dataset]["models"]] + [""]
        print(f"{dataset}: audit {seconds:.1f} s; " + ", ".join(f"{r['model']} {r['accuracy']:.4f}" for r in results[dataset]["models"]))

    path = planted_npz(out / "planted_digits.npz")
    result = searched("planted", out, args.trials, args.epochs, overrides=["dataset=npz", f"dataset.path={path}"])
    report = nas.audit(result, slices=["group"], progress=None)
    best = report.candidates[0]
    worst = [s for s in best["slices"] if s["size"] >= 10][0]
    gap = best["fairness"]["group"]["largest_gap"]
    planted = next(s for s in best["slices"] if s["slice"] == "group x true class" and s["value"] == f"dark / {PLANTED_CLASS}")
    found = worst["slice"] == "group x true class" and worst["value"] == f"dark / {PLANTED_CLASS}"
    results["planted"] = {"worst_slice": worst, "planted_slice": planted, "found": found, "group_gap": gap,
                          "by_group": best["fairness"]["group"]["settings"][0]["by_group"]}
    lines += [f"## Planted weak slice (digits, class {PLANTED_CLASS} darkened to {DARKENED:.0%} in group 'dark')", "",
              f"Worst slice of {best['name']}: `{worst['slice']} = {worst['value']}`, accuracy {worst['accuracy']:.3f} "
              f"(n={worst['size']}, gap {worst['gap']:+.3f}); the planted slice {'is' if found else 'is NOT'} ranked worst. "
              f"Fairness across `group`: accuracy gap {gap['difference']:.3f}, ratio {gap['ratio']:.3f}.", ""]
    print(f"planted: worst slice {worst['slice']} = {worst['value']} ({worst['accuracy']:.3f}, n={worst['size']}); found={found}; "
          f"group accuracy gap {gap['difference']:.3f}")

    result = searched("front", out, 2 * args.trials, args.epochs, objectives={"val_accuracy": "max", "params": "min"})
    front = result.pareto  # best first by accuracy
    winner = front[0]
    smaller = front[min(len(front) - 1, max(1, len(front) // 2))] if len(front) > 1 else None
    larger = max((t for t in result.trials if t.completed and t.metrics["params"] > winner.metrics["params"]),
                 key=lambda t: t.value, default=None)
    chosen = [t for t in (winner, smaller, larger) if t is not None]
    report = nas.audit(result, trials=[t.number for t in chosen], attacks=["fgsm", "pgd"], epsilons=[0.03, 0.1, 0.3], progress=None)
    clean = [c["name"] for c in sorted(report.candidates, key=lambda c: -c["classification"]["accuracy"])]
    rankings = {attack: [(s, order) for s, order in report.robustness_ranking(attack)] for attack in ("fgsm", "pgd")}
    changed = any(order != clean for attack in rankings for s, order in rankings[attack] if s > 0)
    results["front"] = {"members": [{"trial": t.number, "params": t.metrics["params"], "val_accuracy": t.value} for t in chosen],
                        "clean_order": clean, "rankings": rankings, "ranking_changes": changed,
                        "robust": {c["name"]: c["robustness"] for c in report.candidates}}
    lines += ["## Robust accuracy across the front", "", "| trial | params | val acc | test acc | " +
              " | ".join(f"{a} {s:g}" for a in ("fgsm", "pgd") for s in (0.03, 0.1, 0.3)) + " |", "|---:|---:|---:|---:|" + "---:|" * 6]
    for t, c in zip(chosen, report.candidates):
        cells = [f"{r['accuracy']:.3f}" for a in ("fgsm", "pgd") for r in c["robustness"][a][1:]]
        lines.append(f"| {t.number} | {t.metrics['params']:,} | {t.value:.4f} | {c['classification']['accuracy']:.4f} | " + " | ".join(cells) + " |")
    lines += ["", f"Order by clean accuracy: {', '.join(clean)}. " + "; ".join(
        f"{a} {s:g}: {', '.join(order)}" for a in rankings for s, order in rankings[a] if s > 0)
        + f". The ranking {'changes' if changed else 'does not change'} under attack.", ""]
    print(f"front: clean {clean}; " + "; ".join(f"{a} {s:g}: {order}" for a in rankings for s, order in rankings[a] if s > 0))
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "audit_report.md").write_text("\n".join(lines))
    print(f"written: {out / 'audit_report.md'}")


if __name__ == "__main__":
    main()
