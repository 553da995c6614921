"""The cost-provider contract, and :func:`measure`: one model built, every provider asked."""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from nas.core.errors import TrialFailed
from nas.core.space import SearchSpace


class CostProvider(ABC):
    """Measures some of a candidate's costs without training it.

    - :attr:`metrics` names what :meth:`measure` returns (every one of them, each a finite float >= 0);
    - :meth:`measure` is called once per candidate, on the freshly built (untrained) model in eval mode,
      before any training: a candidate breaking a constraint on these metrics is never trained;
    - a provider that looks its metrics up instead of measuring them sets :attr:`needs_model` to ``False``
      and reads ``sample`` (the model is then not built for it).
    """

    #: Registry name (``costs: [params, latency]``).
    name: str = "cost"
    #: The metrics :meth:`measure` returns.
    metrics: tuple[str, ...] = ()
    #: Whether :meth:`measure` needs the built model (a table lookup does not).
    needs_model: bool = True

    @abstractmethod
    def measure(self, model: Any, input_shape: Sequence[int], *, sample: Mapping[str, Any] | None = None) -> dict[str, float]:
        """This provider's metrics for ``model`` (``None`` where :attr:`needs_model` is false) taking ``(batch, *input_shape)``."""

    def describe(self) -> dict[str, Any]:
        return {"cost": self.name}


def measure(providers: Sequence[CostProvider], space: SearchSpace, sample: Mapping[str, Any], *, input_shape: Sequence[int],
            num_classes: int) -> dict[str, float]:
    """Every provider's metrics for ``sample``, the model built once (only if a provider needs it), plus
    ``cost_seconds``: the time it all took. A provider's broken promise (a missing, negative or non-finite
    metric) fails the trial, naming the provider."""
    start = time.perf_counter()
    model = None
    if any(p.needs_model for p in providers):
        model = space.build(sample, tuple(input_shape), num_classes)
        model.eval()
    out: dict[str, float] = {}
    for provider in providers:
        got = provider.measure(model if provider.needs_model else None, tuple(input_shape), sample=sample)
        missing = [m for m in provider.metrics if m not in got]
        if missing:
            raise TrialFailed(f"cost provider '{provider.name}' promised {list(provider.metrics)} but did not return {missing}.")
        for metric, value in got.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise TrialFailed(f"cost provider '{provider.name}': `{metric}` must be a finite number >= 0, but got {value!r}.")
            out[metric] = float(value)
    out["cost_seconds"] = time.perf_counter() - start
    return out
