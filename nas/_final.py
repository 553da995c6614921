"""The final phase of a search run at low fidelity: ``final.retrain_top_k`` (``final.epochs``).

A search that scores candidates cheaply (``estimator.data_fraction``, fewer epochs, a width or depth
multiplier, smaller inputs, a time limit) ends with its winner's low-fidelity weights and score. The final
phase retrains the top ``k`` by the search's score at full fidelity (every low-fidelity knob reset; ``epochs``
from ``final.epochs``, else the estimator's), reports their full-fidelity scores beside the search's
(``final/results.json``, ``final/leaderboard.md``), keeps each network under ``final/<n>/``, and the best by
its full-fidelity validation score under ``final/best/``, which :meth:`SearchResult.best_model` then loads.
The retraining is outside the trial budget and the study: the study keeps what the search measured.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nas.core.errors import ConfigError
from nas.core.records import Proposal, TrialRecord, ranked
from nas.core.space import SearchSpace
from nas.engine.callbacks import Callback
from nas.engine.loop import SearchLoop
from nas.engine.rundir import atomic_write, save_trial
from nas.store.memory import MemoryStore

__all__ = ["FINAL_DIR", "FULL_FIDELITY", "check_final", "retrain_top"]

FINAL_DIR = "final"
#: The training estimator's knobs at full fidelity.
FULL_FIDELITY = {"data_fraction": 1.0, "width_multiplier": 1.0, "depth_multiplier": 1.0, "input_scale": 1.0, "max_seconds": None}


def check_final(cfg: DictConfig) -> tuple[int, int | None]:
    """``final.retrain_top_k`` (>= 0; 0 = no final phase) and ``final.epochs`` (>= 1 or null), checked."""
    node = cfg.get("final") or {}
    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    unknown = sorted(set(plain) - {"retrain_top_k", "epochs"})  # type: ignore[arg-type]
    if unknown:
        raise ConfigError(f"`final.{unknown[0]}` is not a setting; the settings are retrain_top_k, epochs.")
    k, epochs = plain.get("retrain_top_k", 0), plain.get("epochs")  # type: ignore[union-attr]
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ConfigError(f"`final.retrain_top_k` must be an integer >= 0 (the best trials retrained at full fidelity when the search "
                          f"ends; 0: none), but got {k!r}.")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ConfigError(f"`final.epochs` must be an integer >= 1 or null (the estimator's epochs), but got {epochs!r}.")
    return k, epochs


class _KeepModel(Callback):
    def __init__(self) -> None:
        self.model: Any = None

    def on_trial_end(self, record: TrialRecord, evaluation: Any) -> None:
        self.model = getattr(evaluation, "model", None)


def retrain_top(cfg: DictConfig, space: SearchSpace, run_dir: Path, history: list[TrialRecord],
                say: Callable[[str], None], *, given: list[str] | None = None) -> list[dict[str, Any]]:
    """Retrain the top ``final.retrain_top_k`` of ``history`` at full fidelity; see the module docstring. ``given``:
    the estimator or dataset passed as objects, which the config does not describe (then no final phase)."""
    from nas._config import instantiate, target_of

    k, epochs = check_final(cfg)
    top = ranked(history)[:k]
    if not top:
        return []
    if given:
        say(f"final: retrain_top_k={k}, but the {' and '.join(given)} were given as objects, which the config does not describe: "
            "no final phase (name them by config to retrain at full fidelity).")
        return []
    target = getattr(target_of(cfg.estimator, kind="estimator"), "__name__", "")
    if target != "TrainingEstimator":
        say(f"final: retrain_top_k={k}, but the estimator ({target or '?'}) does not train networks: no final phase.")
        return []
    node = OmegaConf.to_container(cfg.estimator, resolve=True)
    full = {**node, **FULL_FIDELITY, **({"epochs": epochs} if epochs else {})}  # type: ignore[dict-item]
    dataset = instantiate(cfg.dataset, kind=f"dataset '{cfg.dataset.get('_target_', '?')}'")
    estimator = instantiate(full, kind="estimator (final phase)", space=space, dataset=dataset, seed=cfg.get("seed"))
    estimator = estimator() if callable(estimator) and not hasattr(estimator, "fidelity") else estimator  # a _partial_ node
    keep = _KeepModel()
    loop = SearchLoop(space=space, strategy=None, estimator=estimator, store=MemoryStore(), callbacks=[keep])
    folder = Path(run_dir) / FINAL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    shown = ", ".join(f"{key}={value}" for key, value in estimator.fidelity().items()
                      if key in ("epochs", "data_fraction", "width_multiplier", "input_scale"))
    say(f"final: retraining the top {len(top)} at full fidelity ({shown})")
    best: tuple[float, int] | None = None
    for rank, record in enumerate(top, 1):
        keep.model = None
        done = loop.step(proposal=Proposal(dict(record.arch.sample)))
        row = {"trial": record.number, "rank": rank, "search_score": record.value, "final_score": done.value,
               "test_accuracy": done.metrics.get("test_accuracy"), "state": str(done.state), "seconds": done.cost, "reason": done.reason,
               "architecture": space.format(record.arch.sample)}
        rows.append(row)
        if done.completed and keep.model is not None:
            save_trial(folder / str(record.number), loop, done, keep.model)
            info = json.loads((folder / str(record.number) / "arch.json").read_text())
            info.update(trial=record.number, search_score=record.value)  # the search's trial number, not the final loop's
            atomic_write(folder / str(record.number) / "arch.json", json.dumps(info, indent=2))
            if best is None or float(done.value) > best[0]:  # type: ignore[arg-type]
                best = (float(done.value), record.number)  # type: ignore[arg-type]
        say(f"final: #{record.number}: search score {record.value:.4f} -> full fidelity {done.value if done.value is None else f'{done.value:.4f}'}"
            + (f" ({done.reason})" if done.reason else ""))
    if best is not None:
        shutil.rmtree(folder / "best", ignore_errors=True)
        shutil.copytree(folder / str(best[1]), folder / "best")
        say(f"final: the retrained winner is #{best[1]} ({best[0]:.4f}); best_model() loads it (final/best/)")
    atomic_write(folder / "results.json", json.dumps({"epochs": estimator.fidelity().get("epochs"), "winner": best[1] if best else None,
                                                      "trials": rows}, indent=2))
    lines = ["| rank | trial | search score | full-fidelity score | test accuracy | seconds |", "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['rank']} | {r['trial']} | {r['search_score']:.4f} | "
                     + (f"{r['final_score']:.4f}" if r["final_score"] is not None else r["state"]) + " | "
                     + (f"{r['test_accuracy']:.4f}" if isinstance(r["test_accuracy"], float) else "") + f" | {r['seconds'] or 0:.1f} |")
    atomic_write(folder / "leaderboard.md", "\n".join(lines) + "\n")
    return rows
