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

from nas.core import Categorical, ConfigError, Morph, SearchSpace
from nas.core.dimensions import Dimension, Primitive
from nas.core.space import Sample
from search_spaces import _args
from search_spaces.ops import OPS, get_op, projection, sets_channels

HEAD_POOLS = ("avg", "max")
_LAYER_FIELDS = ("op", "width", "skip", "reduce")
# Morphisms know these ops' modules: Conv-BN-ReLU, and depthwise-pointwise-BN-ReLU.
_CONVS = ("conv3x3", "conv1x1", "conv5x5", "dil_conv3x3")  # in the order `deepen` prefers them
_SEP_CONVS = ("sep_conv3x3", "sep_conv5x5")
_SIGN_KEEPING = ("max_pool3x3", "avg_pool3x3", "identity")  # without a projection, as in this space
_WIDER_KERNEL = {"conv3x3": "conv5x5", "sep_conv3x3": "sep_conv5x5"}


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

    # ---- morphisms ----------------------------------------------------------------------------
    def morphs(self, sample: Mapping[str, Primitive]) -> list[Morph]:
        """Function-preserving children: ``widen`` a conv layer (Net2Wider, when a conv or the head reads
        it), ``deepen`` by an identity-initialised conv where the tensor is non-negative (after a ReLU),
        ``widen_kernel`` (3x3 -> 5x5, zero-padded) and ``add_skip`` where the new shortcut is a
        projection whose batch norm starts at zero. Channel counts are this (possibly reduced) space's,
        so a shortcut is listed as a projection exactly when the child's build makes one."""
        s = self.validate(sample)
        depth = int(s["depth"])  # type: ignore[arg-type]
        layers = [{f: s[f"layer{i}.{f}"] for f in _LAYER_FIELDS if f"layer{i}.{f}" in s} for i in range(1, depth + 1)]
        flow = [self.stem_width]  # declared channels entering layer i (0-based) at flow[i], leaving it at flow[i + 1]
        for layer in layers:
            flow.append(int(layer["width"]) if sets_channels(str(layer["op"])) else flow[-1])  # type: ignore[arg-type]

        def projects(c_in: int, c_out: int, reduce: Any) -> bool:
            return bool(reduce) or _args.scaled(c_in, self.width_factor) != _args.scaled(c_out, self.width_factor)

        out: list[Morph] = []
        for i, layer in enumerate(layers):
            op, where, nxt = str(layer["op"]), f"layer{i + 1}", layers[i + 1] if i + 1 < depth else None
            if op in _CONVS + _SEP_CONVS and (nxt is None or nxt["op"] in _CONVS + _SEP_CONVS):
                for w in (w for w in self.widths if w > flow[i + 1]):
                    # An identity shortcut can neither copy nor merge channels: a projection must stay one.
                    if layer["skip"] and projects(flow[i], flow[i + 1], layer["reduce"]) and not projects(flow[i], w, layer["reduce"]):
                        continue
                    if nxt is not None and nxt["skip"] and projects(flow[i + 1], flow[i + 2], nxt["reduce"]) \
                            and not projects(w, flow[i + 2], nxt["reduce"]):
                        continue
                    out.append(Morph(self.validate({**s, f"{where}.width": w}), "widen", where))
            if _WIDER_KERNEL.get(op) in self.ops:
                out.append(Morph(self.validate({**s, f"{where}.op": _WIDER_KERNEL[op]}), "widen_kernel", where))
            if not layer["skip"] and True in self.skip and projects(flow[i], flow[i + 1], layer["reduce"]):
                out.append(Morph(self.validate({**s, f"{where}.skip": True}), "add_skip", where))
        fill = next((op for op in _CONVS if op in self.ops), None)
        if fill is not None and self.depth_dim.contains(depth + 1) and False in self.skip and False in self.reduce:
            non_negative = True  # the stem ends in a ReLU
            for p in range(depth + 1):  # insert before layers[p]
                if p > 0:
                    prev = layers[p - 1]
                    y = prev["op"] in _CONVS + _SEP_CONVS or (prev["op"] in _SIGN_KEEPING and non_negative)
                    non_negative = y and (not prev["skip"] or (non_negative and not projects(flow[p - 1], flow[p], prev["reduce"])))
                if non_negative and flow[p] in self.widths:
                    new = {"op": fill, "width": flow[p], "skip": False, "reduce": False}
                    out.append(Morph(self._relayer(s, layers[:p] + [new] + layers[p:]), "deepen", f"layer{p + 1}"))
        unique: dict[str, Morph] = {}  # two insertion points can give one child (next to an equal conv)
        for morph in out:
            unique.setdefault(json.dumps(morph.child, sort_keys=True), morph)
        return list(unique.values())

    def _relayer(self, sample: Sample, layers: Sequence[Mapping[str, Primitive]]) -> Sample:
        """``sample`` with its layers replaced by ``layers`` (dicts of the ``_LAYER_FIELDS`` they use)."""
        out: dict[str, Primitive] = {k: v for k, v in sample.items() if not k.startswith("layer")}
        out["depth"] = len(layers)
        for i, layer in enumerate(layers, start=1):
            out.update({f"layer{i}.{f}": v for f, v in layer.items()})
        return self.validate(out)

    def _apply_morph(self, morph: Morph, parent: Sample, parent_state: Mapping[str, Any], model: Any, generator: Any) -> float:
        from nas.inheritance.morphisms import identity_, pad_kernel, parameter_fraction, passthrough_bn_, zero_output_
        from search_spaces._morph import put, shift_from, transplant

        k = int(morph.where[len("layer"):]) - 1  # index into model.layers
        if morph.kind == "deepen":
            filled = transplant(model, parent_state, shift_from(k, prefix="layers."))
            identity_(model.layers[k].op[0])
            passthrough_bn_(model.layers[k].op[1])
            return parameter_fraction(model, filled)
        filled = transplant(model, parent_state)
        layer = model.layers[k]
        if morph.kind == "widen_kernel":
            name = f"layers.{k}.op.0.weight"  # the conv, or the depthwise conv of a sep conv
            filled |= put(model, {name: pad_kernel(parent_state[name], layer.op[0].kernel_size[0])})
        elif morph.kind == "add_skip":
            zero_output_(layer.shortcut)
        else:
            filled |= _widen(model, parent_state, k, generator)
        return parameter_fraction(model, filled)

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


def _widen(model: MacroChainNet, parent_state: Mapping[str, Any], k: int, generator: Any) -> set[str]:
    """Net2Wider on ``model.layers[k]`` (built wider) and its readers; returns the names inherited.

    The layer's output conv, batch norm and projection shortcut copy rows; its reader (the next layer's
    conv or sep conv and projection shortcut, or the head's first Linear: global pooling commutes with
    copying channels) splits the copied inputs. An identity shortcut that the wider build turned into a
    projection is set to copy (own) or to average the copies back (reader's), with a pass-through batch norm."""
    from nas.inheritance.morphisms import merge_weight, passthrough_bn_, replicate_out, select_weight, split_in, wider_mapping
    from search_spaces._morph import WIDEN_NOISE, put

    ndim = model.stem[0].weight.ndim - 2
    pre, layer = f"layers.{k}.", model.layers[k]
    conv, bn = ("op.1", "op.2") if len(layer.op) == 4 else ("op.0", "op.1")  # sep conv: the pointwise conv sets channels
    old = parent_state[f"{pre}{bn}.running_mean"].shape[0]
    mapping = wider_mapping(old, layer.op[int(bn[-1])].num_features, generator=generator)
    rows = [f"{pre}{conv}.weight"] + [f"{pre}{bn}.{t}" for t in ("weight", "bias", "running_mean", "running_var")]
    fresh: dict[str, torch.Tensor] = {}  # function-preserving but not from the parent
    if layer.shortcut is not None and f"{pre}shortcut.0.weight" in parent_state:
        rows += [f"{pre}shortcut.0.weight"] + [f"{pre}shortcut.1.{t}" for t in ("weight", "bias", "running_mean", "running_var")]
    elif isinstance(layer.shortcut, nn.Sequential):
        fresh[f"{pre}shortcut.0.weight"] = select_weight(mapping, old, ndim)
        passthrough_bn_(layer.shortcut[1])
    tensors = {name: replicate_out(parent_state[name], mapping) for name in rows}

    def split(name: str) -> None:
        tensors[name] = split_in(parent_state[name], mapping, noise=WIDEN_NOISE, generator=generator)

    if k + 1 < len(model.layers):
        pre, reader = f"layers.{k + 1}.", model.layers[k + 1]
        if len(reader.op) == 4:  # sep conv: the depthwise conv copies channels, the pointwise one splits them
            tensors[f"{pre}op.0.weight"] = replicate_out(parent_state[f"{pre}op.0.weight"], mapping)
            split(f"{pre}op.1.weight")
        else:
            split(f"{pre}op.0.weight")
        if reader.shortcut is not None and f"{pre}shortcut.0.weight" in parent_state:
            split(f"{pre}shortcut.0.weight")
        elif isinstance(reader.shortcut, nn.Sequential):
            fresh[f"{pre}shortcut.0.weight"] = merge_weight(mapping, old, ndim)
            passthrough_bn_(reader.shortcut[1])
    else:
        split("head.weight" if isinstance(model.head, nn.Linear) else "head.0.weight")
    put(model, fresh)
    return put(model, tensors)
