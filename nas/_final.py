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

__all__ = ["AUTO_TOP_K", "FINAL_DIR", "FULL_FIDELITY", "auto_retrain_top_k", "check_final", "retrain_top"]

FINAL_DIR = "final"
#: ``final.retrain_top_k: null`` with a pruner that accepts trials early: the top 2 retrained. Chosen on the NAS-Bench-201
#: curves (experiments/lce_scheduler.py): the second halves the regret of the first alone at every acceptance epoch tried
#: for about one more full training.
AUTO_TOP_K = 2
#: The training estimator's knobs at full fidelity.
FULL_FIDELITY = {"data_fraction": 1.0, "width_multiplier": 1.0, "depth_multiplier": 1.0, "input_scale": 1.0, "max_seconds": None}


def check_final(cfg: DictConfig) -> tuple[int, int | None]:
    """``final.retrain_top_k`` (>= 0; 0 = no final phase; null = auto, resolved by :func:`auto_retrain_top_k` to
    :data:`AUTO_TOP_K` when the pruner accepts trials early, else 0) and ``final.epochs`` (>= 1 or null), checked."""
    node = cfg.get("final") or {}
    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    unknown = sorted(set(plain) - {"retrain_top_k", "epochs"})  # type: ignore[arg-type]
    if unknown:
        raise ConfigError(f"`final.{unknown[0]}` is not a setting; the settings are retrain_top_k, epochs.")
    k, epochs = plain.get("retrain_top_k", 0), plain.get("epochs")  # type: ignore[union-attr]
    if k is None:
        k = 0  # auto, not resolved (no pruner that accepts): no final phase
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ConfigError(f"`final.retrain_top_k` must be an integer >= 0 (the best trials retrained at full fidelity when the search "
                          f"ends; 0: none), but got {k!r}.")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ConfigError(f"`final.epochs` must be an integer >= 1 or null (the estimator's epochs), but got {epochs!r}.")
    return k, epochs


def auto_retrain_top_k(cfg: DictConfig, pruner: Any, epochs: int | None) -> str | None:
    """``final.retrain_top_k: null`` (auto) set to :data:`AUTO_TOP_K` when ``pruner`` accepts trials before ``epochs``
    (``pruner=lce``: nobody trains to the end during the search, so the best are trained at full fidelity afterwards),
    else 0. Returns what to tell the user, or ``None``."""
    node = cfg.get("final")
    if node is None or node.get("retrain_top_k", 0) is not None:
        return None
    acceptance = getattr(pruner, "acceptance", None)
    accept = acceptance(epochs) if callable(acceptance) and epochs is not None else None
    OmegaConf.update(cfg, "final.retrain_top_k", AUTO_TOP_K if accept is not None else 0, force_add=True)
    if accept is None:
        return None
    return (f"final: retrain_top_k auto -> {AUTO_TOP_K}: trials are accepted at epoch {accept} of {epochs}, so the best "
            f"{AUTO_TOP_K} are trained to the end when the search ends and the better one handed over "
            f"(final.retrain_top_k=0: keep the search's epoch-{accept} weights)")


class _KeepModel(Callback):
    def __init__(self) -> None:
        self.model: Any = None

    def on_trial_end(self, record: TrialRecord, evaluation: Any) -> None:
        self.model = getattr(evaluation, "model", None)


def _full_fidelity(cfg: DictConfig, epochs: int | None) -> dict[str, Any]:
    """The estimator's config node at full fidelity (every low-fidelity knob reset; ``epochs`` when given)."""
    node = OmegaConf.to_container(cfg.estimator, resolve=True)
    return {**node, **FULL_FIDELITY, **({"epochs": epochs} if epochs else {})}  # type: ignore[dict-item]


def _final_estimator(cfg: DictConfig, space: SearchSpace, epochs: int | None) -> Any:
    """The training estimator at full fidelity, on the config's dataset."""
    from nas._config import instantiate

    dataset = instantiate(cfg.dataset, kind=f"dataset '{cfg.dataset.get('_target_', '?')}'")
    estimator = instantiate(_full_fidelity(cfg, epochs), kind="estimator (final phase)", space=space, dataset=dataset,
                            seed=cfg.get("seed"))
    return estimator() if callable(estimator) and not hasattr(estimator, "fidelity") else estimator  # a _partial_ node


def _row(record: TrialRecord, rank: int, space: SearchSpace, *, state: str, final_score: float | None = None,
         test_accuracy: Any = None, seconds: float | None = None, reason: str | None = None) -> dict[str, Any]:
    """One line of ``final/results.json``: the search's trial beside its full-fidelity outcome."""
    return {"trial": record.number, "rank": rank, "search_score": record.value, "final_score": final_score,
            "test_accuracy": test_accuracy, "state": state, "seconds": seconds, "reason": reason,
            "architecture": space.format(record.arch.sample), "saved": False}


def _retrain_one(loop: SearchLoop, keep: _KeepModel, record: TrialRecord, rank: int, folder: Path) -> dict[str, Any]:
    """Train ``record``'s architecture with ``loop``'s estimator; its network kept under ``folder/<n>/``. The row."""
    keep.model = None
    done = loop.step(proposal=Proposal(dict(record.arch.sample)))
    row = _row(record, rank, loop.space, state=str(done.state), final_score=done.value, test_accuracy=done.metrics.get("test_accuracy"),
               seconds=done.cost, reason=done.reason)
    if done.completed and keep.model is not None:
        save_trial(folder / str(record.number), loop, done, keep.model)
        info = json.loads((folder / str(record.number) / "arch.json").read_text())
        info.update(trial=record.number, search_score=record.value)  # the search's trial number, not the final loop's
        atomic_write(folder / str(record.number) / "arch.json", json.dumps(info, indent=2))
        row["saved"] = True
    return row


def _retrain_in_process(cfg: DictConfig, space: SearchSpace, epochs: int | None, record: TrialRecord, rank: int,
                        folder: Path) -> dict[str, Any]:
    """One candidate of the final phase in a worker process of its own (:func:`retrain_top` with ``workers`` > 1)."""
    keep = _KeepModel()
    loop = SearchLoop(space=space, strategy=None, estimator=_final_estimator(cfg, space, epochs), store=MemoryStore(), callbacks=[keep])
    return _retrain_one(loop, keep, record, rank, folder)


def _in_parallel(cfg: DictConfig, space: SearchSpace, epochs: int | None, top: list[TrialRecord], folder: Path,
                 workers: int, say: Callable[[str], None]) -> list[dict[str, Any]] | None:
    """The rows of ``top`` retrained on ``workers`` processes at once, in rank order; ``None`` when the work cannot be
    sent to processes. Each is ``python -m nas._final JOB ROW`` (no multiprocessing: a user's script needs no
    ``__main__`` guard), building its own estimator with the estimator's threads; one that dies gives a failed row."""
    import pickle
    import subprocess
    import sys
    import tempfile
    import time

    try:
        jobs = [pickle.dumps((cfg, space, epochs, record, rank, folder)) for rank, record in enumerate(top, 1)]
    except Exception as error:  # a space or record that cannot travel: train here, one after the other
        say(f"final: cannot send the candidates to worker processes ({type(error).__name__}: {error}); retraining them here")
        return None
    rows: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix=".final-", dir=folder) as tmp:
        pending = list(range(len(top)))
        running: dict[int, tuple[subprocess.Popen[bytes], Path, Path]] = {}  # index -> (process, row file, log file)
        try:
            while pending or running:
                while pending and len(running) < workers:
                    i = pending.pop(0)
                    job, row, log = (Path(tmp) / f"{i}.{ext}" for ext in ("pkl", "json", "log"))
                    job.write_bytes(jobs[i])
                    with open(log, "wb") as err:
                        running[i] = (subprocess.Popen([sys.executable, "-m", "nas._final", str(job), str(row)], stdout=err,
                                                       stderr=subprocess.STDOUT), row, log)
                for i, (process, row, log) in list(running.items()):
                    if process.poll() is None:
                        continue
                    del running[i]
                    rows[i] = (json.loads(row.read_text()) if process.returncode == 0 and row.is_file()
                               else _failed_row(top[i], i + 1, space, process.returncode, log))
                time.sleep(0.2)
        finally:
            for process, _, _ in running.values():
                process.kill()
    return [rows[i] for i in range(len(top))]


def _failed_row(record: TrialRecord, rank: int, space: SearchSpace, code: int, log: Path) -> dict[str, Any]:
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.is_file() else []
    return _row(record, rank, space, state="failed", reason=f"its process exited with {code}" + (f": {tail[0]}" if tail else ""))


def retrain_top(cfg: DictConfig, space: SearchSpace, run_dir: Path, history: list[TrialRecord],
                say: Callable[[str], None], *, given: list[str] | None = None, workers: int = 1) -> list[dict[str, Any]]:
    """Retrain the top ``final.retrain_top_k`` of ``history`` at full fidelity; see the module docstring. ``given``:
    the estimator or dataset passed as objects, which the config does not describe (then no final phase).
    ``workers`` > 1: that many processes retrain candidates at once (a search with ``workers=N``); the rows and
    the winner are the same as one after the other (each architecture's seed does not depend on the order)."""
    from nas._config import target_of

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
    full = _full_fidelity(cfg, epochs)
    folder = Path(run_dir) / FINAL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    shown = ", ".join(f"{key}={full.get(key)}" for key in ("epochs", "data_fraction", "width_multiplier", "input_scale"))
    processes = max(1, min(int(workers or 1), len(top)))
    say(f"final: retraining the top {len(top)} at full fidelity ({shown})" + (f" on {processes} processes" if processes > 1 else ""))
    rows = _in_parallel(cfg, space, epochs, top, folder, processes, say) if processes > 1 else None
    if rows is None:  # here, one after the other, on one estimator (the dataset loaded once)
        keep = _KeepModel()
        loop = SearchLoop(space=space, strategy=None, estimator=_final_estimator(cfg, space, epochs), store=MemoryStore(),
                          callbacks=[keep])
        rows = []
        for rank, record in enumerate(top, 1):
            rows.append(_retrain_one(loop, keep, record, rank, folder))
            _say_row(rows[-1], say)
    else:
        for row in rows:
            _say_row(row, say)
    best: tuple[float, int] | None = None
    for row in rows:
        if row.pop("saved") and (best is None or float(row["final_score"]) > best[0]):
            best = (float(row["final_score"]), row["trial"])
    if best is not None:
        shutil.rmtree(folder / "best", ignore_errors=True)
        shutil.copytree(folder / str(best[1]), folder / "best")
        say(f"final: the retrained winner is #{best[1]} ({best[0]:.4f}); best_model() loads it (final/best/)")
    atomic_write(folder / "results.json", json.dumps({"epochs": full.get("epochs"), "winner": best[1] if best else None,
                                                      "trials": rows}, indent=2))
    lines = ["| rank | trial | search score | full-fidelity score | test accuracy | seconds |", "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['rank']} | {r['trial']} | {r['search_score']:.4f} | "
                     + (f"{r['final_score']:.4f}" if r["final_score"] is not None else r["state"]) + " | "
                     + (f"{r['test_accuracy']:.4f}" if isinstance(r["test_accuracy"], float) else "") + f" | {r['seconds'] or 0:.1f} |")
    atomic_write(folder / "leaderboard.md", "\n".join(lines) + "\n")
    return rows


def _say_row(row: dict[str, Any], say: Callable[[str], None]) -> None:
    value = row["final_score"]
    say(f"final: #{row['trial']}: search score {row['search_score']:.4f} -> full fidelity {value if value is None else f'{value:.4f}'}"
        + (f" ({row['reason']})" if row["reason"] else ""))


def _main(argv: list[str]) -> int:
    """``python -m nas._final JOB ROW``: one candidate of a parallel final phase (see :func:`_in_parallel`)."""
    import pickle

    job, out = (Path(a) for a in argv)
    cfg, space, epochs, record, rank, folder = pickle.loads(job.read_bytes())
    atomic_write(out, json.dumps(_retrain_in_process(cfg, space, epochs, record, rank, folder)))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
