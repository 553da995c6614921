"""Macro chain space: a stem, a chain of chosen layers, a pooled classification head.

Declared in YAML (``configs/space/macro_chain.yaml``)::

    _target_: search_spaces.macro_chain.MacroChainSpace
    depth: [1, 2, 3, 4]
    ops: [conv3x3, sep_conv3x3, max_pool3x3, identity]
    widths: [16, 32, 64]

Flat dimensions, in dependency order::

    depth
    layer{i}.op, layer{i}.width, layer{i}.skip, layer{i}.reduce      for i = 1 .. max(depth)
    head.pool, head.hidden, head.dropout

``layer{i}.*`` is active iff ``depth >= i``. ``layer{i}.width`` is further active only when the op
sets its channels (a conv); pools and ``identity`` keep the incoming channel count, so a width
would be a knob that does nothing. ``head.dropout`` is active only when ``head.hidden > 0``,
because the dropout sits after the hidden layer.

The same sample builds for 2-D ``(C, H, W)`` and 1-D ``(C, L)`` inputs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nas import Categorical, ConfigError, SearchSpace
from nas._dimensions import Dimension, Primitive
from search_spaces import _args
from search_spaces.ops import OPS, get_op, projection, sets_channels

HEAD_POOLS = ("avg", "max")
_LAYER_FIELDS = ("op", "width", "skip", "reduce")


class ChainLayer(nn.Module):
    """One op, optionally with a residual: ``op(x) + shortcut(x)``.

    The shortcut is the identity when shapes match, else a strided 1x1 Conv-BN projection.
    """

    def __init__(self, op: nn.Module, shortcut: nn.Module | None) -> None:
        super().__init__()
        self.op = op
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.op(x)
        return y if self.shortcut is None else y + self.shortcut(x)


class MacroChainNet(nn.Module):
    """``stem -> layers -> global pool -> head``; ``len(net.layers)`` is the sample's depth."""

    def __init__(self, stem: nn.Module, layers: Sequence[nn.Module], pool: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.layers = nn.ModuleList(layers)
        self.pool = pool
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.pool(x).flatten(1))


def spatial_ndim(input_shape: Sequence[int]) -> int:
    """1 for ``(C, L)`` signals, 2 for ``(C, H, W)`` images; anything else is a config error."""
    shape = tuple(input_shape)
    if len(shape) not in (2, 3) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
        raise ConfigError(f"`input_shape` must be (C, L) or (C, H, W) with positive sizes, but got {shape!r}.")
    return len(shape) - 1


def make_head(c_in: int, num_classes: int, *, hidden: int, dropout: float) -> nn.Module:
    """``Linear`` to the classes, preceded by ``Linear-ReLU-Dropout`` when ``hidden > 0``."""
    if hidden <= 0:
        return nn.Linear(c_in, num_classes)
    return nn.Sequential(nn.Linear(c_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes))


class MacroChainSpace(SearchSpace):
    """A chain of ``depth`` layers, each an op from ``ops`` with a width, a residual and a stride choice.

    Args (keyword-only, as declared in YAML):
        name: registry name, the YAML file's stem.
        depth: allowed depths (integers >= 1); a contiguous list becomes an ordered integer dimension.
        ops: op names from :data:`search_spaces.ops.OPS`.
        widths: output channels a conv layer may choose.
        skip: residual choices per layer, ``[false, true]`` to search it, ``[true]`` to fix it.
        reduce: downsampling choices per layer (stride 2, ceil: 8 -> 4 -> 2 -> 1 -> 1).
        stem_width: channels of the fixed conv3x3 stem.
        head_hidden: hidden units before the classifier; 0 means none.
        head_dropout: ``{low, high}`` of the dropout after the hidden layer (a float dimension).
        head_pool: global pooling choices, ``avg`` and/or ``max``.

    Equivalences collapsed by :meth:`canonical` beyond dropping inactive dimensions: a layer that is
    ``identity`` with neither skip nor reduce computes ``x -> x`` and has no parameters, so it is
    removed and the later layers renumbered; ``[conv, identity, conv]`` and ``[conv, conv]`` share a
    key. ``identity`` *with* a skip computes ``2x``; it changes what later residual sums see, so it
    is kept.
    """

    def __init__(
        self,
        *,
        name: str = "macro_chain",
        depth: Any = (1, 2, 3, 4),
        ops: Any = ("conv3x3", "conv5x5", "sep_conv3x3", "dil_conv3x3", "max_pool3x3", "avg_pool3x3", "identity"),
        widths: Any = (16, 32, 64),
        skip: Any = (False, True),
        reduce: Any = (False, True),
        stem_width: int = 16,
        head_hidden: Any = (0, 64),
        head_dropout: Any = (0.0, 0.3),
        head_pool: Any = HEAD_POOLS,
    ) -> None:
        self.name = name
        depths = _args.int_choices("depth", depth, minimum=1, what="integers >= 1")
        self.depth_dim = _args.int_dimension(depths)
        self.max_depth = max(depths)
        self.ops = _args.name_choices("ops", ops, OPS, kind="op")
        self.widths = _args.int_choices("widths", widths, minimum=1)
        self.skip = _args.bool_choices("skip", skip)
        self.reduce = _args.bool_choices("reduce", reduce)
        self.stem_width = _args.positive_int("stem_width", stem_width)
        self.head_hidden = _args.int_choices("head_hidden", head_hidden, minimum=0, what="integers >= 0 (0 = no hidden layer)")
        self.head_dropout = _args.float_range("head_dropout", head_dropout, low=0.0, high=1.0, high_open=True)
        self.head_pool = _args.name_choices("head_pool", head_pool, HEAD_POOLS, kind="pooling")
        self._dims = self._declare()
        self.width_factor = 1.0  # < 1 in a reduced (low-fidelity) copy, see `_reduced`

    def _declare(self) -> dict[str, Dimension]:
        dims: dict[str, Dimension] = {"depth": self.depth_dim}
        any_conv = any(sets_channels(op) for op in self.ops)
        for i in range(1, self.max_depth + 1):
            dims[f"layer{i}.op"] = Categorical(tuple(self.ops))
            if any_conv:
                dims[f"layer{i}.width"] = Categorical(tuple(self.widths))
            dims[f"layer{i}.skip"] = Categorical(tuple(self.skip))
            dims[f"layer{i}.reduce"] = Categorical(tuple(self.reduce))
        dims["head.pool"] = Categorical(tuple(self.head_pool))
        dims["head.hidden"] = Categorical(tuple(self.head_hidden))
        if any(h > 0 for h in self.head_hidden):
            dims["head.dropout"] = self.head_dropout
        return dims

    # ---- contract ----------------------------------------------------------------------------
    def dimensions(self) -> dict[str, Dimension]:
        return dict(self._dims)

    def is_active(self, name: str, partial: Mapping[str, Primitive]) -> bool:
        if name.startswith("layer"):
            index, _, field = name[len("layer"):].partition(".")
            i = int(index)
            depth = partial.get("depth")
            if not isinstance(depth, int) or depth < i:
                return False
            if field == "width":
                op = partial.get(f"layer{i}.op")
                return isinstance(op, str) and op in OPS and sets_channels(op)
            return True
        if name == "head.dropout":
            hidden = partial.get("head.hidden")
            return isinstance(hidden, int) and hidden > 0
        return True

    def canonical(self, sample: Mapping[str, Primitive]) -> str:
        """Active dimensions with no-op layers (``identity``, no skip, no reduce) removed; see the class doc."""
        active = self.active(sample)
        out: dict[str, Primitive] = {}
        kept = 0
        for i in range(1, int(active["depth"]) + 1):  # type: ignore[arg-type]
            layer = {f: active[f"layer{i}.{f}"] for f in _LAYER_FIELDS if f"layer{i}.{f}" in active}
            if layer["op"] == "identity" and not layer["skip"] and not layer["reduce"]:
                continue
            kept += 1
            for f, v in layer.items():
                out[f"layer{kept}.{f}"] = self._dims[f"layer{i}.{f}"].normalize(v)
        out["depth"] = kept
        for k, v in active.items():
            if k.startswith("head."):
                out[k] = self._dims[k].normalize(v)
        return json.dumps(out, sort_keys=True, separators=(",", ":"))

    def _reduced(self, width: float, depth: float) -> MacroChainSpace:
        return _args.narrowed(self, width, depth)  # type: ignore[no-any-return]

    def build(self, sample: Mapping[str, Primitive], input_shape: Sequence[int], num_classes: int) -> nn.Module:
        """The network for ``sample`` taking ``(N, *input_shape)`` and returning ``(N, num_classes)`` logits."""
        s = self.validate(sample)
        ndim = spatial_ndim(input_shape)
        num_classes = _args.num_classes(num_classes)
        stem_width = _args.scaled(self.stem_width, self.width_factor)
        stem = get_op("conv3x3")(int(input_shape[0]), stem_width, 1, ndim)
        channels = stem_width
        layers = []
        for i in range(1, int(s["depth"]) + 1):  # type: ignore[arg-type]
            op_name = str(s[f"layer{i}.op"])
            c_out = _args.scaled(int(s[f"layer{i}.width"]), self.width_factor) if sets_channels(op_name) else channels  # type: ignore[arg-type]
            stride = 2 if s[f"layer{i}.reduce"] else 1
            op = get_op(op_name)(channels, c_out, stride, ndim)
            shortcut: nn.Module | None = None
            if s[f"layer{i}.skip"]:
                same = c_out == channels and stride == 1
                shortcut = nn.Identity() if same else projection(channels, c_out, stride=stride, ndim=ndim)
            layers.append(ChainLayer(op, shortcut))
            channels = c_out
        pool_cls = {("avg", 1): nn.AdaptiveAvgPool1d, ("avg", 2): nn.AdaptiveAvgPool2d, ("max", 1): nn.AdaptiveMaxPool1d, ("max", 2): nn.AdaptiveMaxPool2d}
        pool = pool_cls[(str(s["head.pool"]), ndim)](1)
        hidden = _args.scaled(int(s["head.hidden"]), self.width_factor) if s["head.hidden"] else 0  # type: ignore[arg-type]
        head = make_head(channels, num_classes, hidden=hidden, dropout=float(s.get("head.dropout", 0.0)))  # type: ignore[arg-type]
        return MacroChainNet(stem, layers, pool, head)
