"""How well do zero-cost proxies rank architectures? (a Hydra app; config in conf/zero_cost_report.yaml)

    .venv/bin/python experiments/zero_cost_report.py [architectures=40] [space=cell_nb201] [datasets.mnist1d.epochs=20]

The same ``architectures`` distinct architectures, sampled (seeded) from ``space``, are on every
dataset (digits and mnist1d by default) both
- trained with the project's training estimator (``configs/estimator/train.yaml`` plus the
  overrides in ``training`` and the dataset's epoch budget): validation accuracy is the truth, and
- scored by every zero-cost proxy with the zero-cost estimator (``configs/estimator/zero_cost.yaml``
  plus ``zero_cost``; ``batches: 3`` averages the data-dependent proxies over three minibatches).

Writes to its run directory (printed at the end):
- ``report.md``: per dataset, proxy | Kendall tau vs trained validation accuracy with a bootstrap 95%
  interval | Spearman rho | validation accuracy of the proxy's top pick | median ms per architecture;
- ``results.json``: the config, every architecture with its accuracies, proxy values and timings.
Proxy times are measured in the worker that also trains, next to another worker training: they are
the times of a loaded machine, like a search's.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

#: Per worker process: dataset name -> (training estimator, zero-cost estimator), built on first use.
_ESTIMATORS: dict[str, tuple[Any, Any]] = {}


def estimators(cfg: dict[str, Any], dataset: str) -> tuple[Any, Any]:
    """The two estimators for ``dataset``, from the project's configs with this report's overrides."""
    if dataset not in _ESTIMATORS:
        import nas
        from nas._config import instantiate, load_group_file

        space = nas.get_space(cfg["space"])
        data = instantiate(load_group_file("dataset", dataset)[1], kind=f"dataset '{dataset}'")
        train_node = OmegaConf.merge(load_group_file("estimator", "train")[1], cfg["training"], cfg["datasets"][dataset] or {})
        zero_node = OmegaConf.merge(load_group_file("estimator", "zero_cost")[1], cfg["zero_cost"])
        made = [instantiate(node, kind="estimator", space=space, dataset=data, seed=cfg["seed"]) for node in (train_node, zero_node)]
        _ESTIMATORS[dataset] = (made[0](), made[1]())
    return _ESTIMATORS[dataset]


def one_architecture(cfg: dict[str, Any], dataset: str, index: int, sample: dict[str, Any]) -> dict[str, Any]:
    """Proxies, then training, of one architecture on one dataset."""
    import torch

    torch.set_num_threads(int(cfg["threads"]))
    import nas
    from nas.estimators.base import never_stop

    train, zero_cost = estimators(cfg, dataset)
    arch = nas.get_space(cfg["space"]).architecture(sample)

    proxies = zero_cost.evaluate(arch, never_stop).metrics
    trained = train.evaluate(arch, never_stop).metrics
    return {"dataset": dataset, "index": index, "key": arch.key, "val_accuracy": trained["val_accuracy"],
            "test_accuracy": trained["test_accuracy"], "train_seconds": trained["seconds"], "epochs": trained["epochs"],
            "proxies": {name: proxies[name] for name in zero_cost.proxies},
            "proxy_seconds": {name: proxies[f"{name}_seconds"] for name in zero_cost.proxies},
            "errors": {name: proxies[f"{name}_error"] for name in zero_cost.proxies if f"{name}_error" in proxies}}


def sample_architectures(space_name: str, count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` architectures with distinct canonical keys, drawn uniformly (seeded), as flat samples."""
    import nas
    from nas.contrib.fidelity import sample_architectures as distinct

    return [dict(arch.sample) for arch in distinct(nas.get_space(space_name), count, seed=seed)]


# ---- statistics ----------------------------------------------------------------------------------
def rank_agreement(values: np.ndarray, truth: np.ndarray, *, bootstrap: int, seed: int) -> dict[str, Any]:
    """Kendall tau-b with a percentile bootstrap 95% interval and Spearman rho: the fidelity check's
    statistics (``nas.contrib.fidelity.rank_agreement``), so proxies and fidelities are judged alike."""
    from nas.contrib.fidelity import rank_agreement as agreement

    a = agreement(values, truth, bootstrap=bootstrap, seed=seed)
    return {"n": a.pairs, "tau": a.tau, "tau_low": a.tau_interval[0], "tau_high": a.tau_interval[1], "rho": a.rho}


def summarise(rows: list[dict[str, Any]], cfg: DictConfig, wall: float) -> tuple[str, dict[str, Any]]:
    names = list(rows[0]["proxies"])
    lines = [f"# Zero-cost proxies vs trained accuracy: space `{cfg.space}`, {cfg.architectures} architectures, seed {cfg.seed}", "",
             (f"Proxies: {cfg.zero_cost.get('batch_size', 64)} examples per minibatch, data-dependent ones averaged over "
              f"{cfg.zero_cost.get('batches', 1)} minibatches (times are per architecture, all minibatches included). "
              f"Kendall tau-b with a {cfg.bootstrap}-resample percentile bootstrap 95% interval."), ""]
    summary: dict[str, Any] = {}
    for dataset in cfg.datasets:
        mine = sorted((r for r in rows if r["dataset"] == dataset), key=lambda r: r["index"])
        truth = np.array([r["val_accuracy"] for r in mine])
        train_ms = 1000 * float(np.median([r["train_seconds"] for r in mine]))
        best = float(truth.max())
        lines += [(f"## {dataset}: {len(mine)} architectures trained {mine[0]['epochs']} epochs, validation accuracy "
                   f"{truth.min():.3f} to {best:.3f} (median {np.median(truth):.3f}); median training {train_ms / 1000:.1f} s "
                   f"per architecture"), "",
                  "| proxy | Kendall tau [95% CI] | Spearman rho | val acc of top pick | median ms per architecture | n |",
                  "|---|---:|---:|---:|---:|---:|"]
        per_proxy = {}
        for name in names:
            values = np.array([r["proxies"][name] for r in mine], dtype=float)
            stats = rank_agreement(values, truth, bootstrap=int(cfg.bootstrap), seed=int(cfg.seed))
            finite = np.where(np.isfinite(values), values, -np.inf)
            stats["top_pick_accuracy"] = float(truth[int(np.argmax(finite))])
            stats["median_ms"] = 1000 * float(np.median([r["proxy_seconds"][name] for r in mine]))
            stats["failed"] = sum(name in r["errors"] for r in mine)
            per_proxy[name] = stats
            lines.append(f"| {name} | {stats['tau']:+.3f} [{stats['tau_low']:+.2f}, {stats['tau_high']:+.2f}] | {stats['rho']:+.3f} | "
                         f"{stats['top_pick_accuracy']:.3f} | {stats['median_ms']:.1f} | {stats['n']} |")
        leader = max(per_proxy, key=lambda n: per_proxy[n]["tau"] if math.isfinite(per_proxy[n]["tau"]) else -math.inf)
        lines += ["", (f"Best rank agreement: `{leader}` (tau {per_proxy[leader]['tau']:+.3f}); best trained accuracy {best:.3f}; "
                       f"training costs {train_ms / max(per_proxy[leader]['median_ms'], 1e-9):.0f}x the time of `{leader}`.")]
        failed = {n: s["failed"] for n, s in per_proxy.items() if s["failed"]}
        if failed:
            lines.append(f"Proxies without a finite value on some architectures (left out of their rows): {failed}.")
        lines.append("")
        summary[dataset] = {"proxies": per_proxy, "median_train_seconds": train_ms / 1000, "best_val_accuracy": best}
    lines.append(f"Whole report: {wall:.0f} s wall time, {len(rows)} trained architectures, {cfg.workers} worker processes "
                 f"of {cfg.threads} thread(s).")
    return "\n".join(lines), summary


def run_report(cfg: DictConfig, out: Path) -> str:
    from nas._config import check_name

    check_name("space", cfg.space)
    for dataset in cfg.datasets:
        check_name("dataset", dataset)  # a typo fails here, before any training
    plain = OmegaConf.to_container(cfg, resolve=True)
    samples = sample_architectures(cfg.space, int(cfg.architectures), int(cfg.seed))
    if len(samples) < int(cfg.architectures):
        print(f"space '{cfg.space}' gave only {len(samples)} distinct architectures")
    jobs = [(plain, dataset, i, s) for dataset in cfg.datasets for i, s in enumerate(samples)]
    start, rows = time.perf_counter(), []
    with ProcessPoolExecutor(max_workers=int(cfg.workers), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(one_architecture, *job) for job in jobs]
        for done, future in enumerate(as_completed(futures), start=1):
            row = future.result()
            rows.append(row)
            p = row["proxies"]
            print(f"[{done}/{len(jobs)}] {row['dataset']:<8} arch {row['index']:<3} val {row['val_accuracy']:.3f} "
                  f"(train {row['train_seconds']:.1f} s)  params {p.get('params', math.nan):.0f}  synflow {p.get('synflow', math.nan):.3g}  "
                  f"naswot {p.get('naswot', math.nan):.1f}  elapsed {time.perf_counter() - start:.0f} s", flush=True)
    wall = time.perf_counter() - start
    report, summary = summarise(rows, cfg, wall)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(report + "\n")
    (out / "results.json").write_text(json.dumps({"config": plain, "architectures": samples, "summary": summary,
                                                  "rows": sorted(rows, key=lambda r: (r["dataset"], r["index"]))}, indent=1))
    print("\n" + report)
    print(f"\nwritten: {out / 'report.md'}")
    return report


@hydra.main(version_base=None, config_path="conf", config_name="zero_cost_report")
def main(cfg: DictConfig) -> None:
    run_report(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
