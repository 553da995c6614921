"""Weight inheritance through network morphisms, measured. A Hydra app; config in conf/morphism_eval.yaml.

    .venv/bin/python experiments/morphism_eval.py [datasets=[digits]] [search.seeds=[0]]

Part 1, per dataset: parents are trained from scratch; for a few of their function-preserving morphs,
the child is trained (a) from scratch, as long as its parent was, and (b) from the parent's weights
for ``inherited_epochs`` on a fresh cosine cycle. Validation accuracy is measured ``points_per_epoch``
times per epoch while training. Reported: the epochs (fractional) after which each first reaches the
parent's final validation accuracy, and their ratio (target: inherited <= 25% of scratch). The child
starts at the parent's accuracy (the morphism preserves the function); the count starts with its
first measured point, so the warm restart's early dip counts against it.
Part 2, per dataset and seed: regularized evolution with ``inherit_weights`` against the same search
without it, and (``search.half_budget``) the inheriting search given as many trials as fit in half
the from-scratch search's epochs. Reported: best validation and test accuracy, and the epochs trained
in all (target: same accuracy within noise for at most half the epochs).
Part 3: a 100-trial inheriting search, and what its weight store keeps on disk under the retention rule.
Writes ``morphism_eval.md``, ``results.json`` and TensorBoard runs (learning curves of each child from
scratch and inherited, with the parent's accuracy as a line; best accuracy against epochs spent).
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter

import nas
from nas._config import compose, instantiate
from nas.estimators.base import ParentWeights, Report, never_stop


def standard_error(accuracy: float, n: int) -> float:
    """Binomial standard error of an accuracy measured on ``n`` examples."""
    return math.sqrt(max(accuracy * (1 - accuracy), 1 / n) / n)


def first_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    """The first point (epochs trained, fractional) of ``curve`` whose validation accuracy is at least ``target``."""
    return next((epochs for epochs, acc in curve if acc >= target), None)


class WatchedTraining(nas.TrainingEstimator):
    """The training estimator, also measuring validation accuracy ``points_per_epoch`` times per epoch,
    so that "epochs to the parent's accuracy" is not rounded up to whole epochs. Evaluating does not
    change the training: same batches, same updates."""

    def __init__(self, *, points_per_epoch: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.points_per_epoch = points_per_epoch
        self.curve: list[tuple[float, float]] = []

    def evaluate(self, arch: nas.Architecture, report: Report, parent: ParentWeights | None = None) -> nas.Evaluation:
        self.curve = []
        return super().evaluate(arch, report, parent=parent)

    def _after_step(self, model: torch.nn.Module, epochs_done: float) -> None:
        point = math.floor(epochs_done * self.points_per_epoch + 1e-9) / self.points_per_epoch
        if point > 0 and (not self.curve or point > self.curve[-1][0]):
            self.curve.append((point, self.accuracy(model, self._tensors["x_val"], self._tensors["y_val"])))
            model.train()


def reached(epochs: float | None, budget: int) -> str:
    return f"{epochs:g}" if epochs is not None else f"> {budget}"


def train(estimator: WatchedTraining, arch: nas.Architecture, parent: ParentWeights | None = None) -> tuple[nas.Evaluation, list[tuple[float, float]]]:
    evaluation = estimator.evaluate(arch, never_stop, parent=parent)
    return evaluation, list(estimator.curve)


def children_part(cfg: DictConfig, dataset: str, base: dict[str, Any], tb: Path) -> list[dict[str, Any]]:
    """Part 1 on one dataset: epochs to the parent's accuracy, from scratch and inherited."""
    space = nas.get_space(str(cfg.space))
    data = instantiate(compose([f"dataset={dataset}"]).dataset, kind=f"dataset '{dataset}'")
    estimator = WatchedTraining(space=space, dataset=data, points_per_epoch=int(cfg.children.points_per_epoch),
                                **{**base, "epochs": int(cfg.epochs), "inherited_epochs": int(cfg.inherited_epochs), "inherited_lr": cfg.children.inherited_lr})
    rng = np.random.default_rng(int(cfg.children.seed))
    rows = []
    for p in range(int(cfg.children.parents)):
        sample = space.sample(rng)
        while not space.morphs(sample):  # a parent must have somewhere to grow
            sample = space.sample(rng)
        parent_arch = space.architecture(sample)
        parent_eval, _ = train(estimator, parent_arch)
        target = parent_eval.score
        state = {k: v.detach().cpu() for k, v in parent_eval.model.state_dict().items()}
        by_kind = defaultdict(list)
        for morph in space.morphs(sample):
            by_kind[morph.kind].append(morph)
        kinds = list(by_kind)
        rng.shuffle(kinds)
        picked = [by_kind[k][int(rng.integers(len(by_kind[k])))] for k in kinds[:int(cfg.children.morphs_per_parent)]]
        for morph in picked:
            child = space.architecture(morph.child)
            scratch_eval, scratch = train(estimator, child)
            inherited_eval, inherited = train(estimator, child, ParentWeights(number=p, sample=dict(parent_arch.sample), state=state))
            row = {"dataset": dataset, "parent": space.format(parent_arch.sample), "morph": str(morph), "parent_accuracy": target,
                   "scratch_epochs": first_reach(scratch, target), "inherited_epochs": first_reach(inherited, target),
                   "scratch_final": scratch_eval.score, "inherited_final": inherited_eval.score,
                   "preservation_error": inherited_eval.metrics["preservation_error"], "scratch_curve": scratch, "inherited_curve": inherited}
            # from scratch and never reaching the parent within its epochs: it needs more than `epochs`, so inherited / epochs
            # is an upper bound on the ratio
            denominator = row["scratch_epochs"] or int(cfg.epochs)
            row["ratio"] = row["inherited_epochs"] / denominator if row["inherited_epochs"] else math.inf
            rows.append(row)
            print(f"  {dataset} parent {p} ({target:.4f}) {str(morph):<22} scratch reaches it after {reached(row['scratch_epochs'], cfg.epochs)} epochs, "
                  f"inherited after {reached(row['inherited_epochs'], cfg.inherited_epochs)} (error {row['preservation_error']:.1e})", flush=True)
            for name, curve in (("scratch", scratch), ("inherited", inherited)):
                writer = SummaryWriter(str(tb / "children" / dataset / f"parent{p}_{morph.kind}_{morph.where}" / name))
                for point, acc in curve:  # TensorBoard steps are integers: the step is the point's number
                    step = round(point * int(cfg.children.points_per_epoch))
                    writer.add_scalar("val_accuracy", acc, step)
                    writer.add_scalar("parent_accuracy", target, step)
                writer.close()
    return rows


VARIANTS = {  # label: (inherit_weights, use the configured morph_mutation, trials from half_budget_trials rather than search.trials)
    "inherited": (True, True, False),
    "inherited, half budget": (True, True, True),  # the epochs inheritance saves spent on more trials
    "scratch": (False, True, False),          # the same strategy, every child trained from scratch
    "scratch, plain": (False, False, False),  # plain evolution (one-dimension mutations only), from scratch
}
INHERITED = ("inherited", "inherited, half budget")


def half_budget_trials(cfg: DictConfig) -> int:
    """As many trials as fit in half the from-scratch search's epochs: the first population trains
    from scratch, every later child for ``inherited_epochs`` from its parent. A prediction, not a cap: a
    child whose parent's weights are gone trains the full epochs (the epochs column says what was spent)."""
    population, epochs = int(cfg.search.population_size), int(cfg.epochs)
    half = int(cfg.search.trials) * epochs / 2
    return population + max(0, math.floor((half - population * epochs) / int(cfg.inherited_epochs)))


def search_part(cfg: DictConfig, dataset: str, out: Path, tb: Path) -> list[dict[str, Any]]:
    """Part 2 on one dataset: the same evolution with and without inherited weights, per seed."""
    rows = []
    data = instantiate(compose([f"dataset={dataset}"]).dataset, kind=f"dataset '{dataset}'")
    sizes = {"n_val": len(data.y_val), "n_test": len(data.y_test)}  # what one example is worth, for "within noise"
    skipped = {"scratch, plain": not cfg.search.plain_baseline, "inherited, half budget": not cfg.search.half_budget}
    variants = [v for v in VARIANTS if not skipped.get(v)]
    for seed in cfg.search.seeds:
        for variant in variants:
            inherit, morphing, half_budget = VARIANTS[variant]
            trials = half_budget_trials(cfg) if half_budget else int(cfg.search.trials)
            run_dir = out / "search" / f"{dataset}_seed{seed}_{variant.replace(', ', '_')}"
            start = time.perf_counter()
            result = nas.search(space=str(cfg.space), strategy="evolution", dataset=dataset, trials=trials,
                                epochs=int(cfg.epochs), seed=int(seed), out_dir=run_dir, progress=False, tensorboard=False,
                                overrides=[f"strategy.population_size={cfg.search.population_size}",
                                           f"strategy.tournament_size={cfg.search.tournament_size}", f"strategy.inherit_weights={inherit}",
                                           f"strategy.morph_mutation={cfg.search.morph_mutation if morphing else 0.0}",
                                           f"estimator.inherited_epochs={cfg.inherited_epochs}",
                                           f"estimator.inherited_lr={cfg.search.inherited_lr if cfg.search.inherited_lr else 'null'}", *base_overrides(cfg)])
            done = [r for r in result.trials if r.state == "complete"]
            best = result.best
            epochs = [int(r.metrics.get("epochs", 0)) for r in result.trials]
            rows.append({"dataset": dataset, "seed": int(seed), "variant": variant, "best_val": best.value,
                         "best_test": best.metrics.get("test_accuracy"), "epochs": sum(epochs), "trials": trials, "completed": len(done),
                         "seconds": time.perf_counter() - start,
                         "preserving_children": sum(r.inheritance is not None and r.inheritance.function_preserving for r in result.trials),
                         "children": sum(r.parent is not None for r in result.trials), **sizes})
            writer = SummaryWriter(str(tb / "search" / dataset / f"seed{seed}" / variant.replace(", ", "_")))
            spent, best_so_far = 0, 0.0
            for r, e in zip(result.trials, epochs):
                spent += e
                best_so_far = max(best_so_far, r.value or 0.0)
                writer.add_scalar("best_val_accuracy_vs_epochs", best_so_far, spent)
            writer.close()
            r = rows[-1]
            print(f"  {dataset} seed {seed} {variant}: best val {r['best_val']:.4f} test {r['best_test']:.4f}, "
                  f"{r['epochs']} epochs, {r['seconds']:.0f} s", flush=True)
    return rows


def paired_difference(inherited: list[dict[str, Any]], scratch: list[dict[str, Any]], key: str) -> tuple[float, float]:
    """Mean over seeds of inherited minus scratch, and its standard error (seed-to-seed spread)."""
    by_seed = {r["seed"]: r[key] for r in scratch}
    diffs = [r[key] - by_seed[r["seed"]] for r in inherited if r["seed"] in by_seed]
    spread = float(np.std(diffs, ddof=1)) / math.sqrt(len(diffs)) if len(diffs) > 1 else math.nan
    return float(np.mean(diffs)), spread


def base_overrides(cfg: DictConfig) -> list[str]:
    extra = [f"estimator.{k}={v}" for k, v in OmegaConf.to_container(cfg.estimator, resolve=True).items()]
    return extra + ([f"estimator.threads={cfg.threads}"] if cfg.threads else [])


def retention_part(cfg: DictConfig, out: Path) -> dict[str, Any]:
    """Part 3: a 100-trial inheriting search on digits: how much its weight store keeps."""
    run_dir = out / "retention"
    result = nas.search(space=str(cfg.space), strategy="evolution", dataset="digits", trials=int(cfg.retention.trials),
                        epochs=int(cfg.retention.epochs), seed=0, out_dir=run_dir, progress=False, tensorboard=False,
                        overrides=[f"strategy.population_size={cfg.search.population_size}", "strategy.inherit_weights=true",
                                   f"strategy.tournament_size={cfg.search.tournament_size}",
                                   f"estimator.inherited_epochs={cfg.retention.epochs}", f"weights.keep_top={cfg.retention.keep_top}",
                                   *base_overrides(cfg)])
    kept = [p for p in (run_dir / "artifacts").iterdir() if p.is_file()]
    # what keeping every completed trial would take: 4 bytes per float32 parameter and buffer, as saved
    every = sum(4 * int(r.metrics.get("params", 0)) for r in result.trials if r.state == "complete")
    return {"trials": len(result.trials), "files_kept": len(kept), "bytes_kept": sum(p.stat().st_size for p in kept),
            "bytes_if_all_kept_params_only": every, "bound": int(cfg.retention.keep_top) + int(cfg.search.population_size)}


def report(children: list[dict[str, Any]], searches: list[dict[str, Any]], retention: dict[str, Any] | None, cfg: DictConfig) -> str:
    lines = [f"# Weight inheritance through network morphisms: `{cfg.space}`", ""]
    if children:
        lines += [f"## Part 1: epochs to reach the parent's accuracy (scratch: {cfg.epochs} epochs; inherited: {cfg.inherited_epochs} "
                  f"epochs, fresh cosine cycle from lr {cfg.children.inherited_lr or 'as scratch'})", "",
                  "| dataset | morph | parent acc | scratch epochs | inherited epochs | ratio | preservation error |", "|---|---|---:|---:|---:|---:|---:|"]
        for r in children:
            ratio = f"{100 * r['ratio']:.0f}%" if math.isfinite(r["ratio"]) else "not reached"
            if math.isfinite(r["ratio"]) and r["scratch_epochs"] is None:
                ratio = "< " + ratio
            lines.append(f"| {r['dataset']} | {r['morph']} | {r['parent_accuracy']:.4f} | {reached(r['scratch_epochs'], cfg.epochs)} | "
                         f"{reached(r['inherited_epochs'], cfg.inherited_epochs)} | {ratio} | {r['preservation_error']:.1e} |")
        lines.append("")
        for dataset in cfg.datasets:
            ratios = [r["ratio"] for r in children if r["dataset"] == dataset]
            if ratios:
                within = sum(x <= 0.25 for x in ratios)
                lines.append(f"- {dataset}: median ratio {100 * float(np.median(ratios)):.0f}%; {within} of {len(ratios)} children "
                             f"reach the parent's accuracy in at most 25% of the scratch epochs.")
        lines.append("")
    if searches:
        lines += [f"## Part 2: evolution with and without inherited weights, same seeds (morph_mutation {cfg.search.morph_mutation}, inherited restart from lr {cfg.search.inherited_lr or 'as scratch'})", "",
                  "| dataset | seed | run | trials | best val | its test | epochs trained | children (preserving) | seconds |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
        for r in searches:
            lines.append(f"| {r['dataset']} | {r['seed']} | {r['variant']} | {r['trials']} | {r['best_val']:.4f} | {r['best_test']:.4f} | "
                         f"{r['epochs']} | {r['children']} ({r['preserving_children']}) | {r['seconds']:.0f} |")
        lines.append("")
        for dataset in cfg.datasets:
            runs = {v: [r for r in searches if r["dataset"] == dataset and r["variant"] == v] for v in VARIANTS}
            a = runs["scratch"]
            if not a:
                continue
            means = "; ".join(f"{v} {np.mean([r['best_val'] for r in rs]):.4f} / {np.mean([r['best_test'] for r in rs]):.4f} "
                              f"({sum(r['epochs'] for r in rs)} epochs)" for v, rs in runs.items() if rs)
            lines.append(f"- {dataset}, mean best val / its test over {len(a)} seeds: {means}. Sampling noise of a single accuracy: a "
                         f"binomial standard error near {np.mean([r['best_test'] for r in a]):.3f} is "
                         f"{standard_error(np.mean([r['best_val'] for r in a]), a[0]['n_val']):.4f} on the {a[0]['n_val']} validation and "
                         f"{standard_error(np.mean([r['best_test'] for r in a]), a[0]['n_test']):.4f} on the {a[0]['n_test']} test examples.")
            for variant in INHERITED:
                b = runs[variant]
                if b:
                    dv, sv = paired_difference(b, a, "best_val")
                    dt, st = paired_difference(b, a, "best_test")
                    lines.append(f"  - {variant} ({b[0]['trials']} trials) minus scratch: {dv:+.4f} ± {sv:.4f} val, {dt:+.4f} ± {st:.4f} test "
                                 f"(± one standard error over seeds), for {100 * sum(r['epochs'] for r in b) / sum(r['epochs'] for r in a):.0f}% "
                                 "of the epochs.")
        lines.append("")
    if retention:
        lines += ["## Part 3: disk kept by a 100-trial run with inheritance", "",
                  f"{retention['trials']} trials: {retention['files_kept']} weight files kept ({retention['bytes_kept'] / 1e6:.2f} MB; the rule's bound "
                  f"is keep_top + population = {retention['bound']}), against {retention['bytes_if_all_kept_params_only'] / 1e6:.2f} MB "
                  "of parameters if every completed trial were kept.", ""]
    return "\n".join(lines)


@hydra.main(config_path="conf", config_name="morphism_eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    out = Path(HydraConfig.get().runtime.output_dir)
    tb = out / "tb"
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    base = {**OmegaConf.to_container(compose([]).estimator, resolve=True), **OmegaConf.to_container(cfg.estimator, resolve=True)}
    base = {k: v for k, v in base.items() if not k.startswith("_")}
    if cfg.threads:
        base["threads"] = int(cfg.threads)
    start = time.perf_counter()
    children, searches = [], []
    for dataset in cfg.datasets:
        print(f"part 1, {dataset}: children from scratch and inherited", flush=True)
        children += children_part(cfg, str(dataset), base, tb)
        print(f"part 2, {dataset}: evolution with and without inherited weights", flush=True)
        searches += search_part(cfg, str(dataset), out, tb)
    retention = retention_part(cfg, out) if cfg.retention.trials else None
    text = report(children, searches, retention, cfg) + f"\nWall time {time.perf_counter() - start:.0f} s.\n"
    print("\n" + text)
    (out / "morphism_eval.md").write_text(text)
    (out / "results.json").write_text(json.dumps({"config": OmegaConf.to_container(cfg, resolve=True), "children": children,
                                                  "searches": searches, "retention": retention}, indent=2))
    print(f"Written to {out} (tensorboard --logdir {tb})")


if __name__ == "__main__":
    main()
