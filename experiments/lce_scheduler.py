"""Schedulers side by side on real learning curves: Pareto fronts of (fraction of epochs used, mean regret).

    .venv/bin/python experiments/lce_scheduler.py [--curves nb201|PATH.csv] [--runs 50] [--pool 100] [--out DIR]

Each run draws ``--pool`` of the set's curves in a random order (the candidates a search would meet)
and every method schedules them, epoch by epoch; the regret is the best final value of the pool
minus the final value of the architecture the method chose (points of accuracy, %). Epochs used
count every epoch trained, plus, for a method that did not train its choice to the end, the epochs
that finish it: from where it stopped for i-Epoch and PASHA (as their papers do), all of them again
for our scheduler's accepted trials (``nas.search``'s final phase retrains its top k from scratch). Methods, each
swept over its main knob:

- ours: ``nas.contrib.lce_scheduler.LearningCurveScheduler`` (``pruner=lce``), the shipped class,
  run as a pruner of a real Optuna study (accepted trials told complete with the value it gives);
- Optuna's MedianPruner, SuccessiveHalvingPruner, HyperbandPruner (sequential, a real study);
- ASHA: SuccessiveHalvingPruner with several workers simulated (each epoch one time unit, the
  workers' reports interleaved in time);
- i-Epoch (Egele et al. 2024): every candidate trained i epochs, the best by that value to the end;
- PASHA (Bohdal et al. 2023), our implementation of its rule: ASHA whose top rung starts at the second
  and grows when the rankings at the two highest rungs disagree beyond a noise level (``eps`` times
  the median epoch-to-epoch change), the best at the highest rung finished.

Writes ``fronts.md`` (every point, each method's front, and the checks of the targets),
``results.json``, ``fronts.png`` and a TensorBoard event file (the plot and one scalar series per
method) to ``--out`` (default ``runs/lce_scheduler/<set>``), and prints the tables. Also times the
scheduler's check: per report on a study of 200 trials with 200 epochs each.
"""

from __future__ import annotations

import argparse
import csv
import json
import heapq
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
optuna.logging.set_verbosity(optuna.logging.ERROR)

#: (curves, the run's order of candidates, each curve's seconds per epoch) -> (epochs used, the chosen curve)
Run = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[int, int]]
Method = tuple[str, str, Run]


# ---- curve sets -----------------------------------------------------------------------------------------------
_OP_COST = {"nor_conv_3x3": 9.0, "nor_conv_1x1": 1.0, "avg_pool_3x3": 0.5, "skip_connect": 0.1, "none": 0.0}


def load_set(name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(curves in %, one row per architecture; seconds per epoch of each; a label). ``nb201``: the 200
    NAS-Bench-201 curves, whose file has no times: an epoch's time is taken as 1 + the cell's convolution
    weights per channel pair (9 per 3x3, 1 per 1x1, 0.5 per pooling), a proxy. Else a CSV written by
    ``experiments/make_curves.py`` (values in [0, 1], scaled to %; its measured seconds)."""
    if name == "nb201":
        from nas.contrib.nb201 import nb201_dir

        with open(nb201_dir(None) / "nb201_curves_200archs.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        cost = [1.0 + sum(_OP_COST[edge.split("~")[0]] for edge in r["arch_str"].replace("+", "").split("|") if edge) for r in rows]
        return np.array([json.loads(r["val_accs"]) for r in rows], dtype=float), np.array(cost), "nb201"
    path = Path(name)
    if not path.is_file():
        raise SystemExit(f"--curves must be 'nb201' or a CSV of make_curves.py, but {name!r} is not a file")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    curves = [json.loads(r["val_accs"]) for r in rows]
    lengths = {len(c) for c in curves}
    if len(lengths) != 1:
        raise SystemExit(f"{path}: every curve must have the same number of epochs, but got lengths {sorted(lengths)}")
    seconds = np.array([float(r["seconds"]) / len(c) for r, c in zip(rows, curves)])
    return 100.0 * np.array(curves, dtype=float), seconds, path.stem


# ---- methods ---------------------------------------------------------------------------------------------------
def optuna_method(make: Callable[[int], optuna.pruners.BasePruner], workers: int = 1, final_k: int = 1) -> Run:
    """A method that runs ``make(horizon)`` as the pruner of a real in-memory study, ``workers`` trials in flight,
    each epoch of a trial taking its architecture's epoch time (the reports of the workers interleave in time).
    The choice: the best trial by the value told; with ``final_k`` > 1 (``final.retrain_top_k``) the top
    ``final_k`` are each finished (an accepted one retrained from scratch) and the best by its final value chosen."""

    def run(curves: np.ndarray, order: np.ndarray, seconds: np.ndarray) -> tuple[int, int]:
        horizon = curves.shape[1]
        pruner = make(horizon)
        study = optuna.create_study(study_name="simulated", direction="maximize", pruner=pruner,  # Hyperband's brackets hash the name
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        queue, used, clock = [int(i) for i in order], 0, 0.0
        flight: list[tuple[float, int, Any, int, int]] = []  # (time of its next report, tiebreak, trial, curve index, epoch)
        done: dict[int, tuple[float, int]] = {}  # curve index -> (value told, epochs it ran)
        serial = 0

        def start(now: float) -> None:
            nonlocal serial
            index = queue.pop(0)
            serial += 1
            heapq.heappush(flight, (now + seconds[index], serial, study.ask(), index, 0))

        while queue and len(flight) < workers:
            start(0.0)
        while flight:
            clock, _, trial, index, epoch = heapq.heappop(flight)
            trial.report(float(curves[index, epoch]), epoch)
            epoch += 1
            used += 1
            value: float | None = None
            if epoch == horizon:
                value = float(curves[index, -1])
            elif trial.should_prune():
                accepted = getattr(pruner, "accepted", lambda n: None)(trial.number)
                if accepted is None:
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    value = float(accepted)
            else:
                serial += 1
                heapq.heappush(flight, (clock + seconds[index], serial, trial, index, epoch))
                continue
            if value is not None:
                study.tell(trial, value)
                done[index] = (value, epoch)
            if queue:
                start(clock)
        rank = {i: k for k, i in enumerate(order)}
        top = sorted(done, key=lambda i: (-done[i][0], rank[i]))[:final_k]
        chosen = max(top, key=lambda i: (curves[i, -1], -rank[i]))
        # a trial accepted early is retrained from scratch by the final phase (as nas.search does): all its epochs again
        return used + sum(horizon if done[i][1] < horizon else 0 for i in top), chosen

    return run


def i_epoch(i: int) -> Run:
    def run(curves: np.ndarray, order: np.ndarray, seconds: np.ndarray) -> tuple[int, int]:
        chosen = int(order[int(np.argmax(curves[order, i - 1]))])
        return len(order) * i + curves.shape[1] - i, chosen

    return run


def pasha(eps: float, min_resource: int = 1, eta: int = 3) -> Run:
    """PASHA's rule, sequential: ASHA up to a top rung that starts at the second and grows by one rung when the
    trials at the top rung are ranked differently at the rung below (pairs closer than the noise level ignored)."""

    def run(curves: np.ndarray, order: np.ndarray, seconds: np.ndarray) -> tuple[int, int]:
        horizon = curves.shape[1]
        rungs = [min_resource]
        while rungs[-1] * eta < horizon:
            rungs.append(rungs[-1] * eta)
        top, used = min(1, len(rungs) - 1), 0
        reached: dict[int, list[int]] = {k: [] for k in range(len(rungs))}
        noise = float(np.median(np.abs(np.diff(curves[order], axis=1)))) * eps
        for index in order:
            index = int(index)
            epochs = 0
            for k, r in enumerate(rungs):
                used += r - epochs
                epochs = r
                reached[k].append(index)
                if k >= top:
                    break
                values = sorted((curves[j, r - 1] for j in reached[k]), reverse=True)
                if curves[index, r - 1] < values[max(1, len(values) // eta) - 1]:
                    break
            if top + 1 < len(rungs) and len(reached[top]) >= 2 and _unstable(curves, reached[top], rungs[top - 1], rungs[top], noise):
                top += 1
        best_rung = max(k for k in reached if reached[k])
        chosen = max(reached[best_rung], key=lambda j: curves[j, rungs[best_rung] - 1])
        return used + horizon - rungs[best_rung], chosen

    return run


def _unstable(curves: np.ndarray, trials: list[int], low: int, high: int, noise: float) -> bool:
    a, b = curves[trials, low - 1], curves[trials, high - 1]
    for i in range(len(trials)):
        for j in range(i + 1, len(trials)):
            if (a[i] - a[j]) * (b[i] - b[j]) < 0 and abs(b[i] - b[j]) > noise:
                return True
    return False


def methods(horizon: int) -> list[Method]:
    from nas.contrib.lce_scheduler import LearningCurveScheduler

    out: list[Method] = []
    for eta, accepts in ((2, (2, 4, 8, 16, 32, 64)), (3, (3, 9, 27, 81)), (4, (4, 16, 64))):
        for accept in accepts:
            if accept < horizon:
                out.append(("ours (lce)", f"eta {eta}, accept_at {accept}",
                            optuna_method(lambda h, e=eta, a=accept: LearningCurveScheduler(reduction_factor=e, accept_at=a, horizon=h))))
    for r, eta in ((1, 3), (3, 3)):
        out.append(("ours (lce)", f"min_resource {r}, eta {eta}, no acceptance",
                    optuna_method(lambda h, r=r, e=eta: LearningCurveScheduler(min_resource=r, reduction_factor=e, accept_at=None, horizon=h))))
    for eta, accept, k in ((2, 4, 2), (2, 8, 2), (2, 16, 2), (2, 32, 2), (2, 32, 3), (3, 9, 2), (3, 27, 2), (3, 27, 3), (4, 4, 2),
                           (4, 16, 2), (4, 64, 2)):
        if accept < horizon:
            out.append(("ours (lce)", f"eta {eta}, accept_at {accept}, final top {k}",
                        optuna_method(lambda h, e=eta, a=accept: LearningCurveScheduler(reduction_factor=e, accept_at=a, horizon=h),
                                      final_k=k)))
    out.append(("ours (lce), 4 workers", "eta 2, accept_at 32",
                optuna_method(lambda h: LearningCurveScheduler(reduction_factor=2, accept_at=32, horizon=h), workers=4)))
    for score in ("last", "trend"):
        out.append((f"ours, score={score} (ablation)", "eta 2, accept_at 16",
                    optuna_method(lambda h, s=score: LearningCurveScheduler(reduction_factor=2, accept_at=16, score=s, horizon=h))))
    for warmup in (0, 1, 4, 9):
        out.append(("median", f"warmup {warmup}", optuna_method(lambda h, w=warmup: optuna.pruners.MedianPruner(n_startup_trials=5,
                                                                                                               n_warmup_steps=w))))
    for r, eta in ((1, 2), (1, 3), (1, 4), (3, 3), (10, 2)):
        out.append(("successive halving", f"min_resource {r}, eta {eta}",
                    optuna_method(lambda h, r=r, e=eta: optuna.pruners.SuccessiveHalvingPruner(min_resource=r, reduction_factor=e))))
    for r, eta in ((1, 3), (1, 2), (3, 3)):
        out.append(("hyperband", f"min_resource {r}, eta {eta}",
                    optuna_method(lambda h, r=r, e=eta: optuna.pruners.HyperbandPruner(min_resource=r, max_resource=h, reduction_factor=e))))
    for workers, r, eta in ((4, 1, 3), (4, 1, 2), (4, 3, 3), (8, 1, 3)):
        out.append((f"ASHA, {workers} workers", f"min_resource {r}, eta {eta}",
                    optuna_method(lambda h, r=r, e=eta: optuna.pruners.SuccessiveHalvingPruner(min_resource=r, reduction_factor=e),
                                  workers=workers)))
    for i in (1, 2, 4, 12):
        out.append(("i-Epoch", f"i {i}", i_epoch(i)))
    for eps in (0.0, 1.0, 2.0, 4.0):
        out.append(("PASHA", f"eps {eps:g}x noise", pasha(eps)))
    return out


# ---- fronts ---------------------------------------------------------------------------------------------------------
def dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["fraction"] <= b["fraction"] and a["regret"] <= b["regret"] and (a["fraction"] < b["fraction"] or a["regret"] < b["regret"])


def front(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((p for p in points if not any(dominates(q, p) for q in points)), key=lambda p: p["fraction"])


def run(curves: np.ndarray, seconds: np.ndarray, label: str, runs: int, pool: int, seed: int) -> dict[str, Any]:
    n, horizon = curves.shape
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(n)[:pool] for _ in range(runs)]
    points = []
    for family, setting, method in methods(horizon):
        start = time.perf_counter()
        fractions, regrets = [], []
        for order in orders:
            used, chosen = method(curves, order, seconds)
            fractions.append(used / (len(order) * horizon))
            regrets.append(float(curves[order, -1].max() - curves[chosen, -1]))
        point = {"method": family, "setting": setting, "fraction": float(np.mean(fractions)), "regret": float(np.mean(regrets)),
                 "regret_se": float(np.std(regrets) / math.sqrt(len(regrets))), "max_regret": float(np.max(regrets)),
                 "seconds": time.perf_counter() - start}
        points.append(point)
        print(f"  {family:28s} {setting:26s} epochs {100 * point['fraction']:6.2f}%  regret {point['regret']:.3f} "
              f"± {point['regret_se']:.3f}  ({point['seconds']:.1f} s)", flush=True)
    return {"set": label, "architectures": n, "epochs": horizon, "runs": runs, "pool": pool, "seed": seed, "points": points,
            "targets": targets(points, horizon)}


def default_setting(horizon: int) -> str:
    """The label of ``pruner=lce`` at its defaults (chosen on the NB201 curves) for ``horizon``-epoch trials."""
    from nas._final import AUTO_TOP_K
    from nas.contrib.lce_scheduler import LearningCurveScheduler

    return f"eta 2, accept_at {LearningCurveScheduler().acceptance(horizon)}, final top {AUTO_TOP_K}"


def targets(points: list[dict[str, Any]], horizon: int) -> dict[str, Any]:
    ours = front([p for p in points if p["method"] == "ours (lce)"])
    default = next((p for p in points if p["method"] == "ours (lce)" and p["setting"] == default_setting(horizon)), None)
    out: dict[str, Any] = {"our_front": [f"{p['setting']}" for p in ours], "default": default}
    for family in sorted({p["method"] for p in points if not p["method"].startswith("ours")}):
        theirs = front([p for p in points if p["method"] == family])
        out[family] = {"our points dominated": sum(any(dominates(q, p) for q in theirs) for p in ours), "of": len(ours),
                       "our front dominated": all(any(dominates(q, p) for q in theirs) for p in ours),
                       "default dominated": default is not None and any(dominates(q, default) for q in theirs),
                       "their points we dominate": sum(any(dominates(p, q) for p in ours) for q in theirs), "their front": len(theirs)}
    sh = front([p for p in points if p["method"] == "successive halving"])
    half = []
    for q in sh:  # at the regret successive halving reaches, the fewest epochs we need
        ok = [p for p in ours if p["regret"] <= q["regret"]]
        half.append({"sh": q["setting"], "sh_fraction": q["fraction"], "sh_regret": q["regret"],
                     "ours_fraction": min((p["fraction"] for p in ok), default=None)})
    out["at successive halving's regret"] = half
    return out


# ---- per-report cost --------------------------------------------------------------------------------------------------
def time_checks(curves: np.ndarray, threshold: float | None = None) -> dict[str, float]:
    """Milliseconds per report of our scheduler (no acceptance, so trials report all their epochs): a study of 200
    trials, each reporting every epoch of a 200-epoch curve (rungs up to 128); the mean, the 99th percentile and the
    slowest report. ``threshold``: with the extrapolation stop on (it fits curves at the rungs past the first)."""
    from nas.contrib.lce_scheduler import LearningCurveScheduler

    horizon = curves.shape[1]
    pruner = LearningCurveScheduler(reduction_factor=2, accept_at=None, horizon=horizon, threshold=threshold, seed=0)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    times: list[float] = []
    for index in range(len(curves)):
        trial = study.ask()
        stopped = False
        for epoch in range(horizon):
            trial.report(float(curves[index, epoch]), epoch)
            start = time.perf_counter()
            stopped = trial.should_prune()
            times.append(time.perf_counter() - start)
            if stopped:
                break
        if stopped:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, float(curves[index, -1]))
    return {"reports": len(times), "mean_ms": 1000 * float(np.mean(times)), "max_ms": 1000 * float(np.max(times)),
            "p99_ms": 1000 * float(np.quantile(times, 0.99)), "over_5ms": sum(t > 0.005 for t in times),
            "slowest_at": int(np.argmax(times))}


# ---- outputs ------------------------------------------------------------------------------------------------------------
def markdown(result: dict[str, Any]) -> str:
    lines = [f"## {result['set']}: {result['architectures']} curves of {result['epochs']} epochs; {result['runs']} runs of "
             f"{result['pool']} candidates in random order", "",
             "| method | setting | epochs used | mean regret | ± s.e. | max regret | on its front |", "|---|---|---:|---:|---:|---:|:-:|"]
    families = {p["method"] for p in result["points"]}
    on_front = {id(p) for f in families for p in front([q for q in result["points"] if q["method"] == f])}
    for p in result["points"]:
        lines.append(f"| {p['method']} | {p['setting']} | {100 * p['fraction']:.2f}% | {p['regret']:.3f} | {p['regret_se']:.3f} | "
                     f"{p['max_regret']:.3f} | {'*' if id(p) in on_front else ''} |")
    t = result["targets"]
    lines += ["", "Our front against each baseline's front (a point dominates when it uses no more epochs at no more regret, "
              "one of them less; a front dominates ours when every point of ours is dominated by one of it):", "",
              "| baseline | our points it dominates | our whole front dominated | our default dominated | its points we dominate |",
              "|---|---:|:-:|:-:|---:|"]
    for family, v in t.items():
        if isinstance(v, dict) and "of" in v:
            lines.append(f"| {family} | {v['our points dominated']} of {v['of']} | {'yes' if v['our front dominated'] else 'no'} | "
                         f"{'yes' if v['default dominated'] else 'no'} | {v['their points we dominate']} of {v['their front']} |")
    d = t.get("default")
    if d is not None:
        lines += ["", f"`pruner=lce` at its defaults ({d['setting']}; chosen on the nb201 curves): {100 * d['fraction']:.2f}% of the "
                  f"epochs at mean regret {d['regret']:.3f}."]
    lines += ["", "At the regret successive halving reaches, the fewest epochs our front needs:", "",
              "| successive halving | its epochs | its regret | ours | ratio |", "|---|---:|---:|---:|---:|"]
    for h in t["at successive halving's regret"]:
        ours = h["ours_fraction"]
        lines.append(f"| {h['sh']} | {100 * h['sh_fraction']:.2f}% | {h['sh_regret']:.3f} | "
                     + (f"{100 * ours:.2f}% | {ours / h['sh_fraction']:.2f} |" if ours is not None else "not reached | |"))
    for key, what in (("check_ms", "the scheduler"), ("check_threshold_ms", "the scheduler with threshold 0.05 (curve fits)")):
        if key in result:
            c = result[key]
            lines += ["", f"Per-report cost of {what} ({c['reports']} reports, 200 trials of 200 epochs): mean "
                      f"{c['mean_ms']:.3f} ms, 99th percentile {c['p99_ms']:.3f} ms, slowest {c['max_ms']:.3f} ms "
                      f"(report {c['slowest_at']}), {c['over_5ms']} over 5 ms."]
    return "\n".join(lines) + "\n"


def plot(results: list[dict[str, Any]], path: Path) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(7 * len(results), 5), squeeze=False)
    for ax, result in zip(axes[0], results):
        families = list(dict.fromkeys(p["method"] for p in result["points"]))
        for family in families:
            pts = [p for p in result["points"] if p["method"] == family]
            f = front(pts)
            style = dict(lw=2.5, color="black", zorder=5) if family == "ours (lce)" else dict(lw=1, alpha=0.8)
            ax.plot([100 * p["fraction"] for p in f], [p["regret"] for p in f], marker="o", label=family, **style)
        ax.set_xscale("log")
        ax.set_xlabel("epochs used (% of every candidate trained to the end)")
        ax.set_ylabel("mean regret (accuracy points)")
        ax.set_title(f"{result['set']}: {result['runs']} runs of {result['pool']} candidates")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return fig


def tensorboard(results: list[dict[str, Any]], fig: Any, out: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tensorboard"))
    writer.add_figure("fronts", fig)
    for result in results:
        for family in dict.fromkeys(p["method"] for p in result["points"]):
            for step, p in enumerate(front([q for q in result["points"] if q["method"] == family])):
                tag = f"{result['set']}/{family.replace(' ', '_').replace(',', '')}"
                writer.add_scalar(f"{tag}/regret", p["regret"], step)
                writer.add_scalar(f"{tag}/epochs_percent", 100 * p["fraction"], step)
    writer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--curves", nargs="+", default=["nb201"], help="nb201 and/or CSVs of make_curves.py")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--pool", type=int, default=100, help="candidates per run (drawn from the set)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    results = []
    for name in args.curves:
        curves, seconds, label = load_set(name)
        if not 2 <= args.pool <= len(curves):
            parser.error(f"--pool must be between 2 and the set's {len(curves)} curves, but got {args.pool}")
        print(f"{label}: {curves.shape[0]} curves of {curves.shape[1]} epochs, {args.runs} runs of {args.pool}", flush=True)
        result = run(curves, seconds, label, args.runs, args.pool, args.seed)
        if label == "nb201":
            result["check_ms"] = time_checks(curves)
            result["check_threshold_ms"] = time_checks(curves, threshold=0.05)
        results.append(result)
    out = Path(args.out) if args.out else ROOT / "runs" / "lce_scheduler" / "+".join(r["set"] for r in results)
    out.mkdir(parents=True, exist_ok=True)
    text = "".join(markdown(r) + "\n" for r in results)
    (out / "fronts.md").write_text(text)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    fig = plot(results, out / "fronts.png")
    tensorboard(results, fig, out)
    print(text)
    print(f"-> {out}/fronts.md, fronts.png, results.json, tensorboard/")


if __name__ == "__main__":
    main()
