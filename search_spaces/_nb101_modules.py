"""Torch modules of the NAS-Bench-101 network, for 1-D ``(C, L)`` and 2-D ``(C, H, W)`` inputs.

Layer for layer NAS-Bench-101's ``model_builder``: a 3x3 conv-bn-relu stem; stacks of cells, a 2x
max-pool and doubled channels between stacks; global average pooling and a linear classifier. In a
cell (a pruned spec), each vertex sums its inputs, the input vertex's through a 1x1 conv-bn-relu
projection and the others truncated to the vertex's channels, and applies its op; the output vertex
concatenates the vertices feeding it and adds the projected input where the input feeds it. Vertex
channels follow the benchmark's ``compute_vertex_channels``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

#: The benchmark's operations this module builds.
NB101_BUILT_OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
_CONV: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d}
_NORM: dict[int, type[nn.Module]] = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_POOL: dict[int, type[nn.Module]] = {1: nn.MaxPool1d, 2: nn.MaxPool2d}
_GLOBAL: dict[int, type[nn.Module]] = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}


def conv_bn_relu(dims: int, c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(_CONV[dims](c_in, c_out, kernel, padding=kernel // 2, bias=False), _NORM[dims](c_out), nn.ReLU())


def make_op(name: str, channels: int, dims: int, builders: Mapping[str, Callable[..., nn.Module]]) -> nn.Module:
    if name in builders:
        return builders[name](channels, 1, dims)
    if name == "maxpool3x3":
        return _POOL[dims](3, stride=1, padding=1)
    return conv_bn_relu(dims, channels, channels, 3 if name == "conv3x3-bn-relu" else 1)


def vertex_channels(in_channels: int, out_channels: int, matrix: Sequence[Sequence[int]]) -> list[int]:
    """Channels of each vertex (the benchmark's ``compute_vertex_channels``): the output's split evenly over
    the vertices feeding it (the remainder to the first), and a vertex feeding only others takes the most
    its successors have."""
    v = len(matrix)
    channels = [0] * v
    channels[0], channels[v - 1] = in_channels, out_channels
    if v == 2:
        return channels
    feeding = sum(matrix[i][v - 1] for i in range(1, v))
    interior, correction = divmod(out_channels, feeding) if feeding else (0, 0)
    for i in range(1, v - 1):
        if matrix[i][v - 1]:
            channels[i] = interior + (1 if correction else 0)
            correction -= 1 if correction else 0
    for i in range(v - 3, 0, -1):
        if not matrix[i][v - 1]:
            for j in range(i + 1, v - 1):
                if matrix[i][j]:
                    channels[i] = max(channels[i], channels[j])
    return channels


class Cell(nn.Module):
    """One NAS-Bench-101 cell of a pruned spec, ``c_in`` channels in, ``c_out`` out."""

    def __init__(self, matrix: Sequence[Sequence[int]], ops: Sequence[str], c_in: int, c_out: int, *, dims: int,
                 builders: Mapping[str, Callable[..., nn.Module]]) -> None:
        super().__init__()
        self.matrix = [list(row) for row in matrix]
        v = len(self.matrix)
        self.channels = vertex_channels(c_in, c_out, self.matrix)
        self.projections = nn.ModuleDict({str(t): conv_bn_relu(dims, c_in, self.channels[t], 1) for t in range(1, v) if self.matrix[0][t]})
        self.ops = nn.ModuleList([nn.Identity()] + [make_op(ops[t], self.channels[t], dims, builders) for t in range(1, v - 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = len(self.matrix)
        states = [x]
        for t in range(1, v - 1):
            inputs = [states[s][:, :self.channels[t]] for s in range(1, t) if self.matrix[s][t]]
            if self.matrix[0][t]:
                inputs.append(self.projections[str(t)](x))
            states.append(self.ops[t](sum(inputs[1:], inputs[0])))
        joined = [states[t] for t in range(1, v - 1) if self.matrix[t][v - 1]]
        if not joined:
            return self.projections[str(v - 1)](x)
        out = torch.cat(joined, dim=1) if len(joined) > 1 else joined[0]
        return out + self.projections[str(v - 1)](x) if self.matrix[0][v - 1] else out


class NB101Network(nn.Module):
    """The benchmark's network: stem, ``stacks`` x ``cells_per_stack`` cells with max-pools between, classifier."""

    def __init__(self, matrix: Sequence[Sequence[int]], ops: Sequence[str], *, in_channels: int, dims: int, num_classes: int,
                 stem_channels: int, stacks: int, cells_per_stack: int,
                 builders: Mapping[str, Callable[..., nn.Module]] | None = None) -> None:
        super().__init__()
        builders = builders or {}
        layers: list[nn.Module] = [conv_bn_relu(dims, in_channels, stem_channels, 3)]
        channels = stem_channels
        for stack in range(stacks):
            if stack > 0:
                layers.append(_POOL[dims](2, stride=2, ceil_mode=True))  # ceil: a size-1 map stays size 1
                out = channels * 2
            else:
                out = channels
            for _ in range(cells_per_stack):
                layers.append(Cell(matrix, ops, channels, out, dims=dims, builders=builders))
                channels = out
        self.features = nn.Sequential(*layers)
        self.pool = _GLOBAL[dims](1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))
