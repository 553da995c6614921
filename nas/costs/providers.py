"""The cost providers: parameters and MACs (counted), latency (timed on the named device), peak memory of a
forward pass, a user's table."""

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
    around each); ``latency_ms_spread`` is their interquartile range. Constraints judge the median.

    ``runtime="onnxruntime"`` times the network as it would be deployed instead: exported to ONNX (PyTorch's
    TorchScript-based exporter, in memory) and run by an onnxruntime session with ``threads`` intra-op
    threads (its CUDA provider on a CUDA ``device``). It needs the ``onnx`` and ``onnxruntime`` packages
    (``pip install 'nas[onnx]'``); a network that does not export fails its trial, saying why."""

    name, metrics = "latency", ("latency_ms", "latency_ms_spread")

    def __init__(self, *, device: str = "cpu", batch_size: int = 1, warmup: int = 5, repeats: int = 20, threads: int | None = 1,
                 runtime: str = "torch") -> None:
        for key, value, low in (("batch_size", batch_size, 1), ("warmup", warmup, 0), ("repeats", repeats, 3)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"cost 'latency': `{key}` must be an integer >= {low}, but got {value!r}.")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"cost 'latency': `threads` must be an integer >= 1 or null (every core), but got {threads!r}.")
        if runtime not in ("torch", "onnxruntime"):
            raise ConfigError(f"cost 'latency': `runtime` must be torch or onnxruntime, but got {runtime!r}.")
        if runtime == "onnxruntime":
            import importlib.util

            missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]  # the exporter needs onnx
            if missing:
                raise ConfigError(f"cost 'latency': `runtime: onnxruntime` needs the onnx and onnxruntime packages "
                                  f"(pip install 'nas[onnx]'), but {' and '.join(missing)} is not installed.")
        from nas.estimators.training import resolve_device

        self.device = resolve_device(device)
        self.batch_size, self.warmup, self.repeats, self.threads = batch_size, warmup, repeats, threads
        self.runtime = runtime

    def describe(self) -> dict[str, Any]:
        return {"cost": self.name, "device": str(self.device), "batch_size": self.batch_size, "warmup": self.warmup,
                "repeats": self.repeats, "threads": self.threads, "runtime": self.runtime}

    def measure(self, model: Any, input_shape: Sequence[int], *, sample: Mapping[str, Any] | None = None) -> dict[str, float]:
        if self.runtime == "onnxruntime":
            return self._through_onnx(model, input_shape)
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
        return _median_and_spread(times)

    def _through_onnx(self, model: Any, input_shape: Sequence[int]) -> dict[str, float]:
        import tempfile
        import warnings
        from pathlib import Path

        import onnxruntime
        import torch

        x = torch.randn(self.batch_size, *input_shape)
        with tempfile.TemporaryDirectory(prefix="nas-onnx-") as folder:
            path = Path(folder) / "model.onnx"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
                    torch.onnx.export(model.cpu().eval(), (x,), str(path), dynamo=False, input_names=["x"], output_names=["y"])
            except Exception as exc:
                raise TrialFailed(f"cost 'latency': the network does not export to ONNX ({type(exc).__name__}: {exc})") from None
            exported = path.read_bytes()
        options = onnxruntime.SessionOptions()
        if self.threads is not None:
            options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if self.device.type == "cuda" else ["CPUExecutionProvider"]
        feed = {"x": x.numpy()}
        try:
            session = onnxruntime.InferenceSession(exported, options, providers=providers)
            session.run(None, feed)
        except Exception as exc:  # exported, but not as a network of this input (a graph that dropped it, an unknown op)
            raise TrialFailed(f"cost 'latency': the network's ONNX export does not run under onnxruntime ({type(exc).__name__}: {exc})") from None
        times = []
        for i in range(self.warmup + self.repeats):
            start = time.perf_counter()
            session.run(None, feed)
            if i >= self.warmup:
                times.append((time.perf_counter() - start) * 1000.0)
        return _median_and_spread(times)


def _median_and_spread(times: Sequence[float]) -> dict[str, float]:
    """``latency_ms`` (the median of ``times``) and ``latency_ms_spread`` (their interquartile range)."""
    q1, _, q3 = statistics.quantiles(times, n=4)
    return {"latency_ms": statistics.median(times), "latency_ms_spread": q3 - q1}


class MemoryCost(CostProvider):
    """``peak_memory_mb``: the most memory the model's tensors hold at once in a forward pass of ``batch_size``
    inputs on ``device``: weights and buffers, the input, and every activation alive at the peak (MiB). On
    CUDA it is the allocator's own peak (``torch.cuda.max_memory_allocated``); on CPU, every tensor an
    operation creates is counted until its storage is freed (a dispatch mode sees each one), which is exact
    for tensors and leaves out the allocator's overhead."""

    name, metrics = "memory", ("peak_memory_mb",)

    def __init__(self, *, device: str = "cpu", batch_size: int = 1) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"cost 'memory': `batch_size` must be an integer >= 1, but got {batch_size!r}.")
        from nas.estimators.training import resolve_device

        self.device, self.batch_size = resolve_device(device), batch_size

    def describe(self) -> dict[str, Any]:
        return {"cost": self.name, "device": str(self.device), "batch_size": self.batch_size}

    def measure(self, model: Any, input_shape: Sequence[int], *, sample: Mapping[str, Any] | None = None) -> dict[str, float]:
        import torch

        model = model.to(self.device).eval()
        x = torch.randn(self.batch_size, *input_shape, device=self.device)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            with torch.no_grad():
                model(x)
            torch.cuda.synchronize(self.device)
            return {"peak_memory_mb": torch.cuda.max_memory_allocated(self.device) / 2**20}
        resident = sum(t.untyped_storage().nbytes() for t in {id(t): t for t in [*model.parameters(), *model.buffers()]}.values())
        counter = _LiveTensors()
        with torch.no_grad(), counter:
            model(x)
        return {"peak_memory_mb": (resident + x.untyped_storage().nbytes() + counter.peak) / 2**20}


class _LiveTensors:
    """A dispatch mode that counts the bytes of every storage an operation creates until it is freed; ``peak``
    is the most alive at once. Built on first use (torch imported lazily)."""

    def __new__(cls) -> Any:
        import weakref

        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_flatten

        class LiveTensors(TorchDispatchMode):
            def __init__(self) -> None:
                super().__init__()
                self.live: dict[int, int] = {}
                self.now = self.peak = 0

            def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                out = func(*args, **(kwargs or {}))
                for tensor in tree_flatten(out)[0]:
                    if not hasattr(tensor, "untyped_storage"):
                        continue
                    storage = tensor.untyped_storage()
                    pointer, size = storage.data_ptr(), storage.nbytes()
                    if size == 0 or pointer in self.live:
                        continue  # a view of a storage already counted, or nothing
                    self.live[pointer] = size
                    self.now += size
                    self.peak = max(self.peak, self.now)
                    weakref.finalize(storage, self._free, pointer)
                return out

            def _free(self, pointer: int) -> None:
                self.now -= self.live.pop(pointer, 0)

        return LiveTensors()


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
PROVIDERS: dict[str, type[CostProvider]] = {"params": ParamsCost, "macs": MacsCost, "latency": LatencyCost, "memory": MemoryCost,
                                            "table": TableCost}


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
