"""The result of a search, live or rebuilt from its run directory by :func:`nas.load`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError
from nas.core.fronts import SCORE, front_hypervolume, front_of, reference_from
from nas.core.objectives import Objective
from nas.core.space import SearchSpace
from nas.core.records import TrialRecord, ranked
from nas.datasets import Preprocessing, load_preprocessing
from nas.engine.fronts import FRONT_DIR, objectives_of, reference_point
from nas.engine.progress import human
from nas.engine.rundir import BEST_DIR, RUN_FILE, TOP_DIR
from nas.store.base import TrialStore

@dataclass
class SearchResult:
    """Trials, best candidate and trained weights of one search (one study in its trial store)."""

    store: TrialStore
    space: SearchSpace
    run_dir: Path | None = None
    input_shape: tuple[int, ...] = ()
    num_classes: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def study(self) -> Any:
        """The Optuna study behind the store (``None`` for an in-process :class:`~nas.store.MemoryStore`)."""
        return getattr(self.store, "study", None)

    @property
    def trials(self) -> list[TrialRecord]:
        return self.store.history()

    def top(self, k: int = 10) -> list[TrialRecord]:
        return ranked(self.trials)[:k]

    @property
    def best(self) -> TrialRecord | None:
        """The study's best trial (other workers' included); the same one :meth:`best_model` builds."""
        self.store.history()
        return self.store.best()

    @property
    def objectives(self) -> tuple[Objective, ...]:
        """What the search optimised: its objectives (``Objective(metric, direction)``), or the score alone."""
        return objectives_of(self.store) or (Objective(SCORE, "max"),)

    @property
    def pareto(self) -> list[TrialRecord]:
        """The completed trials on the Pareto front of :attr:`objectives` (infeasible ones never complete),
        best first by the first objective; with the score alone, the best trial(s)."""
        return front_of(self.trials, self.objectives)

    def hypervolume(self, reference: Sequence[float] | Mapping[str, float] | None = None) -> float:
        """The volume :attr:`pareto` dominates up to ``reference`` (one value per objective, in its own units).
        ``None``: the study's reference point, as declared (``reference=``) or derived once from the trials
        (:func:`nas.core.fronts.derive_reference`) and then kept in the study, so later calls compare."""
        objectives = self.objectives
        point = reference_from(reference, objectives) if reference is not None else self.reference_point()
        return front_hypervolume(self.trials, objectives, point) if point is not None else 0.0

    def reference_point(self) -> tuple[float, ...] | None:
        """The study's hypervolume reference point (declared, else derived now from the trials and kept); ``None``
        before any trial completed."""
        return reference_point(self.store, self.objectives, self.trials)

    @property
    def preprocessing(self) -> Preprocessing:
        """What turns raw inputs (the arrays given to the dataset loader) into the network's input,
        from ``best/preprocessing.json``; identity where the run directory has none (no best trial
        yet, an estimator without data, or a run written before preprocessing was saved)."""
        if self.run_dir is None:
            return Preprocessing()
        return load_preprocessing(self.run_dir / BEST_DIR)

    def best_model(self, *, trial: int | None = None, preprocess: bool = True) -> Any:
        """The best architecture as a ``torch.nn.Module`` with its trained weights, in ``eval()`` mode.

        It takes **raw inputs**, the arrays as given to the dataset loader (e.g. an ``.npz`` file's
        ``x_test``, unstandardised, ``(N, H, W)`` or ``(N, 1, H, W)``; digits' 0..16 pixel values;
        full-size inputs even when the search trained on downscaled ones): an ``nn.Sequential`` of
        ``preprocess`` (:meth:`Preprocessing.module`) and ``net``, the trained network. Its
        ``state_dict`` keys are the network's prefixed with ``net.``.

        ``preprocess=False`` returns the bare network, which expects inputs already preprocessed as
        in training (what ``best_model()`` returned before). A run directory written before the
        preprocessing was saved has no ``best/preprocessing.json``: it loads with identity
        preprocessing, so its model also expects preprocessed inputs, as it always did.

        With a final phase (``final.retrain_top_k``) it is the retrained winner (``final/best/``), retrained at full
        fidelity; :attr:`final` has each retrained trial's scores.

        ``trial=n`` is trial ``n`` instead: one of the best ``keep_models`` trials (kept under ``top/<n>/``) or of
        the Pareto front (a search with several objectives keeps each front member's under ``front/<n>/``); any
        other trial, or one of another run directory, is refused.

        Raises when the study's best trial is not the one this run directory kept, e.g. when two run
        directories share one study and the best trial ran in the other one: it says which to load.
        """
        import torch

        folder = self.weights_folder(trial)
        retrained = self.run_dir is not None and trial is None and (Path(self.run_dir) / "final" / "best" / "weights.pt").exists()
        if retrained:  # the final phase's winner, retrained at full fidelity (nas/_final.py)
            folder = Path(self.run_dir) / "final" / "best"  # type: ignore[arg-type]
        if self.run_dir is None or not (folder / "weights.pt").exists():
            raise FileNotFoundError(f"No trained weights under {folder}/weights.pt: no trial has completed yet.")
        saved = json.loads((folder / "arch.json").read_text())
        best = self.best
        if trial is None and not retrained and best is not None and saved.get("trial") != best.number:
            raise FileNotFoundError(
                f"The study's best trial is #{best.number} ({best.value:.4f}, worker {best.worker}), but {self.run_dir}/{BEST_DIR} holds "
                f"trial #{saved.get('trial')} ({saved.get('score')}): the best trial ran in another run directory sharing this study. "
                f"Load that one with nas.load(...).")
        fidelity = saved.get("fidelity") or {}  # a low-fidelity run trained a narrower build of the same cell
        space = self.space.reduced(width=fidelity.get("width_multiplier", 1.0), depth=fidelity.get("depth_multiplier", 1.0))
        model = space.build(saved["sample"], tuple(saved["input_shape"]), int(saved["num_classes"]))
        model.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
        if not preprocess:
            return model.eval()
        from collections import OrderedDict

        steps = load_preprocessing(folder).module()
        return torch.nn.Sequential(OrderedDict(preprocess=steps, net=model)).eval()

    @property
    def final(self) -> list[dict[str, Any]]:
        """The final phase's rows (trial, search score, full-fidelity score, test accuracy, seconds), or ``[]``."""
        file = Path(self.run_dir) / "final" / "results.json" if self.run_dir is not None else None
        return list(json.loads(file.read_text())["trials"]) if file is not None and file.is_file() else []

    def weights_folder(self, trial: int | None) -> Path:
        """Where trial ``trial``'s weights are kept (``best/`` for ``None`` or the best trial, else ``top/<n>/`` or
        ``front/<n>/``)."""
        root = self.run_dir if self.run_dir is not None else Path(".")
        best = self.best
        kept = [root / folder / str(trial) for folder in (FRONT_DIR, TOP_DIR)]
        if trial is None or (best is not None and trial == best.number and not any(k.exists() for k in kept)):
            return root / BEST_DIR
        if isinstance(trial, bool) or not isinstance(trial, int):
            raise ValueError(f"`trial` must be a trial number (an int) or None (the best trial), but got {trial!r}.")
        for folder in kept:
            if (folder / "weights.pt").exists():
                return folder
        on_front = [r.number for r in self.pareto] if len(self.objectives) > 1 else []
        top = sorted(int(f.name) for f in (root / TOP_DIR).glob("*") if f.name.isdigit())
        if trial not in on_front:
            raise ValueError(f"`trial={trial}` must be a trial whose weights are kept: one of the best (top/: {', '.join(map(str, top)) or 'none'})"
                             + (f" or on the Pareto front ({', '.join(map(str, on_front)) or 'none yet'})" if len(self.objectives) > 1 else "")
                             + f"; trial #{trial} is not.")
        raise FileNotFoundError(f"Trial #{trial} is on the Pareto front, but {root / FRONT_DIR / str(trial)} holds no weights: it ran in "
                                "another run directory sharing this study, or its estimator returns no model.")

    def predict(self, x: Any, *, batch_size: int = 1024) -> Any:
        """Predicted class indices of the best model for raw inputs ``x`` (a numpy array or a tensor,
        ``(N, *raw_shape)`` as given to the dataset loader): int64 numpy for numpy input, a tensor on
        ``x``'s device for a tensor. Loads the model on every call; for many calls keep ``best_model()``."""
        import numpy as np
        import torch

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size >= 1` must hold, but got batch_size={batch_size!r}.")
        is_tensor = isinstance(x, torch.Tensor)
        inputs = x if is_tensor else torch.from_numpy(np.ascontiguousarray(x))
        model = self.best_model().to(inputs.device)
        with torch.no_grad():
            labels = [model(inputs[i:i + batch_size]).argmax(1) for i in range(0, len(inputs), batch_size)]
        out = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.int64, device=inputs.device)
        return out if is_tensor else out.cpu().numpy()

    def leaderboard(self, k: int = 10, *, pareto: bool = False) -> str:
        """Markdown table of the top ``k`` candidates; columns follow what the estimator measured. With several
        objectives, each is a column and the front is marked; ``pareto=True`` lists the front alone."""
        return leaderboard(self.space, self.trials, k, objectives=objectives_of(self.store), pareto=pareto)

    def __repr__(self) -> str:
        best = self.best
        return f"SearchResult(run_dir={str(self.run_dir)!r}, trials={len(self.trials)}, best={best.value if best else None})"


def leaderboard(space: SearchSpace, trials: Sequence[TrialRecord], k: int = 10, *, objectives: Sequence[Objective] = (),
                pareto: bool = False) -> str:
    """Markdown table of the ``k`` best of ``trials``, then a count of every state. With several ``objectives``:
    a column for each (its direction in the title) and a ``front`` mark (``*``) on the Pareto front's trials;
    ``pareto``: the front alone, best first by the first objective."""
    shown = len(objectives) > 1 or pareto  # a single-objective leaderboard needs no front (it costs the history squared)
    on_front = front_of(trials, objectives or (Objective(SCORE, "max"),)) if shown else []
    top = on_front[:k] if pareto else ranked(trials)[:k]
    members = {r.number for r in on_front}
    measured = {name for r in top for name in r.metrics}
    columns = [(title, name, fmt) for title, name, fmt in _COLUMNS if name in measured]
    if len(objectives) > 1:  # every objective shown, first, with its direction
        named = {name: (title, fmt) for title, name, fmt in _COLUMNS}
        chosen = [(f"{named.get(o.metric, (o.metric, ''))[0]} ({o.direction})", o.metric, named.get(o.metric, ("", "{:.4g}"))[1])
                  for o in objectives if o.metric not in (SCORE, "val_accuracy")]  # the score's column is there already
        columns = chosen + [c for c in columns if c[1] not in {o.metric for o in objectives}] + [("front", "", "front")]
    selected_by = {str(r.metrics["selected_by"]) for r in top if "selected_by" in r.metrics}  # a table's score column
    if not columns:  # a table estimator: show its own numeric metrics
        columns = sorted({(n, n, "{:.4f}") for r in top for n, v in r.metrics.items()
                          if isinstance(v, float) and n not in selected_by})
    score = "val acc" if "val_accuracy" in measured else next(iter(selected_by)) if len(selected_by) == 1 else "score"
    if any(o.metric in (SCORE, "val_accuracy" if score == "val acc" else score) for o in objectives):
        score += " (max)"
    several = len({r.worker for r in trials if r.worker}) > 1  # workers: say which ran each trial
    rows = [f"| rank | trial | key | {score} | " + "".join(f"{title} | " for title, _, _ in columns) + ("worker | " if several else "")
            + "architecture |", "|---:|---:|---|---:|" + "---:|" * len(columns) + ("---|" if several else "") + "---|"]
    for rank, r in enumerate(top, 1):
        text = space.format(r.arch.sample)  # whole: two cells that differ late must not look the same
        cells = "".join(f"{('*' if r.number in members else '') if fmt == 'front' else _cell(r.metrics.get(name), fmt)} | "
                        for _, name, fmt in columns)
        worker = f"{r.worker or '-'} | " if several else ""
        rows.append(f"| {rank} | {r.number} | `{r.arch.key[:12]}` | {r.value:.4f} | {cells}{worker}`{text}` |")
    states: dict[str, int] = {}
    for r in trials:
        states[str(r.state)] = states.get(str(r.state), 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    refused = sum(r.infeasible for r in trials)
    if refused:
        summary += f" ({refused} infeasible: refused before training by the constraints)"
    outside = sum(r.completed and not r.eligible for r in trials)
    if outside:
        summary += f" ({outside} complete but outside a constraint judged after training, left out of the ranking)"
    if len(objectives) > 1:
        summary += f"; {len(on_front)} on the Pareto front of {', '.join(map(str, objectives))}" + (" (*)" if not pareto else "")
    return "\n".join(rows) + f"\n\n{len(trials)} trials: {summary}."


#: Leaderboard columns of the training estimator: (title, metric, format).
_COLUMNS = (("test acc", "test_accuracy", "{:.4f}"), ("params", "params", "human"), ("MACs", "macs", "human"),
            ("latency ms", "latency_ms", "{:.3g}"), ("seconds", "seconds", "{:.1f}"))


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    return human(value) if fmt == "human" else fmt.format(value)


def run_file(run_dir: Path) -> dict[str, Any]:
    """What ``run.json`` of a run directory says (storage, study name, space, ...); a folder without one is refused."""
    meta_file = Path(run_dir) / RUN_FILE
    if not meta_file.is_file():
        raise ConfigError(f"`run_dir` must be a run directory holding {RUN_FILE}, but {str(run_dir)!r} has none.")
    return dict(json.loads(meta_file.read_text()))


def load(run_dir: str | Path, *, space: SearchSpace | None = None) -> SearchResult:
    """Rebuild the result of a search from its run directory, finished or cut short."""
    from nas._config import space_from_config
    from nas.store import open_store

    run_dir = Path(run_dir)
    meta = run_file(run_dir)
    if space is None:
        if meta.get("space_config") is not None:
            space = space_from_config(meta["space_config"])
        elif meta.get("space_pickle") and (run_dir / str(meta["space_pickle"])).is_file():
            import pickle

            try:
                space = pickle.loads((run_dir / str(meta["space_pickle"])).read_bytes())  # noqa: S301 - written by the run itself
            except (ImportError, AttributeError, pickle.UnpicklingError) as exc:
                raise ConfigError(f"The run in {str(run_dir)!r} used a space given as a Python object, kept in "
                                  f"{meta['space_pickle']}, which no longer loads ({exc}); pass it: nas.load(run_dir, space=...).") from exc
        else:
            raise ConfigError(f"The run in {str(run_dir)!r} used a space given as a Python object that could not be kept; "
                              "pass it: nas.load(run_dir, space=...).")
    if meta.get("storage") == "memory":
        raise ConfigError(f"The run in {str(run_dir)!r} kept its trials in memory (storage=memory): they ended with its process.")
    _, store = open_store(meta["storage"], run_dir=run_dir, space=space, study_name=meta["study_name"], create=False)
    return SearchResult(store=store, space=space, run_dir=run_dir, input_shape=tuple(meta.get("input_shape", ())),
                        num_classes=int(meta.get("num_classes", 0)), meta=meta)
