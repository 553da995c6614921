"""The operation vocabulary shared by the space families.

Every entry of :data:`OPS` is a factory ``factory(c_in, c_out, stride, ndim) -> nn.Module`` that works on
1-D signals (``ndim=1``: ``(N, C, L)``) and on images (``ndim=2``: ``(N, C, H, W)``), so one space
declaration serves both kinds of data. Two rules hold for every op, which is what lets spaces chain
them freely without shape bookkeeping:

- stride 1 keeps the spatial size; stride 2 halves it with ceil (8 -> 4 -> 2 -> 1 -> 1, never 0);
- the output has ``c_out`` channels. Convolutions set the channel count themselves. Pools and
  ``identity`` cannot, so they add a 1x1 projection when ``c_in != c_out``; spaces that want the
  pure op (see :func:`sets_channels`) pass ``c_out = c_in``.

Convolutions are Conv-BN-ReLU. The vocabulary is open: :func:`register_op` adds an op that any
space declared in YAML can then name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nas.core import ConfigError
from nas.core.errors import unknown_name_message

OpFactory = Callable[[int, int, int, int], nn.Module]

#: Name -> factory(c_in, c_out, stride, ndim). Insertion order is the order :func:`op_names` reports.
OPS: dict[str, OpFactory] = {}

# Ops whose output channel count is the input's unless a projection is forced; a space gives them
# no width choice, which keeps the dimension inactive instead of a meaningless knob.
_CHANNEL_KEEPING: set[str] = set()


# ---- per-dimensionality building blocks --------------------------------------------------------
def _check_ndim(ndim: int) -> None:
    if ndim not in (1, 2):
        raise ConfigError(f"`ndim` must be 1 (signals, (N, C, L)) or 2 (images, (N, C, H, W)), but got {ndim!r}.")


def _conv(ndim: int, *args: Any, **kwargs: Any) -> nn.Module:
    return (nn.Conv1d if ndim == 1 else nn.Conv2d)(*args, **kwargs)


def _bn(ndim: int, channels: int) -> nn.Module:
    return (nn.BatchNorm1d if ndim == 1 else nn.BatchNorm2d)(channels)


def conv_bn_relu(c_in: int, c_out: int, *, kernel: int, stride: int, ndim: int, dilation: int = 1) -> nn.Sequential:
    """Conv-BN-ReLU whose padding keeps the size at stride 1 and halves it (ceil) at stride 2."""
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(
        _conv(ndim, c_in, c_out, kernel, stride=stride, padding=pad, dilation=dilation, bias=False),
        _bn(ndim, c_out),
        nn.ReLU(inplace=False),
    )


def projection(c_in: int, c_out: int, *, stride: int, ndim: int) -> nn.Sequential:
    """1x1 Conv-BN (strided): the cheapest map between two tensor shapes, used by skips and pools."""
    return nn.Sequential(_conv(ndim, c_in, c_out, 1, stride=stride, bias=False), _bn(ndim, c_out))


def _sep_conv(c_in: int, c_out: int, *, kernel: int, stride: int, ndim: int) -> nn.Sequential:
    """Depthwise kxk (carrying the stride) then pointwise 1x1, then BN-ReLU: a conv at ~1/k^2 the cost."""
    return nn.Sequential(
        _conv(ndim, c_in, c_in, kernel, stride=stride, padding=kernel // 2, groups=c_in, bias=False),
        _conv(ndim, c_in, c_out, 1, bias=False),
        _bn(ndim, c_out),
        nn.ReLU(inplace=False),
    )


def _pool(kind: str, c_in: int, c_out: int, stride: int, ndim: int) -> nn.Module:
    if kind == "max":
        pool: nn.Module = (nn.MaxPool1d if ndim == 1 else nn.MaxPool2d)(3, stride=stride, padding=1)
    else:
        # Padding zeros would bias border averages towards 0; count only real inputs.
        pool = (nn.AvgPool1d if ndim == 1 else nn.AvgPool2d)(3, stride=stride, padding=1, count_include_pad=False)
    return pool if c_in == c_out else nn.Sequential(pool, projection(c_in, c_out, stride=1, ndim=ndim))


def _identity(c_in: int, c_out: int, stride: int, ndim: int) -> nn.Module:
    if c_in != c_out:
        return projection(c_in, c_out, stride=stride, ndim=ndim)
    if stride == 1:
        return nn.Identity()
    # A skip that must downsample: keep every other position (1x1 average pool), no parameters.
    return (nn.AvgPool1d if ndim == 1 else nn.AvgPool2d)(1, stride=stride)


class Zero(nn.Module):
    """Outputs zeros of the right shape: the "no edge" op of cell spaces (NAS-Bench-201's ``none``)."""

    def __init__(self, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_out = c_out
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = [-(-s // self.stride) for s in x.shape[2:]]
        return x.new_zeros((x.shape[0], self.c_out, *spatial))


# ---- registry ----------------------------------------------------------------------------------
def register_op(name: str, factory: OpFactory, *, sets_channels: bool = True) -> None:
    """Add ``factory`` to the vocabulary under ``name``.

    ``sets_channels=False`` marks ops that keep the incoming channel count (pools, identity), so
    spaces make their width dimension inactive.
    """
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ConfigError(f"An op name must be a non-empty string without spaces, but got {name!r}.")
    if name in OPS:
        raise ConfigError(f"Op names must be unique, but {name!r} is already registered.")
    OPS[name] = factory
    if not sets_channels:
        _CHANNEL_KEEPING.add(name)


def _checked(factory: OpFactory) -> OpFactory:
    """Wrap a factory with the argument checks every op shares."""

    def make(c_in: int, c_out: int, stride: int, ndim: int) -> nn.Module:
        _check_ndim(ndim)
        if stride not in (1, 2):
            raise ConfigError(f"`stride` must be 1 or 2, but got {stride!r}.")
        if c_in < 1 or c_out < 1:
            raise ConfigError(f"Channel counts must be positive, but got (c_in={c_in}, c_out={c_out}).")
        return factory(c_in, c_out, stride, ndim)

    make.__doc__ = factory.__doc__
    return make


def _conv_op(kernel: int, dilation: int = 1) -> OpFactory:
    return lambda ci, co, s, nd: conv_bn_relu(ci, co, kernel=kernel, stride=s, ndim=nd, dilation=dilation)


def _sep_op(kernel: int) -> OpFactory:
    return lambda ci, co, s, nd: _sep_conv(ci, co, kernel=kernel, stride=s, ndim=nd)


register_op("conv1x1", _checked(_conv_op(1)))
register_op("conv3x3", _checked(_conv_op(3)))
register_op("conv5x5", _checked(_conv_op(5)))
register_op("sep_conv3x3", _checked(_sep_op(3)))
register_op("sep_conv5x5", _checked(_sep_op(5)))
register_op("dil_conv3x3", _checked(_conv_op(3, dilation=2)))  # 5x5 receptive field at 3x3 cost
register_op("max_pool3x3", _checked(lambda ci, co, s, nd: _pool("max", ci, co, s, nd)), sets_channels=False)
register_op("avg_pool3x3", _checked(lambda ci, co, s, nd: _pool("avg", ci, co, s, nd)), sets_channels=False)
register_op("identity", _checked(_identity), sets_channels=False)
register_op("zero", _checked(lambda ci, co, s, nd: Zero(co, s)))


# ---- lookup ------------------------------------------------------------------------------------
def op_names() -> list[str]:
    """Every registered op name, in registration order."""
    return list(OPS)


def get_op(name: str) -> OpFactory:
    """The factory registered as ``name``; unknown names raise :class:`ConfigError` listing the valid ones."""
    if name not in OPS:
        raise ConfigError(unknown_name_message("op", name, OPS))
    return OPS[name]


def make_op(name: str, c_in: int, c_out: int, *, stride: int = 1, ndim: int = 2) -> nn.Module:
    """Build op ``name``: shorthand for ``get_op(name)(c_in, c_out, stride, ndim)``."""
    return get_op(name)(c_in, c_out, stride, ndim)


def sets_channels(name: str) -> bool:
    """Whether op ``name`` chooses its output channels (convs) or keeps the input's (pools, identity)."""
    get_op(name)
    return name not in _CHANNEL_KEEPING
