"""Can a cheap estimate be trusted on this task? A Hydra app; config in conf/fidelity_check.yaml.

    .venv/bin/python experiments/fidelity_check.py [dataset=mnist1d] [samples=30] [space=cell_nb201]
    .venv/bin/python experiments/fidelity_check.py dataset=npz dataset.path=/data/mine.npz   # overrides as for nas-search

Trains the same sample of architectures at every declared fidelity (fewer epochs, a data fraction,
narrower networks, smaller inputs, or any mix), then asks of each fidelity: does it rank the
architectures as the reference does? Writes to its run directory (printed at the end):
- ``fidelity_check.md``: the table (Kendall tau and Spearman rho with bootstrap 95% intervals, seconds
  per architecture, cost relative to the reference) and the recommendation;
- ``results.json``: every architecture's score and seconds at every fidelity;
- ``tb/<fidelity>``: TensorBoard. ``rank/at_fidelity`` against the reference rank is the scatter a person
  wants to see (a trustworthy fidelity is the diagonal); ``agreement/*`` holds tau and rho; the table is
  under Text.
The Markdown and JSON are rewritten after every architecture (marked partial until the last), so an
interrupted check keeps what it measured. No fidelity is recommended from fewer than 10 architectures.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import sys

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from scipy.stats import rankdata
from torch.utils.tensorboard import SummaryWriter

from nas._config import compose, config_dir, group_file_overrides, instantiate, register_resolvers
from nas.contrib.fidelity import FidelityReport, check_fidelities
from nas.datasets import as_splits


def write_tensorboard(report: FidelityReport, root: Path, table: str) -> None:
    # Rank 1 = the best at the reference. Plotting each fidelity's rank against it turns TensorBoard's
    # line chart into a rank scatter: a fidelity that can be trusted draws the diagonal.
    ref = np.asarray(report.scores[report.reference], dtype=float)
    order = np.argsort(-np.nan_to_num(ref, nan=-np.inf), kind="stable")
    for name, scores in report.scores.items():
        writer = SummaryWriter(str(root / name))
        ranks = rankdata(-np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf), method="average")
        for ref_rank, index in enumerate(order, 1):
            writer.add_scalar("rank/at_fidelity", float(ranks[index]), ref_rank)
            writer.add_scalar("score/at_fidelity", float(scores[index]), ref_rank)
        agreement = report.agreement[name]
        writer.add_scalar("agreement/kendall_tau", agreement.tau, 0)
        writer.add_scalar("agreement/spearman_rho", agreement.rho, 0)
        writer.add_scalar("cost/seconds_per_architecture", report.cost[name], 0)
        writer.add_text("fidelity_check", table, 0)
        writer.close()


@hydra.main(config_path="conf", config_name="fidelity_check", version_base="1.3")
def main(cfg: DictConfig) -> None:
    out = Path(HydraConfig.get().runtime.output_dir)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    base = {**OmegaConf.to_container(compose([]).estimator, resolve=True), **OmegaConf.to_container(cfg.estimator, resolve=True)}
    if cfg.threads:
        base["threads"] = int(cfg.threads)  # the estimator sets torch's thread count itself
    fidelities = OmegaConf.to_container(cfg.fidelities, resolve=True)
    start = time.perf_counter()
    total = int(cfg.samples) * len(fidelities)
    done = 0

    def progress(name: str, index: int, arch, score: float, seconds: float) -> None:
        nonlocal done
        done += 1
        elapsed = time.perf_counter() - start
        print(f"[{done:4d}/{total}] arch {index:3d} {name:<14} val acc {score:.4f} in {seconds:5.1f}s "
              f"(elapsed {elapsed:5.0f}s, about {elapsed / done * (total - done):5.0f}s left)", flush=True)

    data = as_splits(instantiate(cfg.dataset, kind=f"dataset '{cfg.dataset.get('_target_', '?')}'"))
    print(f"Fidelity check: {cfg.samples} architectures of '{cfg.space}' on '{data.name}', "
          f"{len(fidelities)} fidelities, reference '{cfg.reference}' (base settings: epochs={base.get('epochs')})", flush=True)

    def write(report: FidelityReport, final: bool) -> str:
        wall = time.perf_counter() - start
        state = "" if final else f" (partial: {len(report.architectures)} of {cfg.samples} architectures so far; rewritten after each)"
        text = (f"# Fidelity check: {len(report.architectures)} architectures of `{cfg.space}` on `{data.name}`{state}\n\n"
                f"Reference: `{cfg.reference}`; threshold: Kendall tau >= {cfg.threshold}"
                f"{' (lower end of the 95% interval)' if cfg.conservative else ''}; seed {cfg.seed}; wall time {wall:.0f} s.\n\n"
                f"{report.table()}\n\n{report.verdict()}\n")
        results = {"config": OmegaConf.to_container(cfg, resolve=True), "wall_seconds": wall, "final": final,
                   "recommended": report.recommended, "architectures": [a.key for a in report.architectures], "scores": report.scores,
                   "seconds": report.seconds, "agreement": {k: vars(v) for k, v in report.agreement.items()}}
        for name, content in (("fidelity_check.md", text), ("results.json", json.dumps(results, indent=2))):
            tmp = out / f".{name}.tmp"
            tmp.write_text(content)
            tmp.replace(out / name)  # a reader (or a kill) never sees half a file
        return text

    report = check_fidelities(space=str(cfg.space), dataset=data, fidelities=fidelities, reference=str(cfg.reference),
                              samples=int(cfg.samples), threshold=float(cfg.threshold), conservative=bool(cfg.conservative),
                              estimator=base, bootstrap=int(cfg.bootstrap), seed=cfg.seed, on_result=progress,
                              on_architecture=lambda partial: write(partial, final=False))
    text = write(report, final=True)
    print("\n" + text)
    write_tensorboard(report, out / "tb", report.table())
    print(f"Written to {out} (tensorboard --logdir {out / 'tb'})")


def run() -> None:
    """The app with nas-search's dataset group on Hydra's search path (``dataset=npz dataset.path=...``) and a
    group given as a YAML file (``dataset=my.yaml``) registered, as ``nas-search`` does."""
    register_resolvers()
    sys.argv[1:] = group_file_overrides(sys.argv[1:])
    if not any(a.startswith("hydra.searchpath=") for a in sys.argv[1:]):
        sys.argv.append(f"hydra.searchpath=[file://{config_dir()}]")
    main()


if __name__ == "__main__":
    run()
