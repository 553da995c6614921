"""Learning-curve extrapolation on 200 real NAS-Bench-201 curves (a Hydra app; config in conf/lce_eval.yaml).

    .venv/bin/python experiments/lce_eval.py [orderings=20] [ks=[10,20,50]] [lce.thresholds=[0.05,0.1]]

Part 1: from the first k epochs of each curve (CIFAR-10 validation accuracy, 200 epochs, cosine
schedule), predict the value at epoch 200; mean absolute error and Kendall tau against the true
finals, for the last value seen, a single power law, the ensemble, and the ensemble calibrated on
other curves (never the curve itself).
Part 2: early stopping. The 200 curves come in a random order, each trial revealed epoch by epoch
to a real Optuna study (``trial.report`` / ``should_prune``); the fraction of the 200 x 200 epochs
saved and the regret of the architecture finally chosen (the best completed trial), for Optuna's
median pruner, successive halving and our learning-curve pruner, over the same orderings.

Writes ``lce_eval.md`` (both tables and the verdict) and ``results.json`` (every run) to its run
directory, and prints the tables.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import optuna
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from scipy.stats import kendalltau

CURVES_FILE = "nb201_curves_200archs.csv"


def load_curves(path: str | None) -> np.ndarray:
    """The ``val_accs`` column: one row of 200 per-epoch accuracies (%) per architecture."""
    from nas.contrib.nb201 import nb201_dir

    with open(nb201_dir(path) / CURVES_FILE, newline="") as f:
        return np.array([json.loads(row["val_accs"]) for row in csv.DictReader(f)], dtype=float)


# ---- Part 1: how well is the final value predicted? ----------------------------------------------------------
def part1(curves: np.ndarray, cfg: DictConfig) -> tuple[str, dict[str, Any]]:
    from nas.contrib.curves import CurvePredictor, calibrate

    horizon, bounds, finals = int(cfg.horizon), tuple(cfg.bounds), curves[:, int(cfg.horizon) - 1]
    ensemble = CurvePredictor(bounds=bounds, cache_size=0, seed=cfg.seed)
    power = CurvePredictor(families=["pow3"], bounds=bounds, cache_size=0, seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n, n_ref = len(curves), int(cfg.calibration_references)
    rows: dict[str, dict[int, dict[str, float]]] = {}
    for k in cfg.ks:
        start = time.perf_counter()
        ens = [ensemble.predict(c[:k], horizon) for c in curves]
        ms = 1000 * (time.perf_counter() - start) / n
        pow3 = [power.predict(c[:k], horizon) for c in curves]
        # Calibration never sees the curve it corrects: each one is corrected on n_ref others drawn at random,
        # as a study with n_ref finished trials would be.
        refs = [rng.choice(np.delete(np.arange(n), i), size=min(n_ref, n - 1), replace=False) for i in range(n)]
        cal = {feature: [calibrate(ens[i], [(ens[j], finals[j]) for j in refs[i]], features=(feature,), seed=cfg.seed)
                         for i in range(n)] for feature in ("mean", "level")}
        methods = {
            "last value seen": (curves[:, k - 1], None),
            "power law (pow3, single fit)": (np.array([p.mean for p in pow3]), pow3),
            "ensemble (8 families, BIC weights)": (np.array([p.mean for p in ens]), ens),
            f"ensemble + calibration of the extrapolation ({n_ref} other curves)": (np.array([p.mean for p in cal["mean"]]), cal["mean"]),
            f"ensemble + calibration of the fitted level ({n_ref} other curves)": (np.array([p.mean for p in cal["level"]]), cal["level"]),
        }
        for name, (predicted, preds) in methods.items():
            coverage = (float(np.mean([p.quantile(0.05) <= t <= p.quantile(0.95) for p, t in zip(preds, finals)]))
                        if preds is not None else float("nan"))
            rows.setdefault(name, {})[int(k)] = {"mae": float(np.mean(np.abs(predicted - finals))),
                                                "tau": float(kendalltau(predicted, finals)[0]), "coverage90": coverage}
        rows.setdefault("_ms_per_ensemble_call", {})[int(k)] = {"ms": ms}
        print(f"part 1: k={k} done ({ms:.1f} ms per ensemble prediction)", flush=True)
    ks = [int(k) for k in cfg.ks]
    lines = [f"### Part 1: predicting the epoch-{horizon} validation accuracy (%) of {n} NAS-Bench-201 curves from the first k epochs",
             "", ("MAE (lower is better), Kendall tau with the true finals (higher is better), and the share of true finals inside "
                  "the predicted 5-95% interval (0.90 is calibrated)."), "",
             "| predictor | " + " | ".join(f"k={k}: MAE | tau | 90% cover" for k in ks) + " |",
             "|---|" + "---:|---:|---:|" * len(ks)]
    for name, per_k in rows.items():
        if name.startswith("_"):
            continue
        cells = []
        for k in ks:
            r = per_k[k]
            cover = "-" if np.isnan(r["coverage90"]) else f"{r['coverage90']:.2f}"
            cells.append(f"{r['mae']:.2f} | {r['tau']:.3f} | {cover}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    timing = ", ".join(f"k={k}: {rows['_ms_per_ensemble_call'][k]['ms']:.1f} ms" for k in ks)
    lines += ["", f"One ensemble prediction (8 bounded fits and 500 samples): {timing}.", ""]
    return "\n".join(lines), rows


# ---- Part 2: early stopping in a simulated search -------------------------------------------------------------
def simulate(curves: np.ndarray, order: np.ndarray, pruner: optuna.pruners.BasePruner) -> dict[str, float]:
    """Trials in ``order``, each reporting its curve epoch by epoch to an in-memory study until pruned."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    epochs_total = curves.shape[1]
    used, completed, chosen = 0, 0, None
    for arch in order:
        trial = study.ask()
        stopped = False
        for step in range(epochs_total):
            trial.report(float(curves[arch, step]), step)
            used += 1
            if step < epochs_total - 1 and trial.should_prune():
                stopped = True
                break
        if stopped:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        final = float(curves[arch, -1])
        study.tell(trial, final)
        completed += 1
        if chosen is None or final > curves[chosen, -1]:
            chosen = int(arch)
    best = float(curves[:, -1].max())
    return {"saved": 1.0 - used / curves.size, "regret": best - float(curves[chosen, -1]) if chosen is not None else best,
            "completed": completed}


def oracle(curves: np.ndarray, order: np.ndarray, warmup: int, min_points: int) -> dict[str, float]:
    """The rule "finish only what will beat the best completed trial" with perfect foresight, pruning at
    the earliest check: a bound on what any pruner of this kind can save."""
    finals = curves[:, -1]
    best, used, completed = -np.inf, 0, 0
    for n, arch in enumerate(order):
        if n < warmup or finals[arch] > best:
            used, completed, best = used + curves.shape[1], completed + 1, max(best, finals[arch])
        else:
            used += min_points
    return {"saved": 1.0 - used / curves.size, "regret": float(finals.max() - best), "completed": completed}


def make_pruner(kind: str, kwargs: dict[str, Any], predictor: Any) -> optuna.pruners.BasePruner:
    from nas.contrib.lce_pruner import LearningCurvePruner

    if kind == "median":
        return optuna.pruners.MedianPruner(**kwargs)
    if kind == "successive halving":
        return optuna.pruners.SuccessiveHalvingPruner(**kwargs)
    return LearningCurvePruner(**kwargs, predictor=predictor)


def run_orderings(curves: np.ndarray, seeds: list[int], settings: list[tuple[str, str, dict[str, Any]]], bounds: tuple[float, float],
                  seed: int, n_samples: int) -> list[tuple[list[dict[str, float]], float]]:
    """Every setting on the orderings ``seeds`` (one worker process): per setting, its runs and CPU seconds."""
    import torch

    from nas.contrib.curves import CurvePredictor

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # One predictor for every run of our pruner in this worker: a prefix is the same whatever the ordering or the
    # threshold, so its fit is cached. The calibrated pruner needs few samples (a probability to the percent).
    predictor = CurvePredictor(bounds=bounds, cache_size=10**6, n_samples=n_samples, seed=seed)
    out = []
    for kind, label, kwargs in settings:
        start = time.process_time()
        runs = [simulate(curves, np.random.default_rng(s).permutation(len(curves)), make_pruner(kind, kwargs, predictor)) for s in seeds]
        out.append((runs, time.process_time() - start))
        print(f"  worker (orderings {seeds[0]}, {seeds[1] if len(seeds) > 1 else ''}...): {kind}, {label} done "
              f"in {out[-1][1]:.0f} s", flush=True)
    return out


def part2(curves: np.ndarray, cfg: DictConfig) -> tuple[str, dict[str, Any]]:
    settings: list[tuple[str, str, dict[str, Any]]] = []
    for s in cfg.median:
        kw = OmegaConf.to_container(s)
        settings.append(("median", f"warmup {kw['n_warmup_steps']} epochs, startup {kw['n_startup_trials']} trials", kw))
    for s in cfg.successive_halving:
        kw = OmegaConf.to_container(s)
        settings.append(("successive halving", f"min_resource {kw['min_resource']}, reduction {kw['reduction_factor']}", kw))
    lce = cfg.lce
    for mp in lce.min_points:
        for th in lce.thresholds:
            for margin in lce.get("margins", [0.0]):
                settings.append(("learning curve (ours)", f"threshold {th}, min_points {mp}" + (f", margin {margin}" if margin else ""),
                                 {"threshold": float(th), "horizon": int(cfg.horizon), "min_points": int(mp), "interval": int(lce.interval),
                                  "warmup_trials": int(lce.warmup_trials), "margin": float(margin), "calibration": list(lce.calibration),
                                  "seed": cfg.seed}))
    seeds = list(range(int(cfg.orderings)))
    workers = max(1, min(int(cfg.workers), len(seeds)))
    chunks = [seeds[w::workers] for w in range(workers)]
    start = time.perf_counter()
    print(f"part 2: {len(settings)} settings x {len(seeds)} orderings on {workers} worker processes", flush=True)
    args = [(curves, chunk, settings, tuple(cfg.bounds), int(cfg.seed), int(cfg.n_samples)) for chunk in chunks]
    if workers == 1:
        parts = [run_orderings(*args[0])]
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(run_orderings, *zip(*args)))
    print(f"part 2: simulations done in {time.perf_counter() - start:.0f} s", flush=True)
    results = []
    for i, (kind, label, _) in enumerate(settings):
        runs = [run for part in parts for run in part[i][0]]
        results.append(_summary(kind, label, runs, sum(part[i][1] for part in parts)))
    orders = [np.random.default_rng(s).permutation(len(curves)) for s in seeds]
    for mp in lce.min_points:
        runs = [oracle(curves, order, int(lce.warmup_trials), int(mp)) for order in orders]
        results.append(_summary("oracle (perfect foresight)", f"our rule, warmup {lce.warmup_trials}, min_points {mp}", runs, 0.0))

    max_regret = float(cfg.max_regret)
    eligible = [r for r in results if r["regret_mean"] <= max_regret]
    ours = max((r for r in eligible if r["pruner"] == "learning curve (ours)"), key=lambda r: r["saved"], default=None)
    baselines = [r for r in eligible if r["pruner"] in ("median", "successive halving")]
    best_baseline = max(baselines, key=lambda r: r["saved"], default=None)
    ran_baselines = any(r["pruner"] in ("median", "successive halving") for r in results)
    if not ran_baselines:
        verdict = "NOT DECIDED: no baseline setting ran (median and successive_halving are empty in the config)."
    elif ours is None:
        verdict = f"NOT MET: no setting of our pruner reaches mean regret <= {max_regret}."
    elif best_baseline is None or ours["saved"] > best_baseline["saved"]:
        verdict = (f"MET: ours ({ours['setting']}) saves {100 * ours['saved']:.1f}% of epochs at mean regret {ours['regret_mean']:.3f}; "
                   + (f"the best baseline within the regret bound ({best_baseline['pruner']}, {best_baseline['setting']}) saves "
                      f"{100 * best_baseline['saved']:.1f}% at {best_baseline['regret_mean']:.3f}." if best_baseline else "no baseline is within it."))
    else:
        beaten = [b for b in baselines if ours["saved"] > b["saved"]]
        verdict = (f"NOT MET: ours at best ({ours['setting']}) saves {100 * ours['saved']:.1f}% at mean regret {ours['regret_mean']:.3f}, "
                   f"less than {best_baseline['pruner']} ({best_baseline['setting']}): {100 * best_baseline['saved']:.1f}% at "
                   f"{best_baseline['regret_mean']:.3f}. It beats {len(beaten)} of the {len(baselines)} baseline settings within the bound.")
    lines = [(f"### Part 2: early stopping over {len(seeds)} random orderings of the {len(curves)} curves "
              f"({curves.shape[1]} epochs each; real Optuna pruners in an in-memory study)"), "",
             ("Epochs saved: share of the 200 x 200 epochs never run. Regret: best final accuracy of all 200 minus the final "
              "accuracy of the architecture chosen (the best completed trial), in points."), "",
             "| pruner | setting | epochs saved | regret mean | regret max | trials completed | CPU s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['pruner']} | {r['setting']} | {100 * r['saved']:.1f}% | {r['regret_mean']:.3f} | {r['regret_max']:.3f} | "
                     f"{r['completed']:.1f} | {r['seconds']:.0f} |")
    lines += ["", f"Verdict (target: at mean regret <= {max_regret}, save more epochs than every baseline setting): {verdict}", ""]
    return "\n".join(lines), {"settings": results, "verdict": verdict}


def _summary(family: str, label: str, runs: list[dict[str, float]], seconds: float) -> dict[str, Any]:
    regrets = [r["regret"] for r in runs]
    return {"pruner": family, "setting": label, "saved": float(np.mean([r["saved"] for r in runs])),
            "regret_mean": float(np.mean(regrets)), "regret_max": float(np.max(regrets)),
            "completed": float(np.mean([r["completed"] for r in runs])), "seconds": seconds, "runs": runs}


def run(cfg: DictConfig, out: Path) -> str:
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    curves = load_curves(cfg.path)
    table1, rows1 = part1(curves, cfg)
    print("\n" + table1, flush=True)
    table2, rows2 = part2(curves, cfg)
    text = (table1 + "\n" + table2 + f"\nWhole evaluation: {time.perf_counter() - start:.0f} s wall time.\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / "lce_eval.md").write_text(text)
    (out / "results.json").write_text(json.dumps({"config": OmegaConf.to_container(cfg, resolve=True), "part1": rows1, "part2": rows2}))
    print("\n" + text)
    print(f"written: {out / 'lce_eval.md'}")
    return text


@hydra.main(version_base=None, config_path="conf", config_name="lce_eval")
def main(cfg: DictConfig) -> None:
    run(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
