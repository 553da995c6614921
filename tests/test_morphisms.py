"""Network morphisms: every primitive preserves a non-trivial parent's function (eval mode, random weights,
random BatchNorm affine and running statistics), leaves its inputs alone, and yields a trainable child."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas import ConfigError
from nas.inheritance.morphisms import (
    Inheritance,
    ZeroInitSum,
    add_zero_branch,
    identity_,
    identity_layer,
    inherit_matching,
    merge_weight,
    net2wider,
    pad_kernel,
    parameter_fraction,
    passthrough_bn_,
    preservation_error,
    replicate_out,
    select_weight,
    split_in,
    sum_of_ops,
    widen_kernel,
    wider_mapping,
    zero_output_,
)

TOL = 1e-5
NDIMS = [0, 1, 2]  # Linear, Conv1d, Conv2d


# ---- helpers -------------------------------------------------------------------------------------
def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randomise(net: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights, random BN affine AND random running statistics, so nothing preserves by accident."""
    g = _gen(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                if m.affine:
                    m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 1.5 + 0.5)
                m.num_batches_tracked.fill_(7)
            elif isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.weight[0].numel() ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g))
    return net


def _layer(ndim: int, c_in: int, c_out: int, **kw) -> nn.Module:
    if ndim == 0:
        return nn.Linear(c_in, c_out, **kw)
    conv = nn.Conv2d if ndim == 2 else nn.Conv1d
    return conv(c_in, c_out, kw.pop("kernel", 3), padding=kw.pop("padding", 1), **kw)


def _bn(ndim: int, c: int, **kw) -> nn.Module:
    return nn.BatchNorm2d(c, **kw) if ndim == 2 else nn.BatchNorm1d(c, **kw)


def _inputs(ndim: int, c: int, seed: int = 1) -> torch.Tensor:
    shape = {0: (16, c), 1: (4, c, 9), 2: (3, c, 7, 6)}[ndim]
    return torch.randn(shape, generator=_gen(seed))


def _state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _same_state(net: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    now = net.state_dict()
    return now.keys() == state.keys() and all(torch.equal(now[k], state[k]) for k in state)


# ---- tensor helpers ------------------------------------------------------------------------------
def test_wider_mapping_prefix_range_and_determinism() -> None:
    m = wider_mapping(3, 20, generator=_gen(5))
    assert m.dtype == torch.long and m.shape == (20,)
    assert m[:3].tolist() == [0, 1, 2]
    assert 0 <= int(m.min()) and int(m.max()) < 3
    assert torch.equal(m, wider_mapping(3, 20, generator=_gen(5)))
    assert not torch.equal(m, wider_mapping(3, 20, generator=_gen(6)))
    assert wider_mapping(4, 4).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(("old", "new"), [(4, 3), (0, 2), (2, 0)])
def test_wider_mapping_rejects(old: int, new: int) -> None:
    with pytest.raises(ConfigError, match="must"):
        wider_mapping(old, new)


def test_replicate_out_and_split_in_without_noise() -> None:
    w = torch.randn(3, 5)
    m = torch.tensor([0, 1, 2, 0, 0, 2])
    r = replicate_out(w, m)
    assert r.shape == (6, 5) and torch.equal(r[3], w[0]) and torch.equal(r[5], w[2])
    c = torch.randn(4, 3, 2)
    s = split_in(c, m)
    assert s.shape == (4, 6, 2)
    assert torch.allclose(s[:, 0], c[:, 0] / 3) and torch.allclose(s[:, 2], c[:, 2] / 2)
    assert torch.equal(s[:, 1], c[:, 1])  # a group of one is untouched
    # x @ replicated equals x @ original when the consumer splits: the identity behind net2wider
    x = torch.randn(7, 3)
    assert torch.allclose(x[:, m] @ split_in(c[..., 0], m).T, x @ c[..., 0].T, atol=1e-6)


def test_split_in_noise_keeps_group_sums_and_breaks_symmetry() -> None:
    c = torch.randn(4, 3)
    m = torch.tensor([0, 1, 2, 0, 0, 2])
    s = split_in(c, m, noise=0.1, generator=_gen(3))
    for k in range(3):
        assert torch.allclose(s[:, m == k].sum(dim=1), c[:, k], atol=1e-6)
    assert torch.equal(s[:, 1], c[:, 1])  # a group of one gets eps = 0
    assert not torch.allclose(s[:, 0], s[:, 3])  # copies of one source now differ
    assert torch.equal(s, split_in(c, m, noise=0.1, generator=_gen(3)))
    # noise along another dim, for a weight stored the other way round
    s0 = split_in(c.T, m, dim=0, noise=0.1, generator=_gen(3))
    assert torch.allclose(s0, s.T)


def test_split_in_rejects_bad_mapping_and_noise() -> None:
    c = torch.randn(4, 3)
    with pytest.raises(ConfigError, match=r"0 <= mapping\[j\] < 3"):
        split_in(c, torch.tensor([0, 3]))
    with pytest.raises(ConfigError, match="integer"):
        split_in(c, torch.tensor([0.0, 1.0]))
    with pytest.raises(ConfigError, match="noise"):
        split_in(c, torch.tensor([0, 1, 2]), noise=-0.1)
    with pytest.raises(ConfigError, match="dim"):
        split_in(c, torch.tensor([0, 1, 2]), dim=2)


@pytest.mark.parametrize("shape", [(2, 3, 3), (2, 1, 3, 3), (2, 3, 1), (2, 3, 1, 1)])
def test_pad_kernel_centres_the_old_kernel(shape: tuple[int, ...]) -> None:
    w = torch.randn(shape)
    k = shape[-1]
    p = pad_kernel(w, k + 4)
    assert p.shape == (*shape[:2], *([k + 4] * (len(shape) - 2)))
    centre = (slice(None), slice(None), *([slice(2, 2 + k)] * (len(shape) - 2)))
    assert torch.equal(p[centre], w)
    assert p.abs().sum() == pytest.approx(float(w.abs().sum()), rel=1e-6)  # the rest is zero


@pytest.mark.parametrize(("kernel", "match"), [(4, "odd"), (1, "kernel >= current")])
def test_pad_kernel_rejects(kernel: int, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        pad_kernel(torch.randn(2, 2, 3, 3), kernel)


@pytest.mark.parametrize("ndim", NDIMS)
def test_select_and_merge_are_inverse(ndim: int) -> None:
    m = torch.tensor([0, 1, 2, 3, 1, 1, 3])
    s, g = select_weight(m, 4, ndim), merge_weight(m, 4, ndim)
    assert s.shape == (7, 4, *([1] * ndim)) and g.shape == (4, 7, *([1] * ndim))
    s2, g2 = s.reshape(7, 4), g.reshape(4, 7)
    assert torch.allclose(g2 @ s2, torch.eye(4))
    assert g2[1, 4] == pytest.approx(1 / 3) and s2[6, 3] == 1
    x = _inputs(ndim, 4)
    if ndim == 0:
        copied = F.linear(x, s)
        back = F.linear(copied, g)
    else:
        conv = F.conv2d if ndim == 2 else F.conv1d
        copied = conv(x, s)
        back = conv(copied, g)
    assert torch.allclose(copied, x[:, m])  # channel mapping[j] lands on j
    assert torch.allclose(back, x, atol=1e-6)


def test_select_weight_rejects_ndim() -> None:
    with pytest.raises(ConfigError, match="ndim"):
        select_weight(torch.tensor([0, 1]), 2, 3)


# ---- in-place initialisers -----------------------------------------------------------------------
@pytest.mark.parametrize(("ndim", "kernel", "dilation"), [(0, 1, 1), (1, 3, 1), (2, 3, 1), (2, 5, 2), (1, 3, 3)])
def test_identity_(ndim: int, kernel: int, dilation: int) -> None:
    if ndim == 0:
        layer = nn.Linear(5, 5)
    else:
        layer = _layer(ndim, 5, 5, kernel=kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
    _randomise(layer)
    x = _inputs(ndim, 5)
    assert preservation_error(nn.Identity(), identity_(layer), x) <= TOL
    assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("layer", [nn.Linear(3, 4), nn.Conv2d(4, 4, 2), nn.Conv1d(4, 4, 3, groups=2, padding=1),
                                   nn.Conv1d(4, 4, 3), nn.Conv1d(4, 4, 3, padding=1, stride=2), nn.ReLU()])
def test_identity_rejects(layer: nn.Module) -> None:
    with pytest.raises(ConfigError, match="must"):
        identity_(layer)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("eps", [1e-5, 0.1])  # a large eps shows the sqrt(1 + eps) correction matters
def test_passthrough_bn_(affine: bool, eps: float) -> None:
    bn = _randomise(nn.BatchNorm1d(6, affine=affine, eps=eps))
    passthrough_bn_(bn)
    assert int(bn.num_batches_tracked) == 7  # kept
    assert torch.count_nonzero(bn.running_mean) == 0
    if affine:
        assert torch.allclose(bn.running_var, torch.ones(6)) and torch.allclose(bn.weight, torch.full((6,), (1 + eps) ** 0.5))
    assert preservation_error(nn.Identity(), bn, _inputs(1, 6)) <= TOL


def test_zero_output_zeroes_last_bn_or_last_layer() -> None:
    x = _inputs(2, 3)
    net = _randomise(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()))
    conv_weight = net[0].weight.detach().clone()
    zero_output_(net).eval()
    assert torch.count_nonzero(net[1].weight) == 0 and torch.count_nonzero(net[1].bias) == 0
    assert torch.equal(net[0].weight, conv_weight)  # layers before the BN keep their weights
    assert torch.count_nonzero(net(x)) == 0
    net = _randomise(nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1)))
    zero_output_(net).eval()
    assert torch.count_nonzero(net[3].weight) == 0 and torch.count_nonzero(net[3].bias) == 0
    assert torch.count_nonzero(net[0].weight) == 3  # an earlier BN is not the last layer
    assert torch.count_nonzero(net(x)) == 0


@pytest.mark.parametrize("module", [nn.ReLU(), nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1)),
                                    nn.Sequential(nn.Conv1d(2, 2, 1), nn.BatchNorm1d(2, affine=False))])
def test_zero_output_rejects(module: nn.Module) -> None:
    with pytest.raises(ConfigError, match="must"):
        zero_output_(module)


# ---- net2wider -----------------------------------------------------------------------------------
@pytest.mark.parametrize("noise", [0.0, 0.1])
@pytest.mark.parametrize("ndim", NDIMS)
def test_net2wider_layer_to_layer(ndim: int, noise: float) -> None:
    parent = _randomise(nn.Sequential(_layer(ndim, 3, 4), _bn(ndim, 4), nn.ReLU(), _layer(ndim, 4, 5)), seed=ndim)
    before = _state(parent)
    layer, bn, consumer = net2wider(parent[0], parent[3], width=7, bn=parent[1], noise=noise, generator=_gen(1))
    child = nn.Sequential(layer, bn, nn.ReLU(), consumer)
    assert layer.weight.shape[0] == 7 and bn.num_features == 7 and consumer.weight.shape[1] == 7
    assert int(bn.num_batches_tracked) == 7
    assert preservation_error(parent, child, _inputs(ndim, 3)) <= TOL
    assert _same_state(parent, before)  # the parent is untouched
    # each new unit copies an old one (weights and BN statistics); its consumer column equals the
    # source's exactly without noise and differs with it
    for j in range(4, 7):
        k = next(k for k in range(4) if torch.equal(layer.weight[j], layer.weight[k]))
        assert bn.running_mean[j] == bn.running_mean[k] and bn.weight[j] == bn.weight[k]
        assert torch.equal(consumer.weight[:, j], consumer.weight[:, k]) == (noise == 0.0)


@pytest.mark.parametrize("noise", [0.0, 0.1])
@pytest.mark.parametrize("ndim", [1, 2])
def test_net2wider_conv_global_pool_linear(ndim: int, noise: float) -> None:
    pool = nn.AdaptiveAvgPool2d(1) if ndim == 2 else nn.AdaptiveAvgPool1d(1)
    parent = _randomise(nn.Sequential(_layer(ndim, 3, 4), _bn(ndim, 4), nn.ReLU(), pool, nn.Flatten(), nn.Linear(4, 5)))
    layer, bn, consumer = net2wider(parent[0], parent[5], width=9, bn=parent[1], noise=noise, generator=_gen(2))
    child = nn.Sequential(layer, bn, nn.ReLU(), pool, nn.Flatten(), consumer)
    assert isinstance(consumer, nn.Linear) and consumer.in_features == 9
    assert preservation_error(parent, child, _inputs(ndim, 3)) <= TOL


def test_net2wider_without_bn_keeps_training_flags() -> None:
    parent = _randomise(nn.Sequential(nn.Conv1d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv1d(3, 2, 1)))
    parent[2].eval()
    layer, bn, consumer = net2wider(parent[0], parent[2], width=5)
    assert bn is None and layer.training and not consumer.training
    assert preservation_error(parent, nn.Sequential(layer, nn.ReLU(), consumer), _inputs(1, 2)) <= TOL


def test_net2wider_rejects() -> None:
    a, b = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 5, 1)
    with pytest.raises(ConfigError, match=r"width >= out_channels.*width=3"):
        net2wider(a, b, width=3)
    with pytest.raises(ConfigError, match="groups == 1"):
        net2wider(nn.Conv2d(4, 4, 3, groups=2), b, width=6)
    with pytest.raises(ConfigError, match="groups == 1"):
        net2wider(a, nn.Conv2d(4, 4, 3, groups=4), width=6)
    with pytest.raises(ConfigError, match="in == 4"):
        net2wider(a, nn.Linear(16, 2), width=6)  # a flatten without global pool
    with pytest.raises(ConfigError, match="num_features == 4"):
        net2wider(a, b, width=6, bn=nn.BatchNorm2d(5))
    with pytest.raises(ConfigError, match="must be an nn.Linear"):
        net2wider(nn.ReLU(), b, width=6)


# ---- net2deeper ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("ndim", "kernel"), [(0, 3), (1, 3), (2, 3), (2, 5)])
def test_identity_layer_after_relu(ndim: int, kernel: int) -> None:
    parent = _randomise(nn.Sequential(_layer(ndim, 3, 4), _bn(ndim, 4), nn.ReLU(), _layer(ndim, 4, 2)))
    deeper = identity_layer(4, ndim=ndim, kernel=kernel)
    child = nn.Sequential(*parent[:3], deeper, parent[3])
    assert preservation_error(parent, child, _inputs(ndim, 3)) <= TOL
    assert isinstance(deeper[-1], nn.ReLU) and deeper[0].bias is None  # Conv/Linear-BN-ReLU, no bias before BN


@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize("batch_norm", [True, False])
def test_identity_layer_without_activation_is_identity_everywhere(ndim: int, batch_norm: bool) -> None:
    x = _inputs(ndim, 4)  # signed inputs
    assert preservation_error(nn.Identity(), identity_layer(4, ndim=ndim, batch_norm=batch_norm, activation=False), x) <= TOL
    # with its ReLU it is only the identity on non-negative inputs, as documented
    assert preservation_error(nn.Identity(), identity_layer(4, ndim=ndim, batch_norm=batch_norm), x) > 0.1
    assert preservation_error(nn.Identity(), identity_layer(4, ndim=ndim, batch_norm=batch_norm), x.relu()) <= TOL


def test_identity_layer_rejects_even_kernel() -> None:
    with pytest.raises(ConfigError, match="odd"):
        identity_layer(4, ndim=2, kernel=4)


# ---- widen_kernel --------------------------------------------------------------------------------
@pytest.mark.parametrize(("ndim", "old", "new", "kw"), [
    (2, 3, 5, {}),
    (1, 1, 3, {"padding": 0}),
    (2, 3, 7, {"dilation": 2, "padding": 2}),
    (2, 3, 5, {"groups": 4}),  # depthwise
    (1, 3, 5, {"stride": 2}),
    (2, 3, 5, {"padding": "same", "bias": False}),
    (1, 3, 5, {"padding_mode": "circular"}),
    (1, 3, 5, {"padding": 0}),  # a conv that shrinks the input shrinks it the same after widening
])
def test_widen_kernel(ndim: int, old: int, new: int, kw: dict) -> None:
    kw = dict(kw)
    conv = _layer(ndim, 4, 4, kernel=old, padding=kw.pop("padding", 1), **kw)
    parent = _randomise(nn.Sequential(conv, _bn(ndim, 4), nn.ReLU()))
    wide = widen_kernel(conv, new)
    assert wide.kernel_size == (new,) * ndim and wide.groups == conv.groups and wide.stride == conv.stride
    assert (wide.bias is None) == (conv.bias is None) and wide.padding_mode == conv.padding_mode
    if conv.padding != "same" and conv.padding == tuple(conv.dilation[0] * (old - 1) // 2 for _ in range(ndim)):
        assert wide.padding == (conv.dilation[0] * (new - 1) // 2,) * ndim  # the spec's formula for size-keeping convs
    child = nn.Sequential(wide, *parent[1:])
    assert preservation_error(parent, child, _inputs(ndim, 4)) <= TOL
    assert conv.kernel_size == (old,) * ndim  # the input is untouched


@pytest.mark.parametrize("kernel", [4, 1])
def test_widen_kernel_rejects(kernel: int) -> None:
    with pytest.raises(ConfigError, match="kernel"):
        widen_kernel(nn.Conv2d(2, 2, 3, padding=1), kernel)


# ---- zero-initialised sums -----------------------------------------------------------------------
@pytest.mark.parametrize("ndim", NDIMS)
def test_add_zero_branch(ndim: int) -> None:
    main = _randomise(nn.Sequential(_layer(ndim, 4, 4), _bn(ndim, 4), nn.ReLU()), seed=1)
    branch = _randomise(nn.Sequential(_layer(ndim, 4, 4), _bn(ndim, 4)), seed=2)
    branch_state = _state(branch)
    child = add_zero_branch(main, branch)
    assert isinstance(child, ZeroInitSum) and child.main is not main and child.branch is not branch
    assert _same_state(branch, branch_state)  # the zeroing hit the copy
    assert torch.count_nonzero(child.branch[1].weight) == 0
    assert preservation_error(main, child, _inputs(ndim, 4)) <= TOL


@pytest.mark.parametrize("ndim", [1, 2])
def test_sum_of_ops_starts_as_the_old_op(ndim: int) -> None:
    old = _randomise(nn.Sequential(nn.ReLU(), _layer(ndim, 4, 4), _bn(ndim, 4)), seed=3)
    new = _randomise(nn.Sequential(nn.ReLU(), _layer(ndim, 4, 4, kernel=1, padding=0)), seed=4)  # no BN: the conv is zeroed
    child = sum_of_ops(old, new)
    assert torch.count_nonzero(child.branch[1].weight) == 0 and torch.count_nonzero(child.branch[1].bias) == 0
    assert torch.count_nonzero(new[1].weight) > 0
    assert preservation_error(old, child, _inputs(ndim, 4)) <= TOL


def test_zero_branch_child_is_trainable() -> None:
    main = _randomise(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU()), seed=5)
    branch = _randomise(nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)), seed=6)
    child = add_zero_branch(main, branch)
    x, target = _inputs(2, 3, seed=7), _inputs(2, 3, seed=8)
    assert preservation_error(main, child, x) <= TOL
    optimiser = torch.optim.SGD(child.parameters(), lr=0.1)
    child.train()
    loss = F.mse_loss(child(x), target)
    loss.backward()
    assert child.branch[1].weight.grad is not None and child.branch[1].weight.grad.abs().sum() > 0
    optimiser.step()
    assert torch.count_nonzero(child.branch[1].weight) > 0  # gradients reached the zeroed BN
    assert preservation_error(main, child, x) > 1e-4  # the outputs now differ


def test_net2wider_child_is_trainable_and_copies_diverge() -> None:
    parent = _randomise(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)))
    layer, bn, consumer = net2wider(parent[0], parent[3], width=6, bn=parent[1], noise=0.1, generator=_gen(0))
    child = nn.Sequential(layer, bn, nn.ReLU(), consumer)
    x = _inputs(0, 3)
    copies = [(j, next(k for k in range(4) if torch.equal(layer.weight[j], layer.weight[k]))) for j in (4, 5)]
    optimiser = torch.optim.SGD(child.parameters(), lr=0.5)
    F.cross_entropy(child(x), torch.arange(16) % 2).backward()
    optimiser.step()
    assert all(not torch.allclose(layer.weight[j], layer.weight[k]) for j, k in copies)  # noise broke the symmetry
    assert preservation_error(parent, child, x) > 1e-4


# ---- preservation_error and inheritance ----------------------------------------------------------
def test_preservation_error_restores_each_flag_and_detects_change() -> None:
    a = nn.Sequential(nn.BatchNorm1d(3), nn.Dropout(0.5), nn.Linear(3, 2))
    a[1].eval()
    b = _randomise(copy.deepcopy(a), seed=9)
    b.eval()
    b[2].train()
    x = _inputs(0, 3)
    assert preservation_error(a, a, x) == 0.0  # dropout and batch statistics are off in eval mode
    assert preservation_error(a, b, x) > 0.1
    assert [m.training for m in a.modules()] == [True, True, False, True]
    assert [m.training for m in b.modules()] == [False, False, False, True]
    with pytest.raises(ConfigError, match="same shape"):
        preservation_error(a, nn.Linear(3, 4), x)


def test_inherit_matching_fraction_is_exact() -> None:
    parent = _randomise(nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)))
    child = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 5))
    fresh_head = child[3].weight.detach().clone()
    parent_state = _state(parent)
    result = inherit_matching(child, parent.state_dict())
    assert isinstance(result, Inheritance)
    assert result.copied == ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                             "1.num_batches_tracked")
    assert result.fresh == ("3.weight", "3.bias")
    # parameters: 24 + 6 + 6 + 6 inherited of 24 + 6 + 6 + 6 + 30 + 5; buffers do not count
    assert result.fraction == 42 / 77
    assert parameter_fraction(child, result.copied) == 42 / 77
    assert torch.equal(child[0].weight, parent[0].weight) and torch.equal(child[1].running_var, parent[1].running_var)
    assert torch.equal(child[3].weight, fresh_head)
    assert child[0].weight.data_ptr() != parent[0].weight.data_ptr()  # copied, not shared
    assert _same_state(parent, parent_state)
    with pytest.raises(ConfigError, match="parent_state"):
        inherit_matching(child, [1, 2])  # type: ignore[arg-type]
