"""The op vocabulary: every op on 1-D and 2-D inputs, both strides, channel rules, lookup errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas import ConfigError
from search_spaces.ops import OPS, get_op, make_op, op_names, register_op, sets_channels

# Odd sizes catch floor-vs-ceil mistakes; 1 checks that stride 2 never goes below one position.
SIZES = {1: [(9,), (1,)], 2: [(9, 6), (1, 1)]}


def _ceil_half(n: int) -> int:
    return -(-n // 2)


@pytest.mark.parametrize("name", op_names())
@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
def test_every_op_shapes(name: str, ndim: int, stride: int) -> None:
    c_in = 4
    # The pure op (c_out = c_in) for channel-keeping ops, a width change for the rest.
    for c_out in {c_in, 6}:
        op = make_op(name, c_in, c_out, stride=stride, ndim=ndim)
        for spatial in SIZES[ndim]:
            x = torch.randn(3, c_in, *spatial)
            y = op(x)
            expected = spatial if stride == 1 else tuple(_ceil_half(s) for s in spatial)
            assert y.shape == (3, c_out, *expected), (name, ndim, stride, c_out, spatial)
            assert torch.isfinite(y).all()


def test_halving_chain_reaches_one_and_stays() -> None:
    x = torch.randn(2, 3, 8, 8)
    seen = []
    for name in ["conv3x3", "max_pool3x3", "identity", "dil_conv3x3", "sep_conv5x5"]:
        x = make_op(name, 3, 3, stride=2, ndim=2)(x)
        seen.append(x.shape[-1])
    assert seen == [4, 2, 1, 1, 1]


def test_stride_one_identity_is_exact_and_strided_identity_subsamples() -> None:
    x = torch.randn(2, 5, 6)
    assert torch.equal(make_op("identity", 5, 5, stride=1, ndim=1)(x), x)
    assert torch.equal(make_op("identity", 5, 5, stride=2, ndim=1)(x), x[..., ::2])
    assert sum(p.numel() for p in make_op("identity", 5, 5, stride=2, ndim=1).parameters()) == 0


def test_channel_keeping_ops_project_only_when_asked() -> None:
    for name in ["max_pool3x3", "avg_pool3x3", "identity"]:
        assert not sets_channels(name)
        pure = make_op(name, 4, 4, ndim=2)
        assert sum(p.numel() for p in pure.parameters()) == 0
        projected = make_op(name, 4, 8, ndim=2)
        assert any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in projected.modules())
    for name in ["conv3x3", "conv5x5", "sep_conv3x3", "dil_conv3x3", "conv1x1"]:
        assert sets_channels(name)


def test_convs_are_conv_bn_relu_with_the_declared_geometry() -> None:
    dil = make_op("dil_conv3x3", 4, 4, ndim=2)
    conv = next(m for m in dil.modules() if isinstance(m, nn.Conv2d))
    assert conv.dilation == (2, 2) and conv.kernel_size == (3, 3)
    sep = make_op("sep_conv3x3", 4, 8, ndim=1)
    convs = [m for m in sep.modules() if isinstance(m, nn.Conv1d)]
    assert convs[0].groups == 4 and convs[1].kernel_size == (1,)
    c5 = make_op("conv5x5", 4, 8, ndim=1)
    assert [type(m) for m in c5] == [nn.Conv1d, nn.BatchNorm1d, nn.ReLU]
    assert all(m(torch.randn(2, 4, 7)).min() >= 0 for m in [c5, sep])  # ends in ReLU


def test_unknown_op_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"Unknown op 'conv3'.*Valid names:.*conv3x3"):
        get_op("conv3")
    with pytest.raises(ConfigError, match="Did you mean 'sep_conv3x3'"):
        sets_channels("sep_conv3")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stride": 3}, "`stride` must be 1 or 2, but got 3"),
        ({"ndim": 3}, "`ndim` must be 1 .* or 2 .*, but got 3"),
    ],
)
def test_bad_op_arguments(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_op("conv3x3", 4, 4, **kwargs)
    with pytest.raises(ConfigError, match=r"Channel counts must be positive, but got \(c_in=4, c_out=0\)"):
        make_op("identity", 4, 0)


def test_register_op_extends_vocabulary_and_rejects_duplicates() -> None:
    name = "test_only_tanh"
    try:
        register_op(name, lambda ci, co, s, nd: nn.Tanh(), sets_channels=False)
        assert name in op_names() and not sets_channels(name)
        with pytest.raises(ConfigError, match="already registered"):
            register_op(name, lambda ci, co, s, nd: nn.Tanh())
    finally:
        OPS.pop(name, None)
