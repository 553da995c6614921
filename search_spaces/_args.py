"""Checks for space constructor arguments, shared by the families.

Arguments arrive from YAML through Hydra, so lists may be ``ListConfig`` and mappings ``DictConfig``;
each helper accepts any sequence or mapping and returns plain Python values. Every error names the
key, says what must hold and shows what was received.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nas.core import Categorical, ConfigError, Float, Integer
from nas.core.errors import unknown_name_message


def as_list(key: str, value: Any) -> list[Any]:
    """``value`` as a plain non-empty list (a lone scalar counts as a one-element list)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or isinstance(value, Mapping):
        value = [value]
    out = list(value)
    if not out:
        raise ConfigError(f"`{key}` must hold at least one value, but got an empty list.")
    if len(set(map(repr, out))) != len(out):
        raise ConfigError(f"`{key}` must hold distinct values, but got {out!r}.")
    return out


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def int_choices(key: str, value: Any, *, minimum: int, what: str = "positive integers") -> list[int]:
    """Distinct integers ``>= minimum``, e.g. ``widths`` or ``head_hidden``."""
    values = as_list(key, value)
    if not all(_is_int(v) and v >= minimum for v in values):
        raise ConfigError(f"`{key}` must hold {what}, but got {values!r}.")
    return values


def positive_int(key: str, value: Any) -> int:
    if not _is_int(value) or value < 1:
        raise ConfigError(f"`{key}` must be a positive integer, but got {value!r}.")
    return int(value)


def num_classes(value: Any) -> int:
    """``build``'s ``num_classes``: a positive integer."""
    if not _is_int(value) or value < 1:
        raise ConfigError(f"`num_classes` must be a positive integer, but got {value!r}.")
    return int(value)


def name_choices(key: str, value: Any, valid: Iterable[str], *, kind: str = "name") -> list[str]:
    """Distinct names drawn from ``valid``; an unknown one is answered with the valid list."""
    values = as_list(key, value)
    valid = list(valid)
    for v in values:
        if v not in valid:
            raise ConfigError(f"`{key}`: " + unknown_name_message(kind, v, valid))
    return values


def bool_choices(key: str, value: Any) -> list[bool]:
    values = as_list(key, value)
    if not all(isinstance(v, bool) for v in values):
        raise ConfigError(f"`{key}` must hold booleans (false, true), but got {values!r}.")
    return values


def int_dimension(values: list[int]) -> Integer | Categorical:
    """Allowed integers (e.g. depths) as a dimension: a contiguous range becomes an ordered
    :class:`Integer`, so local search steps by one and TPE sees an order; a gapped list stays
    :class:`Categorical`."""
    values = sorted(values)
    if values == list(range(values[0], values[-1] + 1)):
        return Integer(values[0], values[-1])
    return Categorical(tuple(values))


def float_range(key: str, value: Any, *, low: float, high: float, high_open: bool = False) -> Float:
    """A :class:`Float` from ``{low: a, high: b}``, ``[a, b]`` or a lone number (fixed), inside the bounds."""
    if isinstance(value, Mapping):
        extra = sorted(set(value) - {"low", "high", "log"})
        if extra or "low" not in value or "high" not in value:
            raise ConfigError(f"`{key}` must be a mapping with keys `low` and `high` (and optional `log`), but got keys {sorted(value)!r}.")
        a, b, log = value["low"], value["high"], value.get("log", False)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise ConfigError(f"`{key}` must be [low, high], but got {list(value)!r}.")
        a, b, log = value[0], value[1], False
    else:
        a = b = value
        log = False
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (a, b)):
        raise ConfigError(f"`{key}` bounds must be numbers, but got (low={a!r}, high={b!r}).")
    if not (low <= a <= b and (b < high if high_open else b <= high)):
        rule = f"{low} <= low <= high {'<' if high_open else '<='} {high}"
        raise ConfigError(f"`{key}` must satisfy `{rule}`, but got (low={a}, high={b}).")
    try:
        return Float(float(a), float(b), log=bool(log))
    except ConfigError as err:
        raise ConfigError(f"`{key}`: {err}") from None


def scaled(size: int, factor: float) -> int:
    """A channel or unit count times a width multiplier, never below 1."""
    return max(1, round(size * factor))


def narrowed(space: Any, width: float, depth: float) -> Any:
    """A copy of ``space`` whose ``build`` scales widths by ``width`` (spaces with a ``width_factor``
    attribute); a depth multiplier is refused, because in these spaces depth is a searched dimension."""
    if depth != 1:
        raise ConfigError(f"space {space.name!r}: `depth_multiplier == 1` must hold, because depth is the searched dimension "
                          f"`depth` (fewer layers would be another architecture); use width_multiplier, epochs or "
                          f"data_fraction for a cheaper estimate, but got depth_multiplier={depth}.")
    narrow = copy.copy(space)
    narrow.width_factor = width
    return narrow



def function_target(space: str, key: str, spec: Any, what: str) -> Any:
    """The function a space's ``key: {_target_: ...}`` names, and its extra keys (:func:`nas._config.function_of`)."""
    from nas._config import function_of

    return function_of(spec, key=key, kind=f"space '{space}'", what=what)
