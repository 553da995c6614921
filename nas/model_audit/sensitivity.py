"""What the model's prediction depends on: partial dependence and individual conditional expectation for
declared input features (vector data), occlusion of image regions or signal windows, and a what-if for one
example.

- **Partial dependence** (Friedman 2001) of feature ``j``: the mean predicted probability of a class when
  ``x[:, j]`` is set to each value of a grid (the training data's 5th to 95th percentiles), over the test
  inputs, for the class it moves most; **ICE** (Goldstein et al. 2015) keeps each example's own curve (the
  first 20 are reported). The spread of the partial-dependence curve (its max minus min) ranks the features.
- **Occlusion** (Zeiler and Fergus 2014): a patch (images) or window (signals) set to 0, the standardised
  mean, slid over the input; the drop in the true class's mean probability at each position is a map of
  where the model looks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.core.errors import ConfigError

__all__ = ["check_features", "occlusion", "partial_dependence", "what_if"]


def _probabilities(model: Any, x: Any) -> np.ndarray:
    import torch

    device = next(iter(model.parameters()), torch.zeros(0)).device
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(x.to(device)).double(), dim=1).cpu().numpy()


def _true_class_probability(model: Any, x: Any, y: np.ndarray) -> np.ndarray:
    return _probabilities(model, x)[np.arange(len(y)), y]


def check_features(features: Sequence[int], input_shape: Sequence[int]) -> tuple[int, ...]:
    """Feature indices into the flattened input: integers in range; anything else is refused naming the key."""
    size = int(np.prod(input_shape))
    for f in features:
        if isinstance(f, bool) or not isinstance(f, int) or not 0 <= f < size:
            raise ConfigError(f"`audit.features` must be indices of input features, 0 to {size - 1} (inputs {tuple(input_shape)}, "
                              f"flattened), but got {f!r}.")
    return tuple(features)


def partial_dependence(model: Any, x: Any, reference: Any, features: Sequence[int], *, points: int = 10,
                       ice: int = 20) -> list[dict[str, Any]]:
    """Partial dependence and ICE curves of each feature (index into the flattened input), for the class whose
    probability it moves most; the largest effect first."""
    flat_reference = reference.reshape(len(reference), -1)
    rows = []
    for feature in features:
        grid = np.unique(np.quantile(flat_reference[:, feature].numpy(), np.linspace(0.05, 0.95, points)))
        cube = []
        for value in grid:
            moved = x.clone().reshape(len(x), -1)
            moved[:, feature] = float(value)
            cube.append(_probabilities(model, moved.reshape(x.shape)))
        probabilities = np.stack(cube, axis=1)  # examples x grid x classes
        mean = probabilities.mean(axis=0)  # grid x classes
        effects = mean.max(axis=0) - mean.min(axis=0)
        c = int(effects.argmax())
        rows.append({"feature": int(feature), "class": c, "grid": grid.tolist(), "partial_dependence": mean[:, c].tolist(),
                     "effect": float(effects[c]), "ice": probabilities[:ice, :, c].tolist()})
    return sorted(rows, key=lambda r: -r["effect"])


def occlusion(model: Any, x: Any, y: np.ndarray, *, size: int | None = None, stride: int | None = None) -> dict[str, Any]:
    """The drop in the true class's mean probability when each patch (``(C, H, W)`` inputs) or window (``(C, L)``)
    is set to 0; ``size`` and ``stride`` default to a quarter and an eighth of the side (at least 1)."""
    spatial = tuple(x.shape[2:])
    if len(spatial) not in (1, 2):
        raise ConfigError(f"occlusion needs image (C, H, W) or signal (C, L) inputs, but they are {tuple(x.shape[1:])}; "
                          "declare `audit.features` for vector inputs.")
    size = size or max(1, min(spatial) // 4)
    stride = stride or max(1, size // 2)
    base = _true_class_probability(model, x, y).mean()
    starts = [list(range(0, max(d - size, 0) + 1, stride)) for d in spatial]
    grid = np.zeros([len(s) for s in starts])
    for index in np.ndindex(*grid.shape):
        moved = x.clone()
        region = tuple(slice(starts[a][i], starts[a][i] + size) for a, i in enumerate(index))
        moved[(slice(None), slice(None)) + region] = 0.0
        grid[index] = base - _true_class_probability(model, moved, y).mean()
    peak = np.unravel_index(int(grid.argmax()), grid.shape)
    return {"size": size, "stride": stride, "base_probability": float(base), "drop": grid.tolist(),
            "most_sensitive": {"start": [starts[a][i] for a, i in enumerate(peak)], "drop": float(grid.max())}}


def what_if(model: Any, example: Any, feature: int, value: float) -> dict[str, Any]:
    """``model`` on one input (``example``: the network's input, one example without the batch axis) and on it with
    flattened feature ``feature`` set to ``value``: each prediction and its class probabilities."""
    import torch

    check_features([feature], tuple(example.shape))
    changed = example.clone().reshape(-1)
    before = changed[feature].item()
    changed[feature] = float(value)
    device = next(iter(model.parameters()), torch.zeros(0)).device
    model.eval()
    with torch.no_grad():
        proba = torch.softmax(model(torch.stack([example, changed.reshape(example.shape)]).to(device)).double(), dim=1).cpu().numpy()
    return {"feature": feature, "from": before, "to": float(value), "before": {"class": int(proba[0].argmax()), "proba": proba[0].tolist()},
            "after": {"class": int(proba[1].argmax()), "proba": proba[1].tolist()}}
