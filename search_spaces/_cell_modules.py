"""Torch modules of the NAS-Bench-201 network, for 1-D ``(C, L)`` and 2-D ``(C, H, W)`` inputs.

Kept apart from :mod:`search_spaces.cell_nb201` so that the space's own logic (dimensions, keys,
text form) stays free of torch and is read without the modules in the way.

Layer for layer this is NAS-Bench-201's ``TinyNetwork`` with ``InferCell`` cells, so parameter
counts match the benchmark's. One deliberate difference: the reduction block's shortcut pools
with ``ceil_mode=True``. On even sizes that is the same operation, so parameter counts and
outputs are unchanged; on odd sizes and on size 1 (a deeper network on 8x8 digits or on
length-40 signals gets there) it keeps the shortcut the size of the strided-convolution branch,
where the benchmark's floor pooling would shrink it or fail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

Edge = tuple[int, int]

#: Layer types per number of spatial dimensions: conv, batch norm, average pool, global pool.
_LAYERS: dict[int, tuple[type[nn.Module], type[nn.Module], type[nn.Module], type[nn.Module]]] = {
    1: (nn.Conv1d, nn.BatchNorm1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d),
    2: (nn.Conv2d, nn.BatchNorm2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d),
}


def relu_conv_bn(dims: int, c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """NB201's ``ReLUConvBN``: pre-activation, bias-free convolution, affine batch norm."""
    conv, bn, _, _ = _LAYERS[dims]
    return nn.Sequential(
        nn.ReLU(inplace=False),
        conv(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        bn(c_out),
    )


class Zero(nn.Module):
    """The ``none`` operation. :class:`Cell` never calls it (a zero term adds nothing); it is kept
    so that printing a model shows every declared edge."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def make_op(name: str, dims: int, channels: int) -> nn.Module:
    """One edge operation at constant channels and stride 1, as NB201 builds it inside a cell."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return _LAYERS[dims][2](3, stride=1, padding=1, count_include_pad=False)
    if name.startswith("nor_conv_"):
        return relu_conv_bn(dims, channels, channels, int(name.rsplit("x", 1)[1]))
    raise ValueError(f"No module for operation {name!r}.")  # the space validates names first


class Cell(nn.Module):
    """A DAG cell: node ``j`` sums ``op(node i)`` over its incoming edges; the last node is the output.

    Every declared edge gets its module (so parameter counts match the benchmark), but only
    ``live`` edges are computed: ``none`` edges add nothing, and edges whose target cannot reach
    the output do not change it.
    """

    def __init__(self, ops: Mapping[Edge, str], live: Sequence[tuple[int, Sequence[int]]], *, dims: int, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict({f"e{i}_{j}": make_op(op, dims, channels) for (i, j), op in ops.items()})
        # (node, sources) in topological order, sources restricted to non-`none` edges;
        # the last entry is the output node.
        self._live = [(j, tuple(sources)) for j, sources in live]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = {0: x}
        for j, sources in self._live:
            terms = [self.edges[f"e{i}_{j}"](nodes[i]) for i in sources]
            nodes[j] = sum(terms[1:], terms[0]) if terms else torch.zeros_like(x)
        return nodes[self._live[-1][0]]


class ResidualReduction(nn.Module):
    """NB201's ``ResNetBasicblock`` with stride 2: halves the resolution, changes the channels."""

    def __init__(self, c_in: int, c_out: int, *, dims: int) -> None:
        super().__init__()
        conv, _, pool, _ = _LAYERS[dims]
        self.conv_a = relu_conv_bn(dims, c_in, c_out, 3, stride=2)
        self.conv_b = relu_conv_bn(dims, c_out, c_out, 3)
        self.downsample = nn.Sequential(pool(2, stride=2, ceil_mode=True), conv(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class CellNetwork(nn.Module):
    """Stem, ``stages`` stages of ``cells_per_stage`` identical cells joined by residual reductions,
    then batch norm, ReLU, global average pooling and a linear head."""

    def __init__(
        self,
        ops: Mapping[Edge, str],
        live: Sequence[tuple[int, Sequence[int]]],
        *,
        in_channels: int,
        dims: int,
        num_classes: int,
        stem_channels: int,
        cells_per_stage: int,
        stages: int,
    ) -> None:
        super().__init__()
        conv, bn, _, global_pool = _LAYERS[dims]
        layers: list[nn.Module] = [nn.Sequential(conv(in_channels, stem_channels, 3, padding=1, bias=False), bn(stem_channels))]
        channels = stem_channels
        for stage in range(stages):
            if stage > 0:
                layers.append(ResidualReduction(channels, channels * 2, dims=dims))
                channels *= 2
            layers.extend(Cell(ops, live, dims=dims, channels=channels) for _ in range(cells_per_stage))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(bn(channels), nn.ReLU(), global_pool(1), nn.Flatten(), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
