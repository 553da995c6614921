"""MLP space: fully connected layers over flattened inputs, for vector data (and as a baseline).

Declared in YAML (``configs/space/mlp.yaml``)::

    _target_: search_spaces.mlp.MLPSpace
    depth: [1, 2, 3]
    widths: [64, 128, 256]

Flat dimensions, in dependency order: ``depth``, ``layer{i}.width`` (active iff ``depth >= i``),
``activation``, ``dropout``. Activation and dropout are shared by all layers: per-layer choices
multiply the space without a matching gain on the small tabular problems this space is for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from nas.core import Categorical, ConfigError, Morph, SearchSpace
from nas.core.dimensions import Dimension, Primitive
from nas.core.space import Sample
from search_spaces import _args

#: Activation name -> module class; spaces name them in YAML.
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


class MLPSpace(SearchSpace):
    """``Flatten -> [Linear -> activation -> Dropout] x depth -> Linear``.

    Args (keyword-only, as declared in YAML):
        name: registry name, the YAML file's stem.
        depth: allowed numbers of hidden layers (integers >= 1).
        widths: hidden sizes each layer may choose.
        activation: names from :data:`ACTIVATIONS`.
        dropout: ``{low, high}`` of the dropout after each hidden layer (a float dimension).
    """

    def __init__(
        self,
        *,
        name: str = "mlp",
        depth: Any = (1, 2, 3),
        widths: Any = (64, 128, 256),
        activation: Any = tuple(ACTIVATIONS),
        dropout: Any = (0.0, 0.5),
    ) -> None:
        self.name = name
        depths = _args.int_choices("depth", depth, minimum=1, what="integers >= 1")
        self.depth_dim = _args.int_dimension(depths)
        self.max_depth = max(depths)
        self.widths = _args.int_choices("widths", widths, minimum=1)
        self.activations = _args.name_choices("activation", activation, ACTIVATIONS, kind="activation")
        self.dropout = _args.float_range("dropout", dropout, low=0.0, high=1.0, high_open=True)
        dims: dict[str, Dimension] = {"depth": self.depth_dim}
        for i in range(1, self.max_depth + 1):
            dims[f"layer{i}.width"] = Categorical(tuple(self.widths))
        dims["activation"] = Categorical(tuple(self.activations))
        dims["dropout"] = self.dropout
        self._dims = dims
        self.width_factor = 1.0  # < 1 in a reduced (low-fidelity) copy, see `_reduced`

    def dimensions(self) -> dict[str, Dimension]:
        return dict(self._dims)

    def is_active(self, name: str, partial: Mapping[str, Primitive]) -> bool:
        if name.startswith("layer"):
            depth = partial.get("depth")
            return isinstance(depth, int) and depth >= int(name[len("layer"):].partition(".")[0])
        return True

    # ---- morphisms ----------------------------------------------------------------------------
    def morphs(self, sample: Mapping[str, Primitive]) -> list[Morph]:
        """Widen a hidden layer to any larger declared width (Net2Wider, any activation); with ReLU,
        insert after a hidden layer a copy of its width initialised to the identity (Net2Deeper:
        ReLU is the identity on the non-negative values it follows)."""
        s = self.validate(sample)
        depth = int(s["depth"])  # type: ignore[arg-type]
        out = []
        for i in range(1, depth + 1):
            for width in self.widths:
                if width > int(s[f"layer{i}.width"]):  # type: ignore[arg-type]
                    out.append(Morph(self.validate({**s, f"layer{i}.width": width}), "widen", f"layer{i}"))
        if s["activation"] == "relu" and self.depth_dim.contains(depth + 1):
            for i in range(1, depth + 1):
                widths = [s[f"layer{k}.width"] for k in range(1, depth + 1)]
                widths.insert(i, s[f"layer{i}.width"])
                child = {**s, "depth": depth + 1, **{f"layer{k}.width": w for k, w in enumerate(widths, start=1)}}
                out.append(Morph(self.validate(child), "deepen", f"layer{i + 1}"))
        return out

    def _apply_morph(self, morph: Morph, parent: Sample, parent_state: Mapping[str, Any], model: Any, generator: Any) -> float:
        from nas.inheritance.morphisms import identity_, parameter_fraction, replicate_out, split_in, wider_mapping
        from search_spaces._morph import WIDEN_NOISE, put, shift_from, transplant

        linear = 1 + 3 * (int(morph.where[len("layer"):]) - 1)  # index of the morphed Linear in the Sequential
        if morph.kind == "widen":
            filled = transplant(model, parent_state)
            weight = parent_state[f"{linear}.weight"]
            mapping = wider_mapping(weight.shape[0], model[linear].out_features, generator=generator)
            filled |= put(model, {f"{linear}.weight": replicate_out(weight, mapping),
                                  f"{linear}.bias": replicate_out(parent_state[f"{linear}.bias"], mapping),
                                  f"{linear + 3}.weight": split_in(parent_state[f"{linear + 3}.weight"], mapping, noise=WIDEN_NOISE,
                                                                   generator=generator)})
        else:  # deepen: the layers from the new one on move three places down the Sequential
            filled = transplant(model, parent_state, shift_from(linear, by=3))
            identity_(model[linear])
        return parameter_fraction(model, filled)

    def _reduced(self, width: float, depth: float) -> MLPSpace:
        return _args.narrowed(self, width, depth)  # type: ignore[no-any-return]

    def build(self, sample: Mapping[str, Primitive], input_shape: Sequence[int], num_classes: int) -> nn.Module:
        """The network for ``sample``; inputs of any rank are flattened to ``prod(input_shape)`` features."""
        s = self.validate(sample)
        shape = tuple(input_shape)
        if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
            raise ConfigError(f"`input_shape` must be a non-empty tuple of positive sizes, but got {shape!r}.")
        num_classes = _args.num_classes(num_classes)
        act = ACTIVATIONS[str(s["activation"])]
        p = float(s["dropout"])  # type: ignore[arg-type]
        features = math.prod(shape)
        modules: list[nn.Module] = [nn.Flatten()]
        for i in range(1, int(s["depth"]) + 1):  # type: ignore[arg-type]
            width = _args.scaled(int(s[f"layer{i}.width"]), self.width_factor)  # type: ignore[arg-type]
            modules += [nn.Linear(features, width), act(), nn.Dropout(p)]
            features = width
        modules.append(nn.Linear(features, num_classes))
        return nn.Sequential(*modules)
