"""Cost providers: each passes the contract, the contract rejects broken ones, and the counts are exact."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nas
from nas import ConfigError, TrialFailed
from nas.costs import CostProvider, LatencyCost, MacsCost, MemoryCost, ParamsCost, TableCost, make_providers, measure
from nas.testing import CostProviderContract


class TestParams(CostProviderContract):
    def make_provider(self):
        return ParamsCost()


class TestMacs(CostProviderContract):
    def make_provider(self):
        return MacsCost()


class TestLatency(CostProviderContract):
    def make_provider(self):
        return LatencyCost(warmup=1, repeats=5)


class TestLatencyThroughOnnx(CostProviderContract):
    def make_provider(self):
        pytest.importorskip("onnxruntime")
        return LatencyCost(warmup=1, repeats=5, runtime="onnxruntime")


def test_onnx_latency_is_refused_without_its_packages_and_a_runtime_must_be_named(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"`runtime: onnxruntime` needs the onnx and onnxruntime packages \(pip install 'nas\[onnx\]'\)"):
        LatencyCost(runtime="onnxruntime")
    with pytest.raises(ConfigError, match="cost 'latency': `runtime` must be torch or onnxruntime, but got 'tflite'"):
        LatencyCost(runtime="tflite")


def test_a_network_onnxruntime_cannot_run_fails_its_measure_saying_why():
    pytest.importorskip("onnxruntime")

    class Unexportable(nn.Module):
        def forward(self, x):
            return torch.from_numpy(x.numpy() * 2)  # leaves the graph: the export is a constant, its input gone

    with pytest.raises(TrialFailed, match="cost 'latency': the network's ONNX export does not run under onnxruntime"):
        LatencyCost(warmup=0, repeats=3, runtime="onnxruntime").measure(Unexportable(), (1, 4))


class TestMemory(CostProviderContract):
    def make_provider(self):
        return MemoryCost()


def test_peak_memory_counts_weights_input_and_the_activations_alive_at_once():
    """Two 64-channel maps are alive at the peak (the ReLU's output while the second conv writes its own)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(64, 10))
    weights = sum(p.numel() for p in model.parameters()) * 4
    one_map, image = 64 * 32 * 32 * 4, 3 * 32 * 32 * 4
    got = MemoryCost().measure(model.eval(), (3, 32, 32))["peak_memory_mb"] * 2**20
    assert got == weights + image + 2 * one_map
    bigger = MemoryCost(batch_size=4).measure(model, (3, 32, 32))["peak_memory_mb"] * 2**20
    assert bigger == weights + 4 * image + 8 * one_map
    with pytest.raises(ConfigError, match="cost 'memory': `batch_size` must be an integer >= 1, but got 0"):
        MemoryCost(batch_size=0)


class TestTable(CostProviderContract):
    def make_provider(self):
        return TableCost(metrics=["latency_ms"], table={"Sequential": {"latency_ms": 3.5}}, key_of=lambda s: s["model"])


class OmitsSpread(LatencyCost):
    """Broken: declares a spread but returns the median alone."""

    def measure(self, model, input_shape, *, sample=None):
        return {"latency_ms": super().measure(model, input_shape)["latency_ms"]}


class LeavesTraining(ParamsCost):
    """Broken: times the model in training mode and leaves it so (its batch norm's running statistics move)."""

    def measure(self, model, input_shape, *, sample=None):
        model.train()
        model(torch.randn(4, *input_shape))
        return super().measure(model, input_shape)


class NegativeCount(ParamsCost):
    def measure(self, model, input_shape, *, sample=None):
        return {"params": -1.0}


def contract_of(provider: CostProvider) -> CostProviderContract:
    contract = CostProviderContract()
    contract.make_provider = lambda: provider  # type: ignore[method-assign]
    return contract


def test_the_contract_rejects_broken_providers():
    with pytest.raises(AssertionError, match="declares \\['latency_ms', 'latency_ms_spread'\\] but returned no \\['latency_ms_spread'\\]"):
        contract_of(OmitsSpread(warmup=0, repeats=3)).test_every_metric_comes_back_finite_and_non_negative()
    contract_of(LeavesTraining()).test_every_metric_comes_back_finite_and_non_negative()  # its numbers are fine...
    with pytest.raises(AssertionError, match="left the model in training mode"):
        contract_of(LeavesTraining()).test_measuring_leaves_the_model_as_it_was()  # ...what it does to the model is not
    with pytest.raises(AssertionError, match="`params` must be a finite float >= 0, but got -1.0"):
        contract_of(NegativeCount()).test_every_metric_comes_back_finite_and_non_negative()


def test_params_and_macs_are_exact_for_convolutions_and_linear_layers():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10)).eval()
    got = {**ParamsCost().measure(model, (1, 8, 8)), **MacsCost().measure(model, (1, 8, 8))}
    assert got == {"params": 36 + 256 * 10 + 10, "macs": 8 * 8 * 4 * 9 + 256 * 10}


def test_latency_is_a_median_with_its_spread_and_follows_the_work():
    small, big = (nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10)).eval() for width in (8, 4096))
    timer = LatencyCost(warmup=2, repeats=15, batch_size=32, threads=1)
    threads = torch.get_num_threads()
    fast, slow = timer.measure(small, (64,)), timer.measure(big, (64,))
    assert torch.get_num_threads() == threads  # timed on one thread, and the caller's count given back
    assert 0 < fast["latency_ms"] < slow["latency_ms"] and fast["latency_ms_spread"] >= 0
    assert timer.describe() == {"cost": "latency", "device": "cpu", "batch_size": 32, "warmup": 2, "repeats": 15, "threads": 1,
                                "runtime": "torch"}


def test_measure_builds_once_and_fails_a_broken_promise_naming_the_provider():
    space = nas.get_space("mlp")
    sample = space.complete({})
    costs = measure(make_providers(["params", "macs"]), space, sample, input_shape=(64,), num_classes=10)
    model = space.build(sample, (64,), 10)
    assert costs["params"] == sum(p.numel() for p in model.parameters()) and costs["macs"] > 0 and costs["cost_seconds"] > 0
    with pytest.raises(TrialFailed, match="cost provider 'params': `params` must be a finite number >= 0, but got -1.0"):
        measure([NegativeCount()], space, sample, input_shape=(64,), num_classes=10)
    table = TableCost(metrics=["latency_ms"], table={}, key_of=lambda s: space.key(s))
    with pytest.raises(TrialFailed, match="cost 'table': no row for key '[0-9a-f]{16}' \\(0 rows\\)"):
        measure([table], space, sample, input_shape=(64,), num_classes=10)


def test_a_table_file_gives_costs_by_key(tmp_path):
    (tmp_path / "phone.csv").write_text("arch,latency_ms\na,1.5\nb,7.25\n")
    table = TableCost(metrics=["latency_ms"], path=str(tmp_path / "phone.csv"), key_of=lambda s: s["arch"])
    assert table.measure(None, (1,), sample={"arch": "b"}) == {"latency_ms": 7.25} and not table.needs_model


@pytest.mark.parametrize("spec, message", [
    (["params", "flops"], "Unknown cost 'flops'"),
    ("params", "`costs` must be a list of cost names"),
    ([{"latency": {"repeats": 1}}], "cost 'latency': `repeats` must be an integer >= 3, but got 1."),
    ([{"latency": {"batch": 4}}], "`costs.latency`: .*unexpected keyword argument 'batch'"),
    (["params", "params"], "`costs` must not measure a metric twice"),
    ([{"table": {"metrics": ["latency_ms"]}}], "cost 'table': give exactly one of `table` \\(a mapping\\) or `path` \\(a file\\)"),
])
def test_malformed_cost_declarations_are_refused_naming_the_key(spec, message):
    with pytest.raises(ConfigError, match=message):
        make_providers(spec)
