"""Audit figures of every trial, on the validation split, recorded with it so that the search can use them:
``nas-search trial_audit='{figures: [val_worst_class_accuracy, val_robust_accuracy], epsilon: 0.1}'
objectives='{val_accuracy: max, val_robust_accuracy: max}'``.

Each figure needs no labels beyond the validation split's (the test split stays untouched until the audit):

- ``val_ece``: expected calibration error (15 bins);
- ``val_worst_class_accuracy``: the lowest recall of any class;
- ``val_worst_slice_accuracy``: the lowest accuracy of any slice with at least ``min_slice`` examples (the
  slices the audit derives, and the ``group`` array's, alone and crossed with the true class);
- ``val_group_gap``: the largest accuracy difference between the values of the ``group`` array (a dataset's
  ``g_val_<name>``, or the validation part of its ``g_train_<name>``);
- ``val_robust_accuracy``: accuracy under ``attack`` (fgsm, pgd or noise) at ``epsilon``.

They are the audit's own computations (:mod:`nas.model_audit`), on the trained network of each completed
trial (:meth:`nas.Callback.measure`), so an objective or a constraint may name them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nas.core.errors import ConfigError
from nas.engine.callbacks import Callback
from nas.model_audit.metrics import calibration, classification, predict_proba
from nas.model_audit.robustness import ATTACKS, robust_accuracy
from nas.model_audit.slices import MIN_SLICE, crossed, derived_slices, slice_table

__all__ = ["FIGURES", "TrialAudit", "trial_audit_from_config"]

FIGURES = ("val_ece", "val_worst_class_accuracy", "val_worst_slice_accuracy", "val_group_gap", "val_robust_accuracy")


class TrialAudit(Callback):
    """Records ``figures`` (see the module docstring) with every completed trial."""

    def __init__(self, figures: Sequence[str] = ("val_ece", "val_worst_class_accuracy"), *, epsilon: float = 0.1,
                 attack: str = "fgsm", group: str | None = None, min_slice: int = MIN_SLICE) -> None:
        figures = [figures] if isinstance(figures, str) else list(figures)
        unknown = [f for f in figures if f not in FIGURES]
        if not figures or unknown:
            raise ConfigError(f"`trial_audit.figures` must name some of {', '.join(FIGURES)}, but got {unknown[0] if unknown else figures!r}.")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not np.isfinite(epsilon) or epsilon < 0:
            raise ConfigError(f"`trial_audit.epsilon` must be a number >= 0, but got {epsilon!r}.")
        if attack not in ATTACKS:
            raise ConfigError(f"`trial_audit.attack` must be one of {', '.join(ATTACKS)}, but got {attack!r}.")
        if "val_group_gap" in figures and group is None:
            raise ConfigError("`trial_audit.group` must name a group array of the dataset (g_val_<name> or g_train_<name>) for "
                              "val_group_gap, but got none.")
        if isinstance(min_slice, bool) or not isinstance(min_slice, int) or min_slice < 1:
            raise ConfigError(f"`trial_audit.min_slice` must be an integer >= 1, but got {min_slice!r}.")
        self.metrics = tuple(figures)
        self.epsilon, self.attack, self.group, self.min_slice = float(epsilon), attack, group, min_slice

    def on_search_start(self, search: Any) -> None:
        super().on_search_start(search)
        self.check(search.estimator)

    def check(self, estimator: Any) -> None:
        """Refuse an estimator without a validation split, or a ``group`` its dataset lacks (before any training)."""
        data = getattr(estimator, "data", None)
        if data is None or not hasattr(data, "x_val"):
            raise ConfigError(f"`trial_audit` measures the trained network on the validation split, but the estimator "
                              f"({type(estimator).__name__}) trains on no dataset.")
        if self.group is not None and self.group not in data.groups.get("val", {}):
            raise ConfigError(f"`trial_audit.group` names {self.group!r}, but dataset {data.name!r} has no such group array for its "
                              f"validation split ({', '.join(sorted(data.groups.get('val', {}))) or 'none'}; an npz file holds it as "
                              f"g_train_<name>, split with the training data, or g_val_<name>).")

    def measure(self, trial: Any, evaluation: Any) -> Mapping[str, float]:
        model = getattr(evaluation, "model", None)
        if model is None:
            return {}
        data = getattr(self.search.estimator, "data")
        x, y = data.x_val, data.y_val
        labels = y.numpy()
        proba = predict_proba(model, x)
        correct = proba.argmax(axis=1) == labels
        groups = {self.group: np.asarray(data.groups["val"][self.group])} if self.group is not None else {}
        out: dict[str, float] = {}
        if "val_ece" in self.metrics:
            out["val_ece"] = calibration(labels, proba)["ece"]
        if "val_worst_class_accuracy" in self.metrics:
            recalls = [c["recall"] for c in classification(labels, proba, data.num_classes, resamples=10)["classes"] if c["support"]]
            out["val_worst_class_accuracy"] = float(min(recalls))
        if "val_worst_slice_accuracy" in self.metrics:
            rows = slice_table(correct, {**derived_slices(x.numpy(), labels, proba), **groups, **crossed(groups, labels)}, resamples=10)
            sized = [r["accuracy"] for r in rows if r["size"] >= self.min_slice]
            out["val_worst_slice_accuracy"] = float(min(sized)) if sized else float(correct.mean())
        if "val_group_gap" in self.metrics:
            values = groups[self.group]  # type: ignore[index]
            accuracies = [correct[values == v].mean() for v in np.unique(values)]
            out["val_group_gap"] = float(max(accuracies) - min(accuracies))
        if "val_robust_accuracy" in self.metrics:
            out["val_robust_accuracy"] = robust_accuracy(model, x, y, self.attack, [self.epsilon])[0]["accuracy"]
        return out


def trial_audit_from_config(node: Any) -> TrialAudit | None:
    """The callback ``trial_audit`` describes (a mapping of :class:`TrialAudit`'s arguments), or ``None``."""
    if node is None:
        return None
    if not isinstance(node, Mapping):
        raise ConfigError(f"`trial_audit` must be a mapping such as {{figures: [val_ece], epsilon: 0.1}}, but got {node!r}.")
    known = {"figures", "epsilon", "attack", "group", "min_slice"}
    unknown = sorted(set(node) - known)
    if unknown:
        raise ConfigError(f"`trial_audit.{unknown[0]}` is not a setting; the settings are {', '.join(sorted(known))}.")
    settings: dict[str, Any] = {k: (list(v) if k == "figures" and not isinstance(v, str) else v) for k, v in node.items()}
    return TrialAudit(**settings)
