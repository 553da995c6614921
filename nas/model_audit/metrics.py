"""The figures of one classifier on one split, from its class probabilities: per-class precision, recall,
F1 and support (scikit-learn's ``precision_recall_fscore_support``), the confusion matrix, macro and
weighted averages, accuracy, each with a bootstrap confidence interval, and calibration (expected
calibration error and the reliability diagram's bins).

Intervals are percentile bootstraps: ``resamples`` draws of the examples with replacement (seeded), the
figure recomputed on each, the 2.5th and 97.5th percentiles reported (95 %).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["accuracy_interval", "calibration", "classification", "confusions", "predict_proba", "prf_of_confusions", "RARE_SHARE"]

#: A class is flagged rare when its share of the split is below this fraction of a uniform share (1 / classes).
RARE_SHARE = 0.5


def predict_proba(model: Any, x: Any, *, batch_size: int = 512) -> np.ndarray:
    """``model``'s class probabilities (softmax of its outputs) for the inputs ``x`` (a tensor), as float64 numpy."""
    import torch

    device = next(iter(model.parameters()), torch.zeros(0)).device
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(x[start:start + batch_size].to(device))
            out.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def accuracy_interval(correct: np.ndarray, *, resamples: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Accuracy of a boolean array and its bootstrap interval (vectorised: one matrix of resampled indices)."""
    n = len(correct)
    if n == 0:
        return (float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, n, (resamples, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(correct.mean()), float(low), float(high)


def classification(y: np.ndarray, proba: np.ndarray, num_classes: int, *, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Per-class and averaged precision / recall / F1 with intervals, the confusion matrix, accuracy, rare classes.
    The point figures are scikit-learn's; the resamples count confusion matrices in numpy (the same formulas,
    checked against scikit-learn in the tests), a thousand of them in milliseconds."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(num_classes))
    pred = proba.argmax(axis=1)
    per_class = np.array(precision_recall_fscore_support(y, pred, labels=labels, average=None, zero_division=0)[:3], dtype=float)
    support = np.bincount(y, minlength=num_classes)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(y), (resamples, len(y))) if len(y) else np.zeros((0, 0), dtype=int)
    matrices = confusions(y[draws], pred[draws], num_classes) if len(y) else np.zeros((1, num_classes, num_classes), dtype=int)
    resampled = prf_of_confusions(matrices)
    low, high = np.nanpercentile(resampled, [2.5, 97.5], axis=0)
    uniform = len(y) / max(num_classes, 1)
    classes = [{"class": c, "precision": per_class[0, c], "recall": per_class[1, c], "f1": per_class[2, c], "support": int(support[c]),
                "f1_interval": [low[2, c], high[2, c]], "recall_interval": [low[1, c], high[1, c]],
                "rare": bool(support[c] < RARE_SHARE * uniform)} for c in labels]
    averages = {}
    weights = matrices.sum(axis=2)  # each resample's support per class
    for average in ("macro", "weighted"):
        value = np.array(precision_recall_fscore_support(y, pred, labels=labels, average=average, zero_division=0)[:3], dtype=float)
        if average == "macro":
            spread = resampled.mean(axis=2)
        else:
            spread = (resampled * weights[:, None, :]).sum(axis=2) / np.maximum(weights.sum(axis=1), 1)[:, None]
        lo, hi = np.nanpercentile(spread, [2.5, 97.5], axis=0)
        averages[average] = {"precision": value[0], "recall": value[1], "f1": value[2], "f1_interval": [lo[2], hi[2]]}
    accuracy, a_low, a_high = accuracy_interval(pred == y, resamples=resamples, seed=seed)
    return {"accuracy": accuracy, "accuracy_interval": [a_low, a_high], "classes": plain(classes), "averages": plain(averages),
            "confusion": confusion_matrix(y, pred, labels=labels).tolist(), "rare_classes": [c["class"] for c in classes if c["rare"]]}


def confusions(y: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion matrices (true class by row) of each row of ``y`` / ``pred`` (``(R, N)`` label arrays): ``(R, K, K)``."""
    rows = np.arange(y.shape[0])[:, None] * num_classes * num_classes
    flat = np.bincount((rows + y * num_classes + pred).ravel(), minlength=y.shape[0] * num_classes * num_classes)
    return flat.reshape(y.shape[0], num_classes, num_classes)


def prf_of_confusions(matrices: np.ndarray) -> np.ndarray:
    """Precision, recall and F1 per class (``(R, 3, K)``) of confusion matrices, 0 where undefined (scikit-learn's
    ``zero_division=0``)."""
    hits = matrices.diagonal(axis1=1, axis2=2).astype(float)
    predicted, actual = matrices.sum(axis=1), matrices.sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(actual > 0, hits / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return np.stack([precision, recall, f1], axis=1)


def calibration(y: np.ndarray, proba: np.ndarray, *, bins: int = 15) -> dict[str, Any]:
    """Expected calibration error of the top-label confidence over ``bins`` equal-width bins (Guo et al. 2017:
    the gap between each bin's accuracy and mean confidence, weighted by its share), and the bins themselves."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        inside = index == b
        count = int(inside.sum())
        if count:
            accuracy, mean_confidence = float(correct[inside].mean()), float(confidence[inside].mean())
            ece += count / len(y) * abs(accuracy - mean_confidence)
        else:
            accuracy = mean_confidence = float("nan")
        rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": count, "accuracy": accuracy,
                     "confidence": mean_confidence})
    return {"ece": float(ece), "bins": rows}


def plain(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists, recursively, keys as strings (what json writes)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
