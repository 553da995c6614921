"""Cost providers: a candidate's deployment costs measured without training it (params, MACs, latency, peak memory, a table).

Each provider is a small plug-in with one contract (:class:`CostProvider`, checked by
:class:`nas.testing.CostProviderContract`): ``measure(model, input_shape)`` returns its metrics, finite and
non-negative. A measured latency comes with its spread (``latency_ms`` is the median over the repeats,
``latency_ms_spread`` their interquartile range), and a constraint on it is judged on the median.

    from nas.costs import make_providers, measure
    providers = make_providers(["params", "macs", "latency"])
    costs = measure(providers, space, sample, input_shape=(1, 8, 8), num_classes=10)
"""

from __future__ import annotations

from nas.costs.base import CostProvider, measure
from nas.costs.providers import PROVIDERS, LatencyCost, MacsCost, MemoryCost, ParamsCost, TableCost, make_providers

__all__ = ["PROVIDERS", "CostProvider", "LatencyCost", "MacsCost", "MemoryCost", "ParamsCost", "TableCost", "make_providers",
           "measure"]
