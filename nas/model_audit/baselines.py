"""Benchmark models on the same split as the searched networks: the majority class, a logistic regression
and a k-nearest-neighbours classifier (scikit-learn's), each fitted on the training split's inputs as the
networks saw them, flattened; and a human-level or older-system accuracy the user declares.

    >>> probs = baseline_probabilities("logistic", splits)     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.core.errors import ConfigError

__all__ = ["BASELINES", "baseline_probabilities"]

#: What each name fits (scikit-learn estimators with ``predict_proba``).
BASELINES = ("majority", "logistic", "knn")


def _model(name: str, seed: int) -> Any:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    if name == "majority":
        return DummyClassifier(strategy="most_frequent")
    if name == "logistic":
        return LogisticRegression(max_iter=2000, random_state=seed)
    if name == "knn":
        return KNeighborsClassifier(n_neighbors=5)
    raise ConfigError(f"`baselines` must name some of {', '.join(BASELINES)}, but got {name!r}.")


def baseline_probabilities(name: str, splits: Any, *, split: str = "test", seed: int = 0) -> np.ndarray:
    """Class probabilities (``(N, num_classes)``) of baseline ``name`` fitted on ``splits``' training split, on
    ``split`` (``"test"`` or ``"val"``). A class absent from training gets probability 0."""
    model = _model(name, seed)
    x_train = splits.x_train.reshape(len(splits.x_train), -1).numpy()
    x = getattr(splits, f"x_{split}")
    model.fit(x_train, splits.y_train.numpy())
    known = model.predict_proba(x.reshape(len(x), -1).numpy())
    out = np.zeros((len(x), splits.num_classes))
    out[:, model.classes_.astype(int)] = known
    return out


def check_baselines(names: Any) -> tuple[str, ...]:
    """``names`` as a tuple of known baseline names; anything else is refused naming the key."""
    if names is None:
        return ()
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"`baselines` must be a list of names from {', '.join(BASELINES)}, but got {names!r}.")
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ConfigError(f"`baselines` must name some of {', '.join(BASELINES)}, but got {unknown[0]!r}.")
    return tuple(names)
