"""Can a cheap estimate be trusted on this task? A Hydra app; config in conf/fidelity_check.yaml.

    .venv/bin/python experiments/fidelity_check.py [dataset=mnist1d] [samples=30] [space=cell_nb201]

Trains the same sample of architectures at every declared fidelity (fewer epochs, a data fraction,
narrower networks, smaller inputs, or any mix), then asks of each fidelity: does it rank the
architectures as the reference does? Writes to its run directory (printed at the end):
- ``fidelity_check.md``: the table (Kendall tau and Spearman rho with bootstrap 95% intervals, seconds
  per architecture, cost relative to the reference) and the recommendation;
- ``results.json``: every architecture's score and seconds at every fidelity;
- ``tb/<fidelity>``: TensorBoard. ``rank/at_fidelity`` against the reference rank is the scatter a person
  wants to see (a trustworthy fidelity is the diagonal); ``agreement/*`` holds tau and rho; the table is
  under Text.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from scipy.stats import rankdata
from torch.utils.tensorboard import SummaryWriter

from nas._config import compose
from nas.contrib.fidelity import FidelityReport, check_fidelities


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

    print(f"Fidelity check: {cfg.samples} architectures of '{cfg.space}' on '{cfg.dataset}', "
          f"{len(fidelities)} fidelities, reference '{cfg.reference}' (base settings: epochs={base.get('epochs')})", flush=True)
    report = check_fidelities(space=str(cfg.space), dataset=str(cfg.dataset), fidelities=fidelities, reference=str(cfg.reference),
                              samples=int(cfg.samples), threshold=float(cfg.threshold), conservative=bool(cfg.conservative),
                              estimator=base, bootstrap=int(cfg.bootstrap), seed=cfg.seed, on_result=progress)
    wall = time.perf_counter() - start
    table = report.table()
    text = (f"# Fidelity check: {len(report.architectures)} architectures of `{cfg.space}` on `{cfg.dataset}`\n\n"
            f"Reference: `{cfg.reference}`; threshold: Kendall tau >= {cfg.threshold}"
            f"{' (lower end of the 95% interval)' if cfg.conservative else ''}; seed {cfg.seed}; wall time {wall:.0f} s.\n\n"
            f"{table}\n\n{report.verdict()}\n")
    print("\n" + text)
    (out / "fidelity_check.md").write_text(text)
    results = {"config": OmegaConf.to_container(cfg, resolve=True), "wall_seconds": wall, "recommended": report.recommended,
               "architectures": [a.key for a in report.architectures], "scores": report.scores, "seconds": report.seconds,
               "agreement": {k: vars(v) for k, v in report.agreement.items()}}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    write_tensorboard(report, out / "tb", table)
    print(f"Written to {out} (tensorboard --logdir {out / 'tb'})")


if __name__ == "__main__":
    main()
