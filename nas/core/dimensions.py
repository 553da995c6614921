"""Dimensions: the flat, typed axes a strategy sees. Spaces declare them; samples fill them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from nas.core.errors import ConfigError, InvalidSampleError

Primitive = Union[str, int, float, bool, None]


@dataclass(frozen=True)
class Categorical:
    """An unordered choice among primitives (str, int, float, bool or None)."""

    choices: tuple[Primitive, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise ConfigError("`choices` must hold at least one value, but got an empty list.")
        bad = [c for c in self.choices if not isinstance(c, (str, int, float, bool, type(None)))]
        if bad:
            raise ConfigError(f"`choices` must be primitives (str, int, float, bool, None), but got {bad!r}.")
        if len(set(self.choices)) != len(self.choices):
            raise ConfigError(f"`choices` must be distinct, but got {list(self.choices)!r}.")

    @property
    def default(self) -> Primitive:
        return self.choices[0]

    def contains(self, value: Any) -> bool:
        return any(value == c and type(value) is type(c) for c in self.choices) or (
            # JSON turns ints stored as floats back; accept 3.0 for 3 only if 3 is a choice.
            isinstance(value, float) and value.is_integer() and int(value) in self.choices
        )

    def normalize(self, value: Any) -> Primitive:
        for c in self.choices:
            if value == c and (type(value) is type(c) or not isinstance(c, bool)):
                return c
        return value

    def sample(self, rng: np.random.Generator) -> Primitive:
        return self.choices[int(rng.integers(len(self.choices)))]

    def grid(self) -> list[Primitive]:
        return list(self.choices)

    def neighbors(self, value: Primitive) -> list[Primitive]:
        return [c for c in self.choices if c != value]

    def suggest(self, trial: Any, name: str) -> Primitive:
        return trial.suggest_categorical(name, self.choices)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Integer:
    """An integer in ``[low, high]`` on a grid of ``step``, optionally log-spaced."""

    low: int
    high: int
    step: int = 1
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ConfigError(f"`low <= high` must hold, but got (low={self.low}, high={self.high}).")
        if self.step < 1:
            raise ConfigError(f"`step >= 1` must hold, but got step={self.step}.")
        if self.log and (self.low < 1 or self.step != 1):
            raise ConfigError(f"log-spaced integers need `low >= 1` and `step == 1`, but got (low={self.low}, step={self.step}).")

    @property
    def default(self) -> int:
        return self.low

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
            return False
        return self.low <= int(value) <= self.high and (int(value) - self.low) % self.step == 0

    def normalize(self, value: Any) -> Any:
        return int(value) if self.contains(value) else value

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            return int(min(self.high, max(self.low, round(math.exp(rng.uniform(math.log(self.low), math.log(self.high + 0.5)) - 1e-12)))))
        return self.low + self.step * int(rng.integers((self.high - self.low) // self.step + 1))

    def grid(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def neighbors(self, value: int) -> list[int]:
        return [v for v in (value - self.step, value + self.step) if self.low <= v <= self.high]

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)


@dataclass(frozen=True)
class Float:
    """A real number in ``[low, high]``; ``resolution`` points discretise it for grid and local moves."""

    low: float
    high: float
    log: bool = False
    resolution: int = 5

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ConfigError(f"`low <= high` must hold, but got (low={self.low}, high={self.high}).")
        if self.log and self.low <= 0:
            raise ConfigError(f"log-spaced floats need `low > 0`, but got low={self.low}.")
        if self.resolution < 2 and self.low != self.high:
            raise ConfigError(f"`resolution >= 2` must hold, but got resolution={self.resolution}.")

    @property
    def default(self) -> float:
        return float(self.low)

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    def normalize(self, value: Any) -> Any:
        return float(value) if self.contains(value) else value

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def grid(self) -> list[float]:
        if self.low == self.high:
            return [float(self.low)]
        points = (np.geomspace if self.log else np.linspace)(self.low, self.high, self.resolution)
        return [round(float(p), 12) for p in points]

    def neighbors(self, value: float) -> list[float]:
        grid = self.grid()
        nearest = int(np.argmin([abs(g - value) for g in grid]))
        return [grid[i] for i in (nearest - 1, nearest + 1) if 0 <= i < len(grid) and grid[i] != value]

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)


Dimension = Union[Categorical, Integer, Float]


def check_value(name: str, dim: Dimension, value: Any) -> None:
    """Raise :class:`InvalidSampleError` naming ``name`` unless ``value`` lies in ``dim``."""
    if dim.contains(value):
        return
    if isinstance(dim, Categorical):
        must = f"one of {list(dim.choices)!r}"
    elif isinstance(dim, Integer):
        must = f"an integer in [{dim.low}, {dim.high}]" + (f" with step {dim.step}" if dim.step != 1 else "")
    else:
        must = f"a number in [{dim.low}, {dim.high}]"
    raise InvalidSampleError(f"`{name}` must be {must}, but got {value!r}.")
