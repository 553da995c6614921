"""What turns the user's raw arrays into the tensors a network was trained on, kept with the run.

A :class:`Preprocessing` is a raw example shape and a sequence of small steps (add a channel axis,
divide, standardise, downscale), frozen and JSON round-trippable. The loaders in :mod:`nas.datasets`
build their training tensors by applying it, so what is saved is exactly what the network saw; the
run directory keeps it (``best/preprocessing.json``) and :meth:`nas.SearchResult.best_model` puts
its module in front of the trained network, so the exported model takes raw inputs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Union

import numpy as np
import torch
from torch import nn

from nas.core.errors import ConfigError, unknown_name_message

PREPROCESSING_FILE = "preprocessing.json"
FORMAT_VERSION = 1


def _shape(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in value):
        raise ConfigError(f"preprocessing: `{what}` must be a list of positive integers, but got {value!r}.")
    return tuple(value)


def _floats(value: Any, what: str) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise ConfigError(f"preprocessing: `{what}` must be a non-empty list of finite numbers, but got "
                          f"{value if not isinstance(value, (list, tuple)) or len(value) <= 8 else f'{len(value)} values'!r}.")
    return tuple(float(v) for v in value)


@dataclass(frozen=True)
class AddChannelAxis:
    """``(N, *S) -> (N, 1, *S)``: one channel for images given as ``(N, H, W)`` or signals as ``(N, L)``."""

    op: ClassVar[str] = "add_channel_axis"

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (1, *shape)

    def module(self) -> nn.Module:
        return _AddChannelAxis()

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AddChannelAxis:
        return cls()

    def __str__(self) -> str:
        return "add channel axis"


@dataclass(frozen=True)
class Divide:
    """``x / by``, e.g. digits' pixel values 0..16 divided by 16."""

    by: float
    op: ClassVar[str] = "divide"

    def __post_init__(self) -> None:
        if isinstance(self.by, bool) or not isinstance(self.by, (int, float)) or not math.isfinite(self.by) or self.by == 0:
            raise ConfigError(f"preprocessing 'divide': `by` must be a finite non-zero number, but got by={self.by!r}.")

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def module(self) -> nn.Module:
        return _Divide(float(self.by))

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "by": float(self.by)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Divide:
        return cls(by=_floats([d.get("by")], "divide.by")[0])

    def __str__(self) -> str:
        return f"divide by {self.by:g}"


@dataclass(frozen=True)
class Standardize:
    """``(x - mean) / std``: one mean and std for every value (``shape=()``, global), or one per
    feature (``shape`` is the example shape at this step; ``mean``/``std`` hold its values flattened)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    shape: tuple[int, ...] = ()
    op: ClassVar[str] = "standardize"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _floats(self.mean, "standardize.mean"))
        object.__setattr__(self, "std", _floats(self.std, "standardize.std"))
        object.__setattr__(self, "shape", _shape(self.shape, "standardize.shape") if self.shape else ())
        size = math.prod(self.shape)
        if len(self.mean) != size or len(self.std) != size:
            raise ConfigError(f"preprocessing 'standardize': `mean` and `std` must hold {size} values each (shape "
                              f"{self.shape}), but got {len(self.mean)} and {len(self.std)}.")
        if not all(s > 0 for s in self.std):
            raise ConfigError("preprocessing 'standardize': every `std` value must be > 0, but some are not.")

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.shape and shape != self.shape:
            raise ConfigError(f"preprocessing 'standardize': per-feature statistics of shape {self.shape} need examples "
                              f"of that shape at this step, but they have shape {shape}.")
        return shape

    def module(self) -> nn.Module:
        return _Standardize(self)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "mean": list(self.mean), "std": list(self.std), "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Standardize:
        shape = d.get("shape", [])
        return cls(mean=_floats(d.get("mean"), "standardize.mean"), std=_floats(d.get("std"), "standardize.std"),
                   shape=_shape(shape, "standardize.shape") if shape else ())

    def __str__(self) -> str:
        if not self.shape:
            return f"standardize (mean {self.mean[0]:.6g}, std {self.std[0]:.6g})"
        return f"standardize per feature {self.shape}"

    def __repr__(self) -> str:
        if not self.shape:
            return f"Standardize(mean={self.mean}, std={self.std})"
        return f"Standardize(<per-feature statistics of shape {self.shape}>)"


@dataclass(frozen=True)
class Downscale:
    """Area averaging of the spatial axes to ``size`` (``(L,)`` for ``(C, L)`` signals, ``(H, W)`` for
    ``(C, H, W)`` images): the training estimator's low-fidelity ``input_scale``."""

    size: tuple[int, ...]
    op: ClassVar[str] = "downscale"

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", _shape(self.size, "downscale.size"))
        if not 1 <= len(self.size) <= 2:
            raise ConfigError(f"preprocessing 'downscale': `size` must have 1 or 2 entries (L or H, W), but got {self.size}.")

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != len(self.size) + 1:
            axes = "C, L" if len(self.size) == 1 else "C, H, W"
            raise ConfigError(f"preprocessing 'downscale': to size {self.size} needs examples of shape ({axes}), but they have shape {shape}.")
        return (shape[0], *self.size)

    def module(self) -> nn.Module:
        return _Downscale(self.size)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "size": list(self.size)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Downscale:
        return cls(size=_shape(d.get("size"), "downscale.size"))

    def __str__(self) -> str:
        return f"downscale to {'x'.join(map(str, self.size))}"


Step = Union[AddChannelAxis, Divide, Standardize, Downscale]
STEPS: dict[str, Any] = {cls.op: cls for cls in (AddChannelAxis, Divide, Standardize, Downscale)}


@dataclass(frozen=True)
class Preprocessing:
    """From the user's raw arrays to network input: ``steps`` in order, on examples of ``raw_shape``.

    ``Preprocessing()`` is the identity (what a ``DataSplits`` built by hand has unless told
    otherwise). Apply it with ``pre(x)`` to a numpy array (returns float32 numpy) or a tensor (returns
    a float32 tensor on the same device), or put ``pre.module()`` in a model; both run the same code.
    Inputs must be batches ``(N, *raw_shape)``; where the first step adds a channel axis, batches
    that already have it (``(N, 1, *raw_shape)``) are accepted too. ``raw_shape=None`` skips the check.
    """

    steps: tuple[Step, ...] = ()
    raw_shape: tuple[int, ...] | None = None
    _output_shape: tuple[int, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        for step in self.steps:
            if not isinstance(step, tuple(STEPS.values())):
                raise ConfigError(f"preprocessing: every step must be one of {sorted(STEPS)}, but got {type(step).__name__}.")
        if self.raw_shape is not None:
            shape = _shape(self.raw_shape, "raw_shape")
            object.__setattr__(self, "raw_shape", shape)
            for step in self.steps:
                shape = step.output_shape(shape)  # refuses a pipeline that cannot run on its own raw shape
            object.__setattr__(self, "_output_shape", shape)

    @property
    def is_identity(self) -> bool:
        return not self.steps

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """The example shape the network sees (None when ``raw_shape`` is unknown)."""
        return self._output_shape

    def then(self, *steps: Step) -> Preprocessing:
        """This preprocessing followed by ``steps``."""
        return replace(self, steps=(*self.steps, *steps))

    # ---- applying ------------------------------------------------------------------------------
    def module(self) -> PreprocessingModule:
        """A ``torch.nn.Module`` doing the same inside a model (its statistics are non-persistent
        buffers: they follow ``.to(device)`` and stay out of the ``state_dict``)."""
        return PreprocessingModule(self)

    def __call__(self, x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            with torch.no_grad():
                return self.module().to(x.device)(x)
        array = np.ascontiguousarray(x, dtype=np.float32)
        with torch.no_grad():
            return self.module()(torch.from_numpy(array)).numpy()

    apply = __call__

    # ---- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "raw_shape": None if self.raw_shape is None else list(self.raw_shape),
                "steps": [step.to_dict() for step in self.steps]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessing:
        if not isinstance(d, Mapping) or not isinstance(d.get("steps", []), list):
            raise ConfigError(f"preprocessing: must be a mapping with a list of `steps`, but got {type(d).__name__}.")
        if d.get("format", FORMAT_VERSION) != FORMAT_VERSION:
            raise ConfigError(f"preprocessing: `format` must be {FORMAT_VERSION}, but got {d.get('format')!r}.")
        steps = []
        for item in d.get("steps", []):
            op = item.get("op") if isinstance(item, Mapping) else None
            if op not in STEPS:
                raise ConfigError("preprocessing: " + unknown_name_message("step", op, STEPS))
            steps.append(STEPS[op].from_dict(item))
        raw = d.get("raw_shape")
        return cls(steps=tuple(steps), raw_shape=None if raw is None else _shape(raw, "raw_shape"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Preprocessing:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> Path:
        """Write the JSON form to ``path`` atomically."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Preprocessing:
        return cls.from_json(Path(path).read_text())

    def __str__(self) -> str:
        raw = "any shape" if self.raw_shape is None else "x".join(map(str, self.raw_shape))
        return f"raw {raw}: " + (" -> ".join(map(str, self.steps)) or "identity")


class PreprocessingModule(nn.Module):
    """:class:`Preprocessing` as a module: raw batches in (any numeric dtype), float32 network input out."""

    def __init__(self, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.preprocessing = preprocessing
        self.steps = nn.Sequential(*(step.module() for step in preprocessing.steps))
        raw = preprocessing.raw_shape
        self._raw = raw
        self._with_channel = (1, *raw) if raw is not None and preprocessing.steps and isinstance(preprocessing.steps[0], AddChannelAxis) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape[1:])
        steps: Iterable[nn.Module] = self.steps
        if self._raw is not None and shape != self._raw:
            if shape != self._with_channel:
                accepted = f"(N, {', '.join(map(str, self._raw))})" + (
                    "" if self._with_channel is None else f" or (N, {', '.join(map(str, self._with_channel))})")
                raise ValueError(f"preprocessing: inputs must be a batch of raw examples of shape {accepted}, but got shape {tuple(x.shape)}.")
            steps = list(self.steps)[1:]  # the channel axis is already there
        x = x.to(torch.float32)
        for step in steps:
            x = step(x)
        return x

    def extra_repr(self) -> str:
        return str(self.preprocessing)


class _AddChannelAxis(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1)


class _Divide(nn.Module):
    def __init__(self, by: float) -> None:
        super().__init__()
        self.by = by

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.by


class _Standardize(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, step: Standardize) -> None:
        super().__init__()
        self.global_stats = None if step.shape else (step.mean[0], step.std[0])
        shape = step.shape or (1,)
        self.register_buffer("mean", torch.tensor(step.mean, dtype=torch.float32).reshape(shape), persistent=False)
        self.register_buffer("std", torch.tensor(step.std, dtype=torch.float32).reshape(shape), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.global_stats is not None:  # Python scalars: the arithmetic the loaders have always done
            return (x - self.global_stats[0]) / self.global_stats[1]
        return (x - self.mean) / self.std


class _Downscale(nn.Module):
    def __init__(self, size: tuple[int, ...]) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.size) == 1:
            return nn.functional.adaptive_avg_pool1d(x, self.size)
        return nn.functional.adaptive_avg_pool2d(x, self.size)  # type: ignore[arg-type]
