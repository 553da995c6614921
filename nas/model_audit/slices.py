"""Where a classifier is weak: accuracy on slices of the split, and fairness across a declared group.

Slices are any per-example array the user gives (a ``g_test`` array of the npz, a dict in Python) plus
those the audit derives: the true class, the model's confidence (quartiles), an input statistic's
quartiles (mean value, i.e. brightness, for images; mean square, i.e. energy, for signals and vectors),
and each user slice crossed with the true class.
Each slice value gets its size, accuracy with a bootstrap interval, and its gap to the whole; the worst
first. Fairness figures per group are fairlearn's ``MetricFrame`` (its ``difference`` and ``ratio`` are
the largest gap and the smallest ratio between groups).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nas.model_audit.metrics import accuracy_interval
from nas.core.errors import ConfigError

__all__ = ["check_groups", "crossed", "derived_slices", "fairness", "quartiles", "slice_table"]

#: Slice values with fewer examples are listed but not ranked among the worst (their accuracy is noise).
MIN_SLICE = 10


def check_groups(groups: Mapping[str, Any] | None, size: int, *, key: str = "slices") -> dict[str, np.ndarray]:
    """``groups`` as 1-D arrays of ``size`` values each; anything else is refused naming the key."""
    if groups is None:
        return {}
    if not isinstance(groups, Mapping):
        raise ConfigError(f"`{key}` must map names to per-example arrays, but got {type(groups).__name__}.")
    out = {}
    for name, values in groups.items():
        array = np.asarray(values)
        if array.ndim != 1 or len(array) != size:
            raise ConfigError(f"`{key}.{name}` must hold one value per example of the split ({size}), but got shape {array.shape}.")
        out[str(name)] = array
    return out


def derived_slices(x: np.ndarray, y: np.ndarray, proba: np.ndarray) -> dict[str, np.ndarray]:
    """The slices the audit makes itself: true class, confidence quartile, input-statistic quartile."""
    flat = x.reshape(len(x), -1)
    image = x.ndim == 4
    statistic = flat.mean(axis=1) if image else (flat ** 2).mean(axis=1)
    return {"true class": y, "confidence": quartiles(proba.max(axis=1)),
            ("brightness" if image else "energy"): quartiles(statistic)}


def crossed(user: Mapping[str, np.ndarray], y: np.ndarray) -> dict[str, np.ndarray]:
    """Each user slice crossed with the true class (``"dark / 3"``): a weakness confined to one class of one group
    is diluted in either alone."""
    return {f"{name} x true class": np.array([f"{v} / {c}" for v, c in zip(values, y)]) for name, values in user.items()}


def quartiles(values: np.ndarray) -> np.ndarray:
    """Each value's quartile of ``values``, as a tag (``q1 (lowest)`` .. ``q4 (highest)``)."""
    edges = np.quantile(values, [0.25, 0.5, 0.75])
    index = np.searchsorted(edges, values, side="right")
    names = np.array(["q1 (lowest)", "q2", "q3", "q4 (highest)"])
    return names[index]


def slice_table(correct: np.ndarray, slices: Mapping[str, np.ndarray], *, resamples: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """One row per (slice, value): size, share, accuracy, its interval and gap to the whole; worst first (slice
    values under :data:`MIN_SLICE` examples last)."""
    overall = float(correct.mean()) if len(correct) else float("nan")
    rows = []
    for name, values in slices.items():
        for value in np.unique(values):
            inside = values == value
            accuracy, low, high = accuracy_interval(correct[inside], resamples=resamples, seed=seed)
            rows.append({"slice": name, "value": value.item() if isinstance(value, np.generic) else value, "size": int(inside.sum()),
                         "share": float(inside.mean()), "accuracy": accuracy, "interval": [low, high], "gap": accuracy - overall})
    return sorted(rows, key=lambda r: (r["size"] < MIN_SLICE, r["accuracy"], -r["size"]))


def fairness(y: np.ndarray, proba: np.ndarray, group: np.ndarray, *, thresholds: tuple[float, ...] = (0.3, 0.5, 0.7)) -> dict[str, Any]:
    """Per-group rates, accuracy and AUC, with the largest gap and smallest ratio between groups.

    Binary tasks (two classes): positive and negative rate, TPR / FNR, TNR / FPR and accuracy at each of
    ``thresholds`` on the positive class's probability, and AUC. More classes: one-vs-rest, macro-averaged
    (TPR is then the balanced accuracy), at the arg-max prediction."""
    try:
        from fairlearn.metrics import MetricFrame
    except ImportError as exc:  # the optional extra
        raise ConfigError("the fairness figures are fairlearn's: pip install 'nas[audit]' (or fairlearn), or leave `groups` out.") from exc
    classes = proba.shape[1]
    index = np.arange(len(y))

    def auc(y_true: np.ndarray, y_pred: np.ndarray, rows: np.ndarray) -> float:
        return _auc(y_true, proba[rows], classes)

    settings = [(f"threshold {t:g}", (proba[:, 1] >= t).astype(int)) for t in thresholds] if classes == 2 else [("arg-max", proba.argmax(1))]
    out: dict[str, Any] = {"groups": [str(g) for g in np.unique(group)], "settings": []}
    for label, pred in settings:
        metrics = {**_rates(classes), "accuracy": lambda t, p: float(np.mean(t == p)), "auc": auc}
        frame = MetricFrame(metrics=metrics, y_true=y, y_pred=pred, sensitive_features=group, sample_params={"auc": {"rows": index}})
        by_group = {str(g): {k: float(v) for k, v in row.items()} for g, row in frame.by_group.iterrows()}
        out["settings"].append({"setting": label, "overall": {k: float(v) for k, v in frame.overall.items()}, "by_group": by_group,
                                "difference": {k: float(v) for k, v in frame.difference().items()},
                                "ratio": {k: float(v) for k, v in frame.ratio().items()}})
    worst = max(out["settings"], key=lambda s: s["difference"]["accuracy"])
    out["largest_gap"] = {"metric": "accuracy", "setting": worst["setting"], "difference": worst["difference"]["accuracy"],
                          "ratio": worst["ratio"]["accuracy"]}
    return out


def _rates(classes: int) -> dict[str, Any]:
    """Confusion rates as fairlearn metric functions: the positive class's (binary) or one-vs-rest macro averages."""
    def rates(t: np.ndarray, p: np.ndarray) -> dict[str, float]:
        labels = [1] if classes == 2 else list(range(classes))
        values: dict[str, list[float]] = {"tpr": [], "tnr": [], "ppr": []}
        for c in labels:
            positive, predicted = t == c, p == c
            values["tpr"].append(_ratio(np.sum(positive & predicted), np.sum(positive)))
            values["tnr"].append(_ratio(np.sum(~positive & ~predicted), np.sum(~positive)))
            values["ppr"].append(float(np.mean(predicted)) if len(p) else float("nan"))
        mean = {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in values.items()}
        return {"positive_rate": mean["ppr"], "negative_rate": 1 - mean["ppr"], "tpr": mean["tpr"], "fnr": 1 - mean["tpr"],
                "tnr": mean["tnr"], "fpr": 1 - mean["tnr"]}

    names = ("positive_rate", "negative_rate", "tpr", "fnr", "tnr", "fpr") if classes == 2 else ("tpr", "fnr", "tnr", "fpr")
    return {name: (lambda n: lambda t, p: rates(t, p)[n])(name) for name in names}


def _ratio(a: Any, b: Any) -> float:
    return float(a) / float(b) if b else float("nan")


def _auc(y: np.ndarray, scores: np.ndarray, classes: int) -> float:
    """ROC AUC (binary: of the positive class; more: one-vs-rest averaged over the classes present with both
    outcomes in ``y``); NaN where no class has both."""
    from sklearn.metrics import roc_auc_score

    if classes == 2:
        return float(roc_auc_score(y, scores[:, 1])) if len(np.unique(y)) == 2 else float("nan")
    values = [roc_auc_score(y == c, scores[:, c]) for c in range(classes) if 0 < np.sum(y == c) < len(y)]
    return float(np.mean(values)) if values else float("nan")
