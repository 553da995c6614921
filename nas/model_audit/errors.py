"""Error analysis: where the errors are, ranked as what to work on next, and whether they come in runs.

For every tag (each value of a declared slice, and each quartile of a declared feature): its share of the
data, the share of all errors that carry it, the error rate within it, and the room to the human level
there (its error rate minus the human level's error, where one is declared). Ranked by the **ceiling**: the
share of errors a perfect fix of that tag would remove (Ng's error analysis: fixing a tag that holds 5 % of
the errors can gain at most 5 % of the error rate), then by error rate.

In stream order (``ordered``: the split's order is time), the autocorrelation of the error indicator at lags
1 to 10, against the band ``1.96 / sqrt(n)`` a sequence of independent errors stays within: errors that
cluster in time (a sensor fault, a shift) show as significant positive autocorrelation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["autocorrelation", "error_table"]


def error_table(correct: np.ndarray, tags: Mapping[str, np.ndarray], *, human_level: float | None = None) -> list[dict[str, Any]]:
    """One row per (tag, value), the largest ceiling first."""
    errors = ~correct
    total = max(int(errors.sum()), 1)
    rows = []
    for name, values in tags.items():
        for value in np.unique(values):
            inside = values == value
            rate = float(errors[inside].mean())
            rows.append({"tag": name, "value": value.item() if isinstance(value, np.generic) else value, "share_of_data": float(inside.mean()),
                         "share_of_errors": float(errors[inside].sum() / total), "error_rate": rate, "size": int(inside.sum()),
                         "room_to_human": None if human_level is None else rate - (1.0 - human_level)})
    return sorted(rows, key=lambda r: (-r["share_of_errors"], -r["error_rate"]))


def feature_quartiles(x: np.ndarray, features: list[int]) -> dict[str, np.ndarray]:
    """Each declared feature (index into the flattened input) as quartile tags."""
    from nas.model_audit.slices import quartiles

    flat = x.reshape(len(x), -1)
    return {f"feature {f}": quartiles(flat[:, f]) for f in features}


def autocorrelation(correct: np.ndarray, *, lags: int = 10) -> dict[str, Any]:
    """The error indicator's autocorrelation at lags 1..``lags`` and the band of independent errors."""
    e = (~correct).astype(float)
    n = len(e)
    centred = e - e.mean()
    variance = float((centred ** 2).sum())
    values = [float((centred[:-k] * centred[k:]).sum() / variance) if variance > 0 and k < n else 0.0 for k in range(1, lags + 1)]
    band = 1.96 / np.sqrt(max(n, 1))
    return {"lags": list(range(1, lags + 1)), "autocorrelation": values, "band": float(band),
            "significant_lags": [k for k, v in zip(range(1, lags + 1), values) if abs(v) > band]}
