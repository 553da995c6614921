"""``nas-monitor RUN_DIR stream.npz``: replay a stream of later data through the deployed model (the search's
best network, taking raw inputs) and run the drift detectors of :mod:`nas.model_audit.drift` on it.

The stream file holds ``x`` (raw inputs, as the dataset loader was given them) and optionally ``y`` (labels;
``-1`` where unknown): the error-stream detectors need labels, the others none. The reference (the
distribution without drift) is the run's test split and the model's confidence on it. Inputs with more than
64 features are compared in the first 16 principal components of the reference.

Writes ``monitor/report.md``, ``monitor/report.json``, a picture of each detector's statistic over the stream
with its alarms marked, and TensorBoard events (``tb/monitor``): each statistic against the stream position,
the alarms as text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.errors import ConfigError
from nas.model_audit.drift import DETECTORS, Alarm, adwin, ddm, eddm, hdddm, ks_psi, lfr, md3

__all__ = ["MonitorReport", "monitor", "read_stream"]

ERROR_DETECTORS = ("ddm", "eddm", "adwin", "lfr")


@dataclass
class MonitorReport:
    """The alarms of every detector, their traces, and what to do."""

    run_dir: str
    examples: int
    labelled: int
    detectors: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"trace": [[pos, stat]], "alarms": [...]}
    advice: str = ""
    research_run: str | None = None  # the run directory of the search on_drift=research started

    @property
    def alarms(self) -> list[Alarm]:
        return sorted((Alarm(**a) for d in self.detectors.values() for a in d["alarms"]), key=lambda a: (a.position, a.detector))

    def first_alarm(self, detector: str, after: int = 0) -> int | None:
        """The position of ``detector``'s first alarm at or after ``after`` (a change point), or ``None``."""
        hits = [a["position"] for a in self.detectors.get(detector, {}).get("alarms", []) if a["position"] >= after]
        return min(hits) if hits else None

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": self.run_dir, "examples": self.examples, "labelled": self.labelled, "advice": self.advice,
                "detectors": self.detectors}

    def to_markdown(self) -> str:
        lines = [f"# Monitoring: {self.examples} examples ({self.labelled} labelled)", "", self.advice, "",
                 "| detector | alarms | first at | statistic | threshold | rule |", "|---|---:|---:|---:|---:|---|"]
        for name, d in self.detectors.items():
            first = d["alarms"][0] if d["alarms"] else None
            lines.append(f"| {name} | {len(d['alarms'])} | {first['position'] if first else ''} | "
                         f"{format(first['statistic'], '.4g') if first else ''} | {format(first['threshold'], '.4g') if first else ''} | "
                         f"{first['what'] if first else d.get('note', '')} |")
        alarms = self.alarms
        if alarms:
            lines += ["", "## Alarms", ""] + [f"- {a}" for a in alarms[:50]] + ([f"- ... {len(alarms) - 50} more"] if len(alarms) > 50 else [])
        return "\n".join(lines) + "\n"

    def write(self, folder: Path, tensorboard_dir: Path | None) -> None:
        from PIL import Image

        from nas.engine.drawing import plot_image

        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps(self.to_dict(), indent=2))
        (folder / "report.md").write_text(self.to_markdown())
        pictures = {}
        for name, d in self.detectors.items():
            if d["trace"]:
                pictures[name] = plot_image(lambda ax, d=d: _trace(ax, d), size=(7.0, 3.2), title=f"{name}: {d['statistic']}")
                Image.fromarray(pictures[name]).save(folder / f"{name}.png")
        if tensorboard_dir is None:
            return
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(tensorboard_dir))
        try:
            for name, d in self.detectors.items():
                for position, value in d["trace"]:
                    if np.isfinite(value):
                        writer.add_scalar(f"monitor/{name}", value, int(position))
                for a in d["alarms"]:
                    writer.add_scalar(f"monitor/{name}_alarm", 1.0, int(a["position"]))
            for name, image in pictures.items():
                writer.add_image(f"monitor/{name}", image, 0, dataformats="HWC")
            writer.add_text("monitor/report", self.to_markdown(), 0)
        finally:
            writer.close()


def _trace(ax: Any, d: dict[str, Any]) -> None:
    trace = np.array(d["trace"], dtype=float)
    ax.plot(trace[:, 0], trace[:, 1], lw=1.0, c="#35608f")
    for i, a in enumerate(d["alarms"]):
        ax.axvline(a["position"], c="#c0392b", lw=0.8, ls="--", label="alarm" if i == 0 else None)
    ax.set_xlabel("stream position")
    ax.set_ylabel(d["statistic"])
    if d["alarms"]:
        ax.legend(loc="best", fontsize=8)


def read_stream(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` and ``y`` (or ``None``) of a stream file; a file without ``x`` is refused naming the key."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"`stream` must name an .npz file with `x` (and optionally `y`), but {str(path)!r} does not exist.")
    with np.load(file, allow_pickle=False) as data:
        if "x" not in data.files:
            raise ConfigError(f"`stream` must hold an array `x` (raw inputs), but {str(path)!r} has {sorted(data.files)}.")
        x, y = data["x"], (data["y"] if "y" in data.files else None)
    if y is not None and (y.ndim != 1 or len(y) != len(x)):
        raise ConfigError(f"`stream.y` must hold one label per example of `x` ({len(x)}; -1 where unknown), but has shape {y.shape}.")
    return x, y


def monitor(result: Any, stream: str | Path | tuple[np.ndarray, np.ndarray | None], *, detectors: Sequence[str] = DETECTORS,
            window: int = 250, out_dir: str | Path | None = None, tensorboard: bool = True,
            progress: Callable[[str], None] | None = print, dataset: Any = None, on_drift: str = "report",
            research: Sequence[str] = ()) -> MonitorReport:
    """Replay ``stream`` (a file or ``(x, y)``) through ``result``'s best model; see the module docstring.

    ``on_drift="research"``: when an error-stream detector fires, a new search runs on the labelled examples
    from its first alarm on (:func:`research`), warm-started from this run, with ``research`` overrides of its
    config (``["budget.trials=10"]``); its run directory is ``report.research_run``."""
    if on_drift not in ("report", "research"):
        raise ConfigError(f"`on_drift` must be 'report' or 'research', but got {on_drift!r}.")
    import torch

    from nas._results import load
    from nas.model_audit.metrics import predict_proba
    from nas.model_audit.run import run_dataset

    say = progress or (lambda text: None)
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown:
        raise ConfigError(f"`detectors` must name some of {', '.join(DETECTORS)}, but got {unknown[0]!r}.")
    if isinstance(window, bool) or not isinstance(window, int) or window < 20:
        raise ConfigError(f"`window` must be an integer >= 20 (examples per batch of the batch detectors), but got {window!r}.")
    if not hasattr(result, "trials"):
        result = load(result)
    x_raw, y = read_stream(stream) if not isinstance(stream, tuple) else stream
    pre = result.preprocessing
    raw_shape = tuple(pre.raw_shape) if pre.raw_shape is not None else None
    if raw_shape is not None and tuple(x_raw.shape[1:]) != raw_shape:
        raise ConfigError(f"`stream.x` must hold raw inputs of shape (N, {', '.join(map(str, raw_shape))}) as the search's dataset "
                          f"loader was given them, but has shape {x_raw.shape}.")
    splits = dataset if dataset is not None else run_dataset(result)
    model = result.best_model(preprocess=False)
    inputs = torch.as_tensor(pre(np.asarray(x_raw, dtype=np.float32)), dtype=torch.float32)
    if tuple(inputs.shape[1:]) != tuple(splits.x_test.shape[1:]):
        raise ConfigError(f"`stream.x` leads to network inputs {tuple(inputs.shape[1:])}, but the model takes {tuple(splits.x_test.shape[1:])}.")
    proba = predict_proba(model, inputs)
    reference_proba = predict_proba(model, splits.x_test)
    pred = proba.argmax(axis=1)
    labelled = np.flatnonzero(y >= 0) if y is not None else np.zeros(0, dtype=int)
    say(f"monitor: {len(pred)} examples, {len(labelled)} labelled; detectors {', '.join(detectors)}")
    report = MonitorReport(run_dir=str(result.run_dir), examples=len(pred), labelled=len(labelled))
    errors = (pred[labelled] != y[labelled]) if y is not None else np.zeros(0, dtype=bool)

    def add(name: str, statistic: str, found: tuple[list[tuple[int, float]], list[Alarm]], note: str = "") -> None:
        trace, alarms = found
        report.detectors[name] = {"statistic": statistic, "trace": [list(t) for t in trace], "alarms": [a.to_dict() for a in alarms],
                                  "note": note}

    for name in (d for d in detectors if d in ERROR_DETECTORS):
        if not len(labelled):
            report.detectors[name] = {"statistic": "", "trace": [], "alarms": [], "note": "needs labels (stream.y): none known"}
            continue
        if name == "lfr":
            positive = int(np.bincount(reference_proba.argmax(axis=1)).argmax())
            add(name, f"smallest tail probability of the four rates (class {positive} against the rest)",
                lfr(y[labelled], pred[labelled], labelled, positive=positive))  # type: ignore[index]
        else:
            add(name, {"ddm": "running error rate", "eddm": "mean distance between errors", "adwin": "error rate of ADWIN's window"}[name],
                {"ddm": ddm, "eddm": eddm, "adwin": adwin}[name](errors, labelled))
    features_ref, features = _features(splits.x_test.numpy(), inputs.numpy())
    if "hdddm" in detectors:
        add("hdddm", "Hellinger distance to the reference", hdddm(features_ref, features, batch=window))
    if "md3" in detectors:
        add("md3", "margin density", md3(_margin(reference_proba), _margin(proba), window=window))
    if {"ks", "psi"} & set(detectors):
        both = ks_psi(features_ref, features, window=window)
        for name, statistic in (("ks", "smallest KS p-value"), ("psi", "largest PSI")):
            if name in detectors:
                add(name, statistic, both[name])
    report.advice = _advice(report)
    folder = Path(out_dir) if out_dir is not None else Path(result.run_dir) / "monitor"
    report.write(folder, (folder.parent / "tb" / "monitor") if tensorboard else None)
    say(report.advice)
    say(f"monitor: written to {folder}/report.md")
    fired = [p for p in (report.first_alarm(n) for n in ERROR_DETECTORS) if p is not None]
    if on_drift == "research" and fired:
        since = min(fired)
        keep = labelled[labelled >= since]
        report.research_run = research_run(result, x_raw[keep], y[keep], research, say=say)  # type: ignore[index]
    elif on_drift == "research":
        say("monitor: on_drift=research, but no error-stream detector fired: no new search.")
    return report


def research_run(result: Any, x: np.ndarray, y: np.ndarray, overrides: Sequence[str] = (), *,
                 say: Callable[[str], None] = print) -> str:
    """A new search on ``(x, y)`` (raw inputs and labels of the stream since the drift), in a new run directory
    beside the parent's (``<run>-research``, ``-research-2``, ...), with the parent's config, this data as an npz
    dataset (70 % train, 30 % test, stratified) and ``warm_start`` from the parent: its top three architectures
    first, from their trained weights. The new run's config names its parent (``warm_start.run``)."""
    from omegaconf import OmegaConf
    from sklearn.model_selection import train_test_split

    from nas._api import run_from_config

    classes, counts = np.unique(y, return_counts=True)
    if len(y) < 100 or len(classes) < 2:
        raise ConfigError(f"on_drift=research needs at least 100 labelled examples of two classes or more since the drift, but the "
                          f"stream has {len(y)} (classes {classes.tolist()}).")
    parent = Path(result.run_dir)
    target = parent.with_name(f"{parent.name}-research")
    n = 2
    while target.exists():
        target, n = parent.with_name(f"{parent.name}-research-{n}"), n + 1
    target.mkdir(parents=True)
    stratify = y if counts.min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=stratify)
    data = target / "drifted.npz"
    np.savez(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    cfg = OmegaConf.load(parent / "config.yaml")
    cfg.dataset = OmegaConf.create({"_target_": "nas.datasets.npz", "path": str(data), "val_fraction": 0.15, "split_seed": 0,
                                    "standardize": True})
    cfg.warm_start = OmegaConf.create({"run": str(parent), "top_k": 3, "inherit": True})
    cfg.run_dir = str(target)
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    say(f"monitor: drift: searching again on the {len(y)} labelled examples since it, in {target} (warm-started from {parent})")
    run_from_config(cfg, target)  # type: ignore[arg-type]
    return str(target)


def _margin(proba: np.ndarray) -> np.ndarray:
    top = np.sort(proba, axis=1)
    return top[:, -1] - top[:, -2]


def _features(reference: np.ndarray, stream: np.ndarray, *, most: int = 64, components: int = 16) -> tuple[np.ndarray, np.ndarray]:
    ref, new = reference.reshape(len(reference), -1), stream.reshape(len(stream), -1)
    if ref.shape[1] <= most:
        return ref, new
    from sklearn.decomposition import PCA

    pca = PCA(n_components=components, random_state=0).fit(ref)
    return pca.transform(ref), pca.transform(new)


def _advice(report: MonitorReport) -> str:
    fired = {name for name, d in report.detectors.items() if d["alarms"]}
    error_side, input_side = fired & set(ERROR_DETECTORS), fired - set(ERROR_DETECTORS)
    if not fired:
        return "No detector fired: the stream looks like the data the model was chosen on."
    if error_side:
        first = min(report.first_alarm(n) or 0 for n in error_side)
        return (f"The model's errors changed (from position {first}: {', '.join(sorted(error_side))}): retrain on recent labelled data, "
                "or search again on it, warm-started from this run (its top architectures first).")
    return (f"The inputs or the model's confidence changed ({', '.join(sorted(input_side))}) "
            + ("with no labels to say whether the errors did: label a sample of the recent stream, and check the data pipeline."
               if not report.labelled else "but the errors did not: check the data pipeline; the model copes so far."))
