"""Generic space: dimensions listed in YAML, with conditions; for lookup tables, HPO, or any builder.

Declared in YAML alone (a lookup-only space: eight lines)::

    _target_: search_spaces.generic.GenericSpace
    name: my_benchmark
    dimensions:
      optimizer: [adam, sgd]                                  # a list: categorical
      lr: {low: 1.0e-4, high: 0.1, log: true}                 # a float range
      layers: {low: 1, high: 4}                               # integer bounds: an integer range
      momentum: {low: 0.0, high: 0.99, active_if: {optimizer: sgd}}
      width: {choices: [32, 64, 128], active_if: {layers: [2, 3, 4]}}

Each dimension is a list (categorical), or a mapping with ``choices`` (categorical) or ``low``/``high``
(integers when both are integers, else floats; ``type: int|float`` says it outright) and optionally
``step``, ``log``, ``resolution`` (grid points of a float). ``active_if`` maps earlier dimensions to the
value, or list of values, each must have; all must hold. An inactive dimension is absent from the
sample and from the key, so two samples that differ only there are one architecture.

``build`` is optional: the ``_target_`` of a function ``(sample, input_shape, num_classes) ->
nn.Module`` (any extra keys are passed to it as keywords). Without it the space is lookup-only: a table
estimator scores it, and an estimator that trains refuses it before the search starts. ``canonical``
is optional too: the ``_target_`` of a function of the active sample giving the text under which
equivalent architectures share a key (a benchmark's own hash).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nas.core import Categorical, ConfigError, Float, Integer, SearchSpace
from nas.core.dimensions import Dimension, Primitive
from search_spaces import _args

_PRIMITIVE = (str, int, float, bool, type(None))
_RANGE_KEYS = {"low", "high", "step", "log", "resolution", "type"}


class GenericSpace(SearchSpace):
    """Dimensions as declared, in the order listed; see the module docstring for the YAML form.

    Args (keyword-only):
        name: registry name, the YAML file's stem.
        dimensions: ``{name: list | mapping}``, in dependency order.
        build: ``{_target_: pkg.module.function, **kwargs}`` building a network for a sample, or ``None``
            for a lookup-only space.
        canonical: ``{_target_: pkg.module.function}`` of the active sample, returning the text under which
            equivalent architectures collide (a benchmark's own hash); ``None``: the active dimensions.
    """

    def __init__(self, *, name: str = "generic", dimensions: Mapping[str, Any] | None = None,
                 build: Mapping[str, Any] | None = None, canonical: Mapping[str, Any] | None = None) -> None:
        self.name = name
        if not isinstance(dimensions, Mapping) or not dimensions:
            raise ConfigError(f"space '{name}': `dimensions` must be a non-empty mapping of names to a list of choices or "
                              f"a mapping (choices, or low/high), but got {dimensions!r}.")
        self._dims: dict[str, Dimension] = {}
        self._conditions: dict[str, dict[str, tuple[Primitive, ...]]] = {}
        for dim_name, spec in dimensions.items():
            if not isinstance(dim_name, str) or not dim_name or any(c.isspace() or c == "=" for c in dim_name):
                raise ConfigError(f"space '{name}': dimension names must be non-empty strings without spaces or '=', "
                                  f"but got {dim_name!r}.")
            self._dims[dim_name], condition = _dimension(name, dim_name, spec)
            self._conditions[dim_name] = _condition(name, dim_name, condition, self._dims)
        self._builder, self._build_kwargs = _args.function_target(name, "build", build, "(sample, input_shape, num_classes) -> nn.Module")
        self._canonical, _ = _args.function_target(name, "canonical", canonical, "(sample) -> str")
        self.lookup_only = self._builder is None

    def dimensions(self) -> dict[str, Dimension]:
        return dict(self._dims)

    def is_active(self, name: str, partial: Mapping[str, Primitive]) -> bool:
        return all(name_ in partial and partial[name_] in values for name_, values in self._conditions[name].items())

    def build(self, sample: Mapping[str, Primitive], input_shape: Sequence[int], num_classes: int) -> Any:
        if self._builder is None:
            raise ConfigError(f"space '{self.name}' is lookup-only (it declares no `build`): score it with a table "
                              "estimator (estimator=table), or add `build: {_target_: pkg.module.function}` to its YAML.")
        return self._builder(self.validate(sample), tuple(input_shape), num_classes, **self._build_kwargs)

    def canonical(self, sample: Mapping[str, Primitive]) -> str:
        if self._canonical is None:
            return super().canonical(sample)
        return str(self._canonical(self.active(sample)))



def _dimension(space: str, name: str, spec: Any) -> tuple[Dimension, Any]:
    """The dimension declared by ``spec`` and its ``active_if`` (or ``None``)."""
    where = f"space '{space}': dimension `{name}`"
    if isinstance(spec, (list, tuple)):
        return _categorical(where, spec), None
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where} must be a list of choices or a mapping with `choices` or `low`/`high`, but got {spec!r}.")
    spec = dict(spec)
    condition = spec.pop("active_if", None)
    if "choices" in spec:
        extra = sorted(set(spec) - {"choices"})
        if extra:
            raise ConfigError(f"{where}: a categorical dimension takes only `choices` and `active_if`, but got also {extra}.")
        return _categorical(where, spec["choices"]), condition
    unknown = sorted(set(spec) - _RANGE_KEYS)
    if unknown or "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where} must give `choices`, or `low` and `high` (with optional {sorted(_RANGE_KEYS - {'low', 'high'})} "
                          f"and `active_if`), but got keys {sorted(spec)}.")
    low, high = spec["low"], spec["high"]
    for key, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: `{key}` must be a number, but got {value!r}.")
    kind = spec.get("type", "int" if isinstance(low, int) and isinstance(high, int) and isinstance(spec.get("step", 1), int) else "float")
    try:
        if kind == "int":
            if float(low) != int(low) or float(high) != int(high):
                raise ConfigError(f"`low` and `high` of an integer dimension must be integers, but got low={low!r}, high={high!r}.")
            if "resolution" in spec:
                raise ConfigError("`resolution` is for float dimensions; an integer dimension takes `step`.")
            return Integer(int(low), int(high), step=int(spec.get("step", 1)), log=bool(spec.get("log", False))), condition
        if kind == "float":
            if "step" in spec:
                raise ConfigError("`step` is for integer dimensions; a float dimension takes `resolution` (grid points).")
            return Float(float(low), float(high), log=bool(spec.get("log", False)), resolution=int(spec.get("resolution", 5))), condition
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    raise ConfigError(f"{where}: `type` must be 'int' or 'float', but got {kind!r}.")


def _categorical(where: str, choices: Any) -> Categorical:
    if not isinstance(choices, (list, tuple)):
        raise ConfigError(f"{where}: `choices` must be a list, but got {choices!r}.")
    try:
        return Categorical(tuple(choices))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _condition(space: str, name: str, condition: Any, earlier: Mapping[str, Dimension]) -> dict[str, tuple[Primitive, ...]]:
    """``active_if`` as ``{earlier dimension: allowed values}``; only dimensions listed before ``name``."""
    if condition is None:
        return {}
    where = f"space '{space}': `{name}.active_if`"
    if not isinstance(condition, Mapping) or not condition:
        raise ConfigError(f"{where} must map earlier dimensions to a value or a list of values, but got {condition!r}.")
    out: dict[str, tuple[Primitive, ...]] = {}
    before = [n for n in earlier if n != name]
    for other, values in condition.items():
        if other not in before:
            raise ConfigError(f"{where} may name only dimensions listed before `{name}` ({before}), but got `{other}`.")
        allowed = tuple(values) if isinstance(values, (list, tuple)) else (values,)
        dim = earlier[other]
        bad = [v for v in allowed if not isinstance(v, _PRIMITIVE) or not dim.contains(v)]
        if bad or not allowed:
            raise ConfigError(f"{where}: the values of `{other}` must lie in its domain ({dim}), but got {list(allowed)!r}.")
        out[other] = tuple(dim.normalize(v) for v in allowed)
    return out


def mlp(sample: Mapping[str, Primitive], input_shape: Sequence[int], num_classes: int, *, depth: str = "layers",
        width: str = "width", activation: str = "activation", dropout: str = "dropout") -> Any:
    """A builder for :class:`GenericSpace`: ``Flatten -> [Linear -> activation -> Dropout] x sample[depth] -> Linear``.

    The keyword arguments name the sample's dimensions; ``activation`` and ``dropout`` may be absent
    (ReLU, no dropout) or inactive. ``configs/space/generic_mlp.yaml`` declares a space built by it."""
    import math

    from torch import nn

    from search_spaces.mlp import ACTIVATIONS

    act_name = str(sample.get(activation, "relu"))
    if act_name not in ACTIVATIONS:
        raise ConfigError(f"`{activation}` must name one of {sorted(ACTIVATIONS)}, but got {act_name!r}.")
    features, layers = math.prod(input_shape), [nn.Flatten()]
    for _ in range(int(sample[depth])):  # type: ignore[arg-type]
        layers += [nn.Linear(features, int(sample[width])), ACTIVATIONS[act_name](),  # type: ignore[arg-type]
                   nn.Dropout(float(sample.get(dropout) or 0.0))]  # type: ignore[arg-type]
        features = int(sample[width])  # type: ignore[arg-type]
    return nn.Sequential(*layers, nn.Linear(features, num_classes))
