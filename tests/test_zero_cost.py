"""Zero-cost proxies against hand computations, their hands-off contract, and the estimator on every space."""

from __future__ import annotations

import json

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nas
from nas import ConfigError, TrialFailed
from nas.estimators.zero_cost import PROXIES, ZeroCostEstimator, compute, grad_norm, jacov, macs, naswot, params, snip, synflow
from search_spaces.macro_chain import MacroChainSpace


def no_report(step, value, **scalars):
    return False  # never stop: no pruner


def linear(w: list[list[float]], b: list[float] | None = None) -> nn.Linear:
    layer = nn.Linear(len(w[0]), len(w), bias=b is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(w))
        if b is not None:
            layer.bias.copy_(torch.tensor(b))
    return layer


def batch(n: int = 6, features: int = 3, classes: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=g), torch.randint(0, classes, (n,), generator=g)


# ---- each proxy against a value computed by hand ------------------------------------------------
def test_params_and_macs_count_what_the_model_has():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x, y = batch()
    assert params(model, x, y) == 3 * 4 + 4 + 4 * 2 + 2
    assert macs(model, x, y) == 3 * 4 + 4 * 2


@pytest.mark.parametrize("depth", [2, 3])
def test_synflow_of_a_linear_chain_is_depth_times_the_flow(depth):
    # Bias-free linear chain with |W|: R = 1^T |W_L| ... |W_1| 1, and every layer's sum |W * dR/dW| equals R.
    torch.manual_seed(depth)
    sizes = [3, 5, 4, 2][:depth + 1]
    layers = [nn.Linear(a, b, bias=False) for a, b in itertools.pairwise(sizes)]
    flow = torch.ones(sizes[0], dtype=torch.float64)
    for layer in layers:
        flow = layer.weight.detach().double().abs() @ flow
    x, y = batch(features=sizes[0])
    assert synflow(nn.Sequential(*layers), x, y) == pytest.approx(depth * float(flow.sum()), rel=1e-12)


def test_synflow_bypasses_batch_norm_and_ignores_its_statistics():
    torch.manual_seed(0)
    a, b = nn.Linear(3, 4, bias=False), nn.Linear(4, 2, bias=False)
    bn = nn.BatchNorm1d(4)
    with torch.no_grad():  # statistics that would change the value if batch norm were applied
        bn.running_mean.fill_(5.0)
        bn.running_var.fill_(0.01)
        bn.weight.fill_(-3.0)
    x, y = batch()
    assert synflow(nn.Sequential(a, bn, b), x, y) == pytest.approx(synflow(nn.Sequential(a, b), x, y), rel=1e-12)


def test_grad_norm_is_the_norm_of_the_cross_entropy_gradient():
    layer = linear([[0.5, -1.0, 0.2], [0.1, 0.3, -0.7]], [0.1, -0.2])
    x, y = batch()
    # Softmax regression: dL/dW = (softmax(Wx + b) - onehot(y))^T x / n for the mean loss.
    p = torch.softmax(x @ layer.weight.detach().T + layer.bias.detach(), dim=1)
    grad = (p - F.one_hot(y, 2).float()).T @ x / len(y)
    assert grad_norm(layer, x, y) == pytest.approx(float(grad.norm()), rel=1e-5)
    assert snip(layer, x, y) == pytest.approx(float((layer.weight.detach() * grad).abs().sum()), rel=1e-5)


def test_snip_is_zero_for_zero_weights_while_grad_norm_is_not():
    model = nn.Sequential(linear([[0.0, 0.0, 0.0]] * 4, [0.5, 1.0, 0.2, 0.3]), nn.ReLU(), linear([[0.0] * 4] * 2, [0.0, 0.0]))
    x, y = batch()
    assert snip(model, x, y) == 0.0
    assert grad_norm(model, x, y) > 0  # the last layer's weights get a gradient through relu(bias) > 0

    # Zeroing one layer removes exactly its term: the rest is the other layer's |W * dL/dW|.
    first = linear([[0.0, 0.0, 0.0]] * 4, [0.5, 1.0, 0.2, 0.3])
    last = linear([[0.3, -0.2, 0.5, 0.1], [-0.4, 0.6, 0.2, -0.1]], [0.0, 0.1])
    w = last.weight.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(F.linear(torch.relu(first(x)), w, last.bias.detach()), y)
    (g,) = torch.autograd.grad(loss, w)
    assert snip(nn.Sequential(first, nn.ReLU(), last), x, y) == pytest.approx(float((w.detach() * g).abs().sum()), rel=1e-5)


def test_naswot_matches_the_hand_computed_kernel():
    # Codes [1, 0] and [0, 1]: N_A = 2, Hamming distance 2, so K = [[2, 0], [0, 2]] and log det K = log 4.
    model = nn.Sequential(linear([[1.0], [-1.0]], [0.0, 0.0]), nn.ReLU(), linear([[1.0, 1.0]], [0.0]))
    x, y = torch.tensor([[1.0], [-1.0]]), torch.tensor([0, 0])
    assert naswot(model, x, y) == pytest.approx(math.log(4.0), rel=1e-12)


def test_naswot_ranks_dead_relus_below_diverse_patterns_and_falls_back_to_zero():
    x, y = batch(n=16, features=8, classes=3)
    torch.manual_seed(0)
    alive = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
    dead = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 3))
    with torch.no_grad():
        dead[0].weight.zero_()
        dead[0].bias.fill_(-1.0)  # every unit of every example is off: one code for all, K singular
    no_activation = nn.Sequential(nn.Linear(8, 32), nn.Linear(32, 3))
    assert naswot(dead, x, y) == 0.0 and naswot(no_activation, x, y) == 0.0
    assert naswot(alive, x, y) > 10.0  # 16 distinct codes of 128 units: det K far above 1


def test_naswot_codes_non_relu_activations_by_the_sign_of_their_input():
    torch.manual_seed(0)
    x, y = batch(n=8, features=4)
    relu = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
    tanh = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 2))
    tanh.load_state_dict(relu.state_dict())
    assert naswot(tanh, x, y) == pytest.approx(naswot(relu, x, y), rel=1e-12) and naswot(relu, x, y) > 0


def test_jacov_of_a_linear_net_has_identical_jacobians():
    # Every example has the same input Jacobian, so corrcoef is all ones: eigenvalues n and n-1 zeros.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Linear(7, 3))
    x, y = batch(n=6, features=5, classes=3)
    k, n = 1e-5, 6
    expected = -((math.log(n + k) + 1 / (n + k)) + (n - 1) * (math.log(k) + 1 / k))
    assert jacov(model, x, y) == pytest.approx(expected, rel=1e-6)
    assert math.isnan(jacov(nn.Sequential(linear([[0.0] * 5] * 3, [1.0, 2.0, 3.0])), x, y))  # constant: undefined


# ---- proxies leave the model as they found it -----------------------------------------------------
def _snapshot(model: nn.Module) -> tuple[dict[str, torch.Tensor], list[bool]]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, [m.training for m in model.modules()]


@pytest.mark.parametrize("name", list(PROXIES))
@pytest.mark.parametrize("mode", ["train", "eval", "mixed"])
def test_every_proxy_leaves_weights_buffers_grads_modes_and_hooks_unchanged(name, mode):
    space = nas.get_space("macro_chain")
    sample = {"depth": 2, "layer1.op": "conv3x3", "layer1.width": 16, "layer1.skip": True, "layer1.reduce": True,
              "layer2.op": "max_pool3x3", "layer2.skip": False, "layer2.reduce": False, "head.pool": "avg", "head.hidden": 64,
              "head.dropout": 0.2}
    torch.manual_seed(0)
    model = space.build(sample, (1, 8, 8), 10)
    model.train(mode != "eval")
    if mode == "mixed":
        model.stem.eval()
        model.head[2].eval()
    before, modes = _snapshot(model)
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    value = PROXIES[name](model, x, y)
    after, modes_after = _snapshot(model)
    assert math.isfinite(value)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)  # incl. BN statistics
    assert modes_after == modes
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


# ---- degenerate networks do not crash ----------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 40)])
def test_zero_pooling_only_and_all_none_networks_get_defined_values(shape):
    x, y = torch.randn(6, *shape), torch.arange(6) % 3
    pools = MacroChainSpace(ops=["zero", "max_pool3x3", "avg_pool3x3", "identity"], depth=[3])
    sample = {"depth": 3, "head.pool": "max", "head.hidden": 0}
    for i, op in enumerate(["zero", "max_pool3x3", "avg_pool3x3"], start=1):
        sample.update({f"layer{i}.op": op, f"layer{i}.skip": False, f"layer{i}.reduce": True})
    if "layer1.width" in pools.dimensions():
        sample["layer1.width"] = 16
    cell = nas.get_space("cell_nb201")
    none = cell.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    for model in (pools.build(sample, shape, 3), cell.build(none, shape, 3)):
        values = compute(model, x, y)
        assert set(values) == set(PROXIES)
        assert all(math.isfinite(v) for k, v in values.items() if k != "jacov")
        assert values["params"] > 0


# ---- the estimator ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist1d_splits():
    return nas.datasets.mnist1d()


@pytest.mark.parametrize("space_name", nas.available("space"))
@pytest.mark.parametrize("data_name", ["digits", "mnist1d"])
def test_estimator_scores_every_space_on_both_datasets(space_name, data_name, digits_splits, mnist1d_splits):
    data = digits_splits if data_name == "digits" else mnist1d_splits
    space = nas.get_space(space_name)
    estimator = ZeroCostEstimator(space=space, dataset=data, batch_size=8, seed=1)
    rng = np.random.default_rng(0)
    for _ in range(2):
        arch = space.architecture(space.sample(rng))
        evaluation = estimator.evaluate(arch, no_report)
        m = evaluation.metrics
        assert evaluation.score == m["synflow"] and math.isfinite(evaluation.score)
        assert all(name in m and f"{name}_seconds" in m for name in PROXIES)
        assert m["params"] == sum(p.numel() for p in evaluation.model.parameters())
        assert m["seconds"] >= sum(m[f"{name}_seconds"] for name in PROXIES)


def test_same_seed_same_values_and_the_seed_picks_the_minibatch(digits_splits):
    space = nas.get_space("macro_chain")
    arch = space.architecture(space.sample(np.random.default_rng(3)))

    def run(seed):
        metrics = ZeroCostEstimator(space=space, dataset=digits_splits, batch_size=16, seed=seed).evaluate(arch, no_report).metrics
        return {k: v for k, v in metrics.items() if k in PROXIES}

    first = run(0)
    assert run(0) == first
    other = run(1)
    assert other["naswot"] != first["naswot"] and other["params"] == first["params"]


def test_batches_average_data_dependent_proxies(digits_splits):
    space = nas.get_space("mlp")
    arch = space.architecture(space.sample(np.random.default_rng(0)))
    three = ZeroCostEstimator(space=space, dataset=digits_splits, batch_size=8, batches=3, proxies=["naswot", "params"])
    torch.manual_seed(nas.estimators.training.arch_seed(0, arch.key))
    model = space.build(arch.sample, digits_splits.input_shape, 10)
    expected = np.mean([naswot(model, x, y) for x, y in three._minibatches])
    metrics = three.evaluate(arch, no_report).metrics
    assert metrics["naswot"] == pytest.approx(expected, rel=1e-12)
    assert {k for k in metrics if k in PROXIES} == {"synflow", "naswot", "params"}  # the score is always measured
    assert len({tuple(y.tolist()) for _, y in three._minibatches}) == 3


def test_a_non_finite_score_fails_the_trial_with_the_reason(digits_splits):
    cell = nas.get_space("cell_nb201")
    arch = cell.architecture(cell.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"))
    estimator = ZeroCostEstimator(space=cell, dataset=digits_splits, proxy="jacov", proxies=["jacov", "naswot"], batch_size=8)
    with pytest.raises(TrialFailed, match="zero-cost proxy 'jacov' gave no score: jacov is nan"):
        estimator.evaluate(arch, no_report)
    other = ZeroCostEstimator(space=cell, dataset=digits_splits, proxy="naswot", proxies=["jacov"], batch_size=8)
    metrics = other.evaluate(arch, no_report).metrics
    assert metrics["naswot"] == 0.0 and "jacov is nan" in metrics["jacov_error"]


def test_bad_settings_are_config_errors_naming_the_key(digits_splits):
    space = nas.get_space("mlp")
    with pytest.raises(ConfigError, match="Unknown proxy 'synflw'. Did you mean 'synflow'.*Valid names: .*grad_norm.*naswot"):
        ZeroCostEstimator(space=space, dataset=digits_splits, proxy="synflw")
    with pytest.raises(ConfigError, match="Unknown proxy 'fisher'"):
        ZeroCostEstimator(space=space, dataset=digits_splits, proxies=["snip", "fisher"])
    with pytest.raises(ConfigError, match="`proxies` must be a list"):
        ZeroCostEstimator(space=space, dataset=digits_splits, proxies="snip")
    for bad in (1, 0, True, 2.5):
        with pytest.raises(ConfigError, match=rf"`batch_size >= 2` must hold.*but got batch_size={bad!r}"):
            ZeroCostEstimator(space=space, dataset=digits_splits, batch_size=bad)
    with pytest.raises(ConfigError, match="`batches >= 1` must hold, but got batches=0"):
        ZeroCostEstimator(space=space, dataset=digits_splits, batches=0)
    with pytest.raises(ConfigError, match="batch_size=600, batches=2 for 1149 examples of 'digits'"):
        ZeroCostEstimator(space=space, dataset=digits_splits, batch_size=600, batches=2)
    described = ZeroCostEstimator(space=space, dataset=digits_splits, proxy="snip", proxies=["params"]).describe()
    assert described == {"estimator": "zero_cost", "dataset": "digits", "proxy": "snip", "proxies": ["params", "snip"],
                         "batch_size": 64, "batches": 1, "device": "cpu", "seed": 0}


def test_search_with_the_zero_cost_estimator_records_every_proxy(tmp_path, capsys):
    result = nas.search(space="macro_chain", dataset="digits", estimator="zero_cost", trials=5, out_dir=tmp_path,
                        tensorboard=False, overrides=["estimator.proxy=naswot"])
    said = capsys.readouterr().out
    assert "weights.pt holds the best architecture's initial, untrained weights" in said  # what best/ holds, said
    assert json.loads((tmp_path / "best" / "arch.json").read_text())["untrained"] is True
    assert len(result.trials) == 5 and all(r.state == "complete" for r in result.trials)
    for record in result.trials:
        assert all(isinstance(record.metrics[name], float) for name in PROXIES)
        assert record.value == record.metrics["naswot"] and record.cost == record.metrics["seconds"]
    assert result.best.value == max(r.value for r in result.trials)
    model = result.best_model()  # the untrained best architecture, rebuilt from the run directory
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
