"""What a search keeps in its run directory, written by callbacks: the best checkpoint, the best few
trained networks, the leaderboard, the lineage, and the retention of trained weights."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from nas.core.records import TrialRecord, ranked
from nas.engine.callbacks import Callback
from nas.engine.lineage import lineage_text
from nas.store.locks import file_lock

RUN_FILE = "run.json"
BEST_DIR = "best"
TOP_DIR = "top"


def atomic_write(path: Path, text: str | bytes) -> None:
    """Readers see the old text or the new, never half; the temporary name is this process's, so
    workers writing the same file at once do not clobber each other's half-written copy."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text)
    os.replace(tmp, path)


#: A space given as a Python object, pickled next to ``run.json`` so that :func:`nas.load` can rebuild it.
SPACE_PICKLE = "space.pickle"


class BestCheckpoint(Callback):
    """``best/weights.pt`` and ``best/arch.json`` whenever a finished trial of this process is the
    study's best (other workers' trials included, :meth:`TrialStore.best`), so the run directory
    never holds a checkpoint of a trial the study does not rank first at the time."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir) / BEST_DIR
        self.untrained = False  # whether the weights saved are a proxy estimator's initial ones

    def on_search_end(self, history: list[TrialRecord]) -> None:
        if self.untrained:
            self.search.say(f"Note: {self.dir}/weights.pt holds the best architecture's initial, untrained weights (the "
                            f"estimator scores networks without training them); train it before use.")

    def on_trial_end(self, record: TrialRecord, evaluation: Any) -> None:
        model = getattr(evaluation, "model", None)
        if model is None:
            return
        if not self.search.shared_run_dir:  # one process: the store's best already counts this trial
            self._save_if_best(record, model)
            return
        with file_lock(self.dir.parent / ".best.lock"):  # workers of one run directory: one writer at a time
            self.search.store.history()  # read under the lock: a better trial another worker finished wins
            self._save_if_best(record, model)

    def _save_if_best(self, record: TrialRecord, model: Any) -> None:
        best = self.search.store.best()
        if best is not None and best.number == record.number:
            self._save(record, model)

    def _save(self, record: TrialRecord, model: Any) -> None:
        self.untrained = bool(save_trial(self.dir, self.search, record, model)["untrained"])


def save_trial(folder: Path, search: Any, record: TrialRecord, model: Any) -> dict[str, Any]:
    """``folder/weights.pt``, ``arch.json`` and ``preprocessing.json`` of ``record``'s trained ``model``
    (what :meth:`SearchResult.best_model` loads); returns what ``arch.json`` says."""
    import torch

    from nas.datasets import save_preprocessing

    folder.mkdir(parents=True, exist_ok=True)
    save_preprocessing(search.estimator, folder)  # raw inputs -> network input, for best_model() and predict()
    tmp = folder / f"weights.pt.{os.getpid()}.tmp"
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    os.replace(tmp, folder / "weights.pt")
    estimator, space = search.estimator, search.space
    info = {"trial": record.number, "score": record.value, "space": space.name, "key": record.arch.key,
            "sample": dict(record.arch.sample), "text": space.format(record.arch.sample), "metrics": dict(record.metrics),
            "fidelity": estimator.fidelity(), "input_shape": list(estimator.input_shape), "num_classes": estimator.num_classes,
            "untrained": not estimator.trains}
    atomic_write(folder / "arch.json", json.dumps(info, indent=2))
    return info


class KeptCheckpoints(Callback):
    """``<run_dir>/<folder>/<n>/`` (weights, ``arch.json``, preprocessing) for each trial of this process that
    :meth:`members` names; a trial that stops being one loses its folder. Workers sharing a run directory take
    turns (a lock). :class:`TopCheckpoints` keeps the best ``k``; ``FrontCheckpoints`` the Pareto front."""

    def __init__(self, run_dir: str | Path, folder: str) -> None:
        self.dir = Path(run_dir) / folder

    def members(self, history: list[TrialRecord]) -> set[int]:
        raise NotImplementedError

    def on_trial_end(self, record: TrialRecord, evaluation: Any) -> None:
        model = getattr(evaluation, "model", None)
        if model is None or not record.eligible:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.dir / ".lock"):
            members = self.members(self.search.store.history())
            if record.number in members:
                save_trial(self.dir / str(record.number), self.search, record, model)
            for folder in self.dir.iterdir():
                if folder.is_dir() and folder.name.isdigit() and int(folder.name) not in members:
                    shutil.rmtree(folder, ignore_errors=True)


class TopCheckpoints(KeptCheckpoints):
    """The ``k`` best trials' trained networks under ``top/<n>/`` (what ``nas-audit`` audits side by side)."""

    def __init__(self, run_dir: str | Path, k: int) -> None:
        super().__init__(run_dir, TOP_DIR)
        self.k = k

    def members(self, history: list[TrialRecord]) -> set[int]:
        return {r.number for r in ranked(history)[:self.k]}


class WeightRetention(Callback):
    """After each trial, removes kept weights that neither rank among the best nor can still be bred
    from (:meth:`nas.Strategy.alive`); see :class:`nas.inheritance.weights.WeightStore`."""

    def __init__(self, weights: Any) -> None:
        self.weights = weights

    def on_trial_end(self, record: TrialRecord, evaluation: Any) -> None:
        history = self.search.store.history()
        alive = self.search.strategy.alive(history) if self.search.strategy is not None else set()
        self.weights.retain(history, alive)


class RunSummary(Callback):
    """``leaderboard.md`` (and ``lineage.md`` when trials were bred from parents) when the search ends."""

    def __init__(self, run_dir: str | Path, leaderboard: Any) -> None:
        self.run_dir, self.leaderboard = Path(run_dir), leaderboard

    def on_search_end(self, history: list[TrialRecord]) -> None:
        if any(r.parent is not None for r in history):
            atomic_write(self.run_dir / "lineage.md", lineage_text(history) + "\n")
        atomic_write(self.run_dir / "leaderboard.md", self.leaderboard(history) + "\n")
