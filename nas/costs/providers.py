"""The cost providers: parameters and MACs (counted), latency (timed on the named device), a user's table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nas.core.errors import ConfigError, TrialFailed, unknown_name_message
from nas.costs.base import CostProvider


class ParamsCost(CostProvider):
    """``params``: the model's parameter count (exact)."""

    name, metrics = "params", ("params",)

    def measure(self, model: Any, input_shape: Sequence[int], *, sample: Mapping[str, Any] | None = None) -> dict[str, float]:
        from nas.estimators.training import count_params

        return {"params": float(count_params(model))}


class MacsCost(CostProvider):
    """``macs``: multiply-accumulates of convolutions and linear layers in one forward pass on one example
    (exact for those layers; only the modules that run count, so a cell's ``none`` edge costs nothing)."""

    name, metrics = "macs", ("macs",)

    def measure(self, model: Any, input_shape: Sequence[int], *, sample: Mapping[str, Any] | None = None) -> dict[str, float]:
        import torch

        from nas.estimators.training import count_macs

        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        return {"macs": float(count_macs(model, tuple(input_shape), device))}


class LatencyCost(CostProvider):
    """``latency_ms``: the median wall time of a forward pass of ``batch_size`` inputs on ``device`` with
    ``threads`` CPU threads, over ``repeats`` timed passes after ``warmup`` untimed ones (CUDA synchronised
    around each); ``latency_ms_spread`` is their interquartile range. Constraints judge the median."""

    name, metrics = "latency", ("latency_ms", "latency_ms_spread")

    def __init__(self, *, device: str = "cpu", batch_size: int = 1, warmup: int = 5, repeats: int = 20, threads: int | None = 1) -> None:
        for key, value, low in (("batch_size", batch_size, 1), ("warmup", warmup, 0), ("repeats", repeats, 3)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"cost 'latency': `{key}` must be an integer >= {low}, but got {value!r}.")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"cost 'latency': `threads` must be an integer >= 1 or null (every core), but got {threads!r}.")
        from nas.estimators.training import resolve_device

        self.device = resolve_device(device)
        self.batch_size, self.warmup, self.repeats, self.threads = batch_size, warmup, repeats, threads

    def describe(self) -> dict[str, Any]:
        return {"cost": self.name, "device": str(self.device), "batch_size": self.batch_size, "warmup": self.warmup,
                "repeats": self.repeats, "threads": self.threads}

    def measure(self, model: Any, input_shape: Sequence[int], *, sample: Mapping[str, Any] | None = None) -> dict[str, float]:
        import torch

        model = model.to(self.device).eval()
        x = torch.randn(self.batch_size, *input_shape, device=self.device)
        cuda = self.device.type == "cuda"
        previous = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            times = []
            with torch.no_grad():
                for i in range(self.warmup + self.repeats):
                    if cuda:
                        torch.cuda.synchronize(self.device)
                    start = time.perf_counter()
                    model(x)
                    if cuda:
                        torch.cuda.synchronize(self.device)
                    if i >= self.warmup:
                        times.append((time.perf_counter() - start) * 1000.0)
        finally:
            torch.set_num_threads(previous)
        q1, _, q3 = statistics.quantiles(times, n=4)
        return {"latency_ms": statistics.median(times), "latency_ms_spread": q3 - q1}


class TableCost(CostProvider):
    """Costs looked up in the user's table (latencies measured on a phone, say): a mapping of keys to
    ``{metric: value}`` rows, or a ``.csv``/``.json``/``.parquet``/``.pkl`` file (``path``, ``key`` its key
    column); ``key_of`` maps a sample to its row's key. A candidate missing from the table fails its trial."""

    name = "table"
    needs_model = False

    def __init__(self, *, metrics: Sequence[str], table: Mapping[str, Mapping[str, Any]] | None = None, path: str | None = None,
                 key: str = "arch", key_of: Callable[[Mapping[str, Any]], Any] | None = None) -> None:
        if (table is None) == (path is None):
            raise ConfigError("cost 'table': give exactly one of `table` (a mapping) or `path` (a file), "
                              f"but got table={'set' if table is not None else None} and path={path!r}.")
        if isinstance(metrics, str) or not metrics:
            raise ConfigError(f"cost 'table': `metrics` must list the columns to record (e.g. [latency_ms]), but got {metrics!r}.")
        if key_of is None:
            raise ConfigError("cost 'table': `key_of` must map a sample to its row's key (the `_target_` of a function).")
        if path is not None:
            from nas.estimators.table_file import read_rows

            table = read_rows(path, key=key)
        self.table: Mapping[str, Mapping[str, Any]] = table  # type: ignore[assignment]
        self.metrics, self.key_of = tuple(metrics), key_of

    def measure(self, model: Any, input_shape: Sequence[int], *, sample: Mapping[str, Any] | None = None) -> dict[str, float]:
        key = self.key_of(dict(sample or {}))
        row = self.table.get(key) if isinstance(key, str) else self.table.get(str(key))
        if row is None:
            raise TrialFailed(f"cost 'table': no row for key {key!r} ({len(self.table):,} rows).")
        try:
            return {m: float(row[m]) for m in self.metrics}
        except KeyError as exc:
            raise TrialFailed(f"cost 'table': row {key!r} has no column {exc.args[0]!r}; it has {sorted(row)}.") from None


#: Providers by name, for ``costs: [params, macs, latency]``.
PROVIDERS: dict[str, type[CostProvider]] = {"params": ParamsCost, "macs": MacsCost, "latency": LatencyCost, "table": TableCost}


def make_providers(spec: Sequence[str | Mapping[str, Any]]) -> list[CostProvider]:
    """Providers from names (``"params"``) or ``{name: {options}}`` mappings (``{"latency": {"repeats": 50}}``)."""
    if isinstance(spec, str) or not isinstance(spec, Sequence):
        raise ConfigError(f"`costs` must be a list of cost names ({', '.join(PROVIDERS)}) or {{name: options}}, but got {spec!r}.")
    out: list[CostProvider] = []
    for item in spec:
        name, options = (item, {}) if isinstance(item, str) else next(iter(item.items())) if isinstance(item, Mapping) and len(item) == 1 \
            else (None, None)
        if name not in PROVIDERS:
            raise ConfigError("`costs`: " + unknown_name_message("cost", str(name if name is not None else item), PROVIDERS))
        if not isinstance(options, Mapping):
            raise ConfigError(f"`costs.{name}` options must be a mapping, but got {options!r}.")
        try:
            out.append(PROVIDERS[name](**dict(options)))
        except TypeError as exc:  # an unknown option
            raise ConfigError(f"`costs.{name}`: {exc}.") from None
    names = [m for p in out for m in p.metrics]
    if len(set(names)) != len(names):
        raise ConfigError(f"`costs` must not measure a metric twice, but got {names}.")
    return out
