"""Torch modules of the DARTS / NAS-Bench-301 network, for 1-D ``(C, L)`` and 2-D ``(C, H, W)`` inputs.

Layer for layer the evaluation network of DARTS (Liu et al. 2019, ``NetworkCIFAR`` without the
auxiliary head): a 3x3 stem of ``stem_multiplier * C`` channels, ``layers`` cells with reduction
cells at a third and two thirds of the depth (channels doubled there), each cell preprocessing its
two inputs (``FactorizedReduce`` after a reduction, else ReLU-conv1x1-BN), applying the genotype's
two ops per intermediate node and concatenating the ``concat`` states; global pooling and a linear
classifier. Parameter counts equal the paper's (DARTS V2 at C=36, 20 layers, 10 classes: 3.3 M;
``tests/test_darts_modules.py``). One difference, for odd sizes only: ``FactorizedReduce`` pads its
shifted branch so both branches keep one size (on even sizes the output is the same).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

#: The DARTS operations (``genotypes.PRIMITIVES``), in its order.
DARTS_OPS: tuple[str, ...] = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                              "dil_conv_3x3", "dil_conv_5x5")

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_MAX = {1: nn.MaxPool1d, 2: nn.MaxPool2d}
_AVG = {1: nn.AvgPool1d, 2: nn.AvgPool2d}
_GLOBAL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}


def relu_conv_bn(dims: int, c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(inplace=False), _CONV[dims](c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
                         _BN[dims](c_out))


def dil_conv(dims: int, c_in: int, c_out: int, kernel: int, stride: int, dilation: int) -> nn.Sequential:
    """ReLU, depthwise conv (dilated), pointwise conv, BN."""
    conv = _CONV[dims]
    return nn.Sequential(nn.ReLU(inplace=False),
                         conv(c_in, c_in, kernel, stride=stride, padding=dilation * (kernel - 1) // 2, dilation=dilation,
                              groups=c_in, bias=False),
                         conv(c_in, c_out, 1, bias=False), _BN[dims](c_out))


def sep_conv(dims: int, c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    """Two stacked depthwise-separable convolutions (the first carries the stride)."""
    return nn.Sequential(*dil_conv(dims, c_in, c_in, kernel, stride, 1), *dil_conv(dims, c_in, c_out, kernel, 1, 1))


class Zero(nn.Module):
    """The ``none`` operation (zeros at the output's size)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = (slice(None), slice(None)) + tuple(slice(None, None, self.stride) for _ in x.shape[2:])
        return x[index] * 0.0


class FactorizedReduce(nn.Module):
    """Halve the size with two 1x1 convolutions of stride 2, one on the input shifted by one, concatenated."""

    def __init__(self, dims: int, c_in: int, c_out: int) -> None:
        super().__init__()
        self.dims = dims
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = _CONV[dims](c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = _CONV[dims](c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = _BN[dims](c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = x[(slice(None), slice(None)) + (slice(1, None),) * self.dims]
        shifted = F.pad(shifted, (0, 1) * self.dims)  # back to x's size: both branches agree on odd sizes too
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def make_op(name: str, dims: int, channels: int, stride: int, builders: Mapping[str, Any] | None = None) -> nn.Module:
    """One DARTS operation at ``channels`` channels; ``stride`` 2 on a reduction cell's input edges.
    ``builders`` maps other op names to functions ``(channels, stride, dims) -> nn.Module``."""
    if builders and name in builders:
        return builders[name](channels, stride, dims)  # type: ignore[no-any-return]
    if name == "none":
        return Zero(stride)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(dims, channels, channels)
    if name == "max_pool_3x3":
        return _MAX[dims](3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return _AVG[dims](3, stride=stride, padding=1, count_include_pad=False)
    kind, _, size = name.rpartition("_")
    kernel = int(size.partition("x")[0])
    if kind == "sep_conv":
        return sep_conv(dims, channels, channels, kernel, stride)
    if kind == "dil_conv":
        return dil_conv(dims, channels, channels, kernel, stride, 2)
    raise ValueError(f"No module for operation {name!r}; DARTS operations are {', '.join(DARTS_OPS)}.")


class Cell(nn.Module):
    """Two preprocessed inputs (states 0, 1), two ops per intermediate node summed, ``concat`` states joined."""

    def __init__(self, pairs: Sequence[tuple[str, int]], concat: Sequence[int], dims: int, c_prev_prev: int, c_prev: int,
                 channels: int, reduction: bool, reduction_prev: bool, builders: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.preprocess0 = (FactorizedReduce(dims, c_prev_prev, channels) if reduction_prev
                            else relu_conv_bn(dims, c_prev_prev, channels, 1))
        self.preprocess1 = relu_conv_bn(dims, c_prev, channels, 1)
        self.inputs = [source for _, source in pairs]
        self.concat = list(concat)
        self.ops = nn.ModuleList(make_op(op, dims, channels, 2 if reduction and source < 2 else 1, builders)
                                 for op, source in pairs)
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(0, len(self.ops), 2):
            states.append(self.ops[k](states[self.inputs[k]]) + self.ops[k + 1](states[self.inputs[k + 1]]))
        return torch.cat([states[i] for i in self.concat], dim=1)


class DartsNetwork(nn.Module):
    """The DARTS evaluation network for one genotype (see the module docstring)."""

    def __init__(self, normal: Sequence[tuple[str, int]], normal_concat: Sequence[int], reduce: Sequence[tuple[str, int]],
                 reduce_concat: Sequence[int], *, in_channels: int, dims: int, num_classes: int, channels: int = 36,
                 layers: int = 20, stem_multiplier: int = 3, builders: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(_CONV[dims](in_channels, c_curr, 3, padding=1, bias=False), _BN[dims](c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            pairs, concat = (reduce, reduce_concat) if reduction else (normal, normal_concat)
            cell = Cell(pairs, concat, dims, c_prev_prev, c_prev, c_curr, reduction, reduction_prev, builders)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
        self.global_pooling = _GLOBAL[dims](1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))
