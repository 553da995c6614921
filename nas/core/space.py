"""The search-space contract. Families live in ``search_spaces/``; strategies see only this."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.core.architecture import Architecture
from nas.core.diagram import Diagram
from nas.core.dimensions import Dimension, Primitive, check_value
from nas.core.errors import ConfigError, InvalidSampleError

Sample = dict[str, Primitive]
_KEY_CACHE_SIZE = 200_000


@dataclass(frozen=True)
class Morph:
    """A child reachable from a parent by a function-preserving network morphism.

    ``kind`` names the morphism (``widen``, ``deepen``, ``widen_kernel``, ``add_op``, ...), ``where`` the
    part of the network it changes (``layer2``, ``cell.e0_3``); ``child`` is the child's active sample."""

    child: Sample
    kind: str
    where: str

    def __str__(self) -> str:
        return f"{self.kind} {self.where}"


@dataclass(frozen=True)
class Inherited:
    """A child model built from a parent's trained state (:meth:`SearchSpace.inherit`).

    ``fraction`` is the share of the child's parameter elements that came from the parent. ``morph``
    is the function-preserving morphism applied, or ``None`` when the child only took the tensors
    whose structural name and shape match (Real et al. 2017), which changes the function."""

    model: Any
    fraction: float
    morph: Morph | None


class SearchSpace(ABC):
    """A declared family of architectures, seen by strategies as flat, typed dimensions.

    Contract, with when each method is used:

    - :meth:`dimensions` (abstract) is read by strategies and by the Optuna adapter. It covers every
      dimension that can ever be active, *in dependency order*: whether a dimension is active may
      depend only on dimensions listed before it.
    - :meth:`is_active` is asked while walking that order; override it for conditional dimensions.
    - :meth:`build` (abstract) is called by estimators, once per trial.
    - :meth:`canonical` feeds :meth:`key`; override it so that architectures computing the same
      function share a key (the default keeps the active dimensions only).
    - :meth:`format` / :meth:`parse` give a compact text form; override both together.
    - :meth:`neighbors` is used by mutation and local search.
    - :meth:`reduced` is called once by a low-fidelity estimator: the same dimensions, keys and text
      form, but :meth:`build` makes a narrower or shallower network.
    - :meth:`morphs` lists the children a morphism strategy may propose; :meth:`inherit` is called by
      an estimator that trains a child from its parent's weights. Families override
      :meth:`morphs` and :meth:`_apply_morph` together.
    """

    #: Registry name (the YAML file's stem for declared spaces).
    name: str = "space"
    #: ``True`` for a space that is only looked up (a benchmark's table): it has no network to build,
    #: estimators that train refuse it before the search starts, and the contract skips building it.
    lookup_only: bool = False
    #: ``True`` where :meth:`check` refuses some samples whose every value lies in its domain (NAS-Bench-101's
    #: edge limit): :meth:`sample`, :meth:`mutate`, :meth:`neighbors` and :meth:`grid` then give valid
    #: samples only (redrawing, or filtering), and strategies that draw dimension by dimension redraw.
    constrained: bool = False
    #: Draws :meth:`sample` makes to find a valid sample of a constrained space before it gives up.
    max_draws: int = 10_000

    # ---- abstract part -------------------------------------------------------------------------
    @abstractmethod
    def dimensions(self) -> dict[str, Dimension]:
        """Every dimension that can ever be active, in dependency order."""

    @abstractmethod
    def build(self, sample: Mapping[str, Primitive], input_shape: Sequence[int], num_classes: int) -> Any:
        """Return a ``torch.nn.Module`` for ``sample`` taking ``(batch, *input_shape)`` inputs."""

    # ---- activity ------------------------------------------------------------------------------
    def is_active(self, name: str, partial: Mapping[str, Primitive]) -> bool:
        """Whether ``name`` is active given the values of the dimensions before it."""
        return True

    def active(self, sample: Mapping[str, Primitive]) -> Sample:
        """The active part of ``sample``, in dimension order (inactive keys are dropped)."""
        out: Sample = {}
        for name in self.dimensions():
            if self.is_active(name, out):
                if name not in sample:
                    raise InvalidSampleError(f"`{name}` is active in space '{self.name}' and must be set, but the sample has no value for it.")
                out[name] = sample[name]
        return out

    def validate(self, sample: Mapping[str, Primitive]) -> Sample:
        """Check ``sample`` and return its normalised active part; errors name the key."""
        if not isinstance(sample, Mapping):
            raise InvalidSampleError(f"A sample must be a mapping of dimension names to values, but got {type(sample).__name__}.")
        dims = self.dimensions()
        unknown = [k for k in sample if k not in dims]
        if unknown:
            from nas.core.errors import unknown_name_message

            raise InvalidSampleError(unknown_name_message(f"dimension of space '{self.name}':", unknown[0], dims))
        out: Sample = {}
        for name, dim in dims.items():
            if not self.is_active(name, out):
                continue
            if name not in sample:
                raise InvalidSampleError(f"`{name}` is active in space '{self.name}' and must be set, but the sample has no value for it.")
            check_value(name, dim, sample[name])
            out[name] = dim.normalize(sample[name])
        self.check(out)
        return out

    def check(self, sample: Sample) -> None:
        """Extra structural checks on a validated sample; raise :class:`InvalidSampleError`.

        A space whose check can refuse a sample of in-domain values sets :attr:`constrained`."""

    def is_valid(self, sample: Mapping[str, Primitive]) -> bool:
        """Whether ``sample`` validates (every value in its domain and :meth:`check` passes)."""
        try:
            self.validate(sample)
        except InvalidSampleError:
            return False
        return True

    # ---- identity ------------------------------------------------------------------------------
    def canonical(self, sample: Mapping[str, Primitive]) -> str:
        """A string equal for equivalent architectures. Default: the active dimensions as JSON."""
        return json.dumps(self.active(sample), sort_keys=True, separators=(",", ":"))

    def key(self, sample: Mapping[str, Primitive]) -> str:
        """Canonical hash (16 hex digits) under which equivalent architectures collide.

        Memoised per space instance: strategies compare keys of many candidates on every ask."""
        try:
            token: Any = tuple(sample.items())
            cache: dict[Any, str] = self.__dict__.setdefault("_key_cache", {})
            hit = cache.get(token)
        except TypeError:  # an unhashable value: compute without the cache
            token, cache, hit = None, {}, None
        if hit is None:
            hit = hashlib.sha1(self.canonical(sample).encode()).hexdigest()[:16]
            if token is not None and len(cache) < _KEY_CACHE_SIZE:
                cache[token] = hit
        return hit

    def architecture(self, sample: Mapping[str, Primitive]) -> Architecture:
        """Validate ``sample`` and wrap it with its space name and key."""
        clean = self.validate(sample)
        return Architecture(space=self.name, sample=clean, key=self.key(clean))

    # ---- text form -----------------------------------------------------------------------------
    def diagram(self, sample: Mapping[str, Primitive]) -> Diagram:
        """What a picture of ``sample`` shows (TensorBoard's images of the top candidates). By default a
        chain: one node per group of active dimensions that share a prefix (``layer1.op`` and
        ``layer1.width`` make node ``layer1``), the others in the caption. Cell spaces override it."""
        groups: dict[str, list[str]] = {}
        loose = []
        for name, value in self.active(sample).items():
            prefix, dot, field = name.partition(".")
            text = f"{value:.3g}" if isinstance(value, float) else str(value)
            if dot:
                groups.setdefault(prefix, []).append(f"{field}={text}")
            else:
                loose.append(f"{name}={text}")
        return Diagram.chain(["input", *(f"{prefix}: {' '.join(fields)}" for prefix, fields in groups.items()), "output"],
                             caption=" ".join(loose))

    def format(self, sample: Mapping[str, Primitive]) -> str:
        """Compact text form; :meth:`parse` inverts it."""
        return " ".join(f"{k}={json.dumps(v)}" for k, v in self.active(sample).items())

    def parse(self, text: str) -> Sample:
        """Inverse of :meth:`format`."""
        sample: dict[str, Any] = {}
        for token in text.split():
            name, sep, value = token.partition("=")
            if not sep:
                raise InvalidSampleError(f"Each token of a '{self.name}' architecture string must read `name=value`, but got {token!r}.")
            try:
                sample[name] = json.loads(value)
            except json.JSONDecodeError:
                sample[name] = value
        return self.validate(sample)

    # ---- exploration helpers used by strategies -------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Sample:
        """A sample drawn uniformly, dimension by dimension, over the active dimensions; for a
        :attr:`constrained` space, the first valid one (uniform over the valid samples)."""
        for _ in range(self.max_draws if self.constrained else 1):
            out: Sample = {}
            for name, dim in self.dimensions().items():
                if self.is_active(name, out):
                    out[name] = dim.sample(rng)
            if not self.constrained or self.is_valid(out):
                return out
        raise ConfigError(f"space '{self.name}': no valid sample in {self.max_draws:,} uniform draws; its constraints leave "
                          "too few valid architectures to draw at random (loosen them, or override `sample`).")

    def suggest(self, trial: Any) -> Sample:
        """Ask an Optuna trial for each active dimension in order; returns the active sample."""
        out: Sample = {}
        for name, dim in self.dimensions().items():
            if self.is_active(name, out):
                out[name] = dim.suggest(trial, name)
        return out

    def complete(self, partial: Mapping[str, Primitive], rng: np.random.Generator | None = None) -> Sample:
        """Fill dimensions that ``partial`` lacks but that are active (random with ``rng``, else defaults)."""
        out: Sample = {}
        for name, dim in self.dimensions().items():
            if self.is_active(name, out):
                if name in partial:
                    out[name] = partial[name]
                else:
                    out[name] = dim.sample(rng) if rng is not None else dim.default
        return out

    def neighbors(self, sample: Mapping[str, Primitive], rng: np.random.Generator | None = None) -> list[Sample]:
        """Samples differing in one active dimension; newly active dimensions are filled by :meth:`complete`."""
        base = self.active(sample)
        dims = self.dimensions()
        out = []
        for name, value in base.items():
            for other in dims[name].neighbors(value):  # type: ignore[arg-type]
                changed = dict(base)
                changed[name] = other
                out.append(self.complete(changed, rng))
        return [n for n in out if self.is_valid(n)] if self.constrained else out

    def mutate(self, sample: Mapping[str, Primitive], rng: np.random.Generator) -> Sample:
        """Change one active dimension, picked uniformly, to one of its other values, picked uniformly;
        dimensions that become active are drawn at random (``complete``), those that become inactive dropped."""
        base = self.active(sample)
        dims = self.dimensions()
        movable = [name for name, value in base.items() if dims[name].neighbors(value)]  # type: ignore[arg-type]
        if not movable:
            return base
        for _ in range(self.max_draws if self.constrained else 1):  # a constrained space: the first valid mutation
            name = movable[int(rng.integers(len(movable)))]
            choices = dims[name].neighbors(base[name])  # type: ignore[arg-type]
            changed = dict(base)
            changed[name] = choices[int(rng.integers(len(choices)))]
            child = self.complete(changed, rng)
            if not self.constrained or self.is_valid(child):
                return child
        return base

    def grid(self) -> Iterator[Sample]:
        """Every active-aware combination of dimension values (floats on their grid), lazily."""
        names = list(self.dimensions().items())

        def walk(i: int, partial: Sample) -> Iterator[Sample]:
            if i == len(names):
                if not self.constrained or self.is_valid(partial):
                    yield dict(partial)
                return
            name, dim = names[i]
            if not self.is_active(name, partial):
                yield from walk(i + 1, partial)
                return
            for value in dim.grid():
                partial[name] = value
                yield from walk(i + 1, partial)
            del partial[name]

        return walk(0, {})

    # ---- weight inheritance -------------------------------------------------------------------
    def morphs(self, sample: Mapping[str, Primitive]) -> list[Morph]:
        """Children of ``sample`` reachable by function-preserving morphisms (default: none)."""
        return []

    def inherit(self, parent: Mapping[str, Primitive], parent_state: Mapping[str, Any], child: Mapping[str, Primitive],
                input_shape: Sequence[int], num_classes: int, *, generator: Any = None) -> Inherited:
        """Build ``child`` starting from the trained ``parent_state`` of ``parent``'s network.

        If ``child`` is one of :meth:`morphs` of ``parent``, the morphism is applied and the child
        computes the parent's function; otherwise every tensor whose structural name and shape
        match is copied and the rest keeps its fresh initialisation. ``generator`` (a
        ``torch.Generator``) draws the random parts of a morphism (Net2Net's replicated units).
        """
        from nas.inheritance.morphisms import inherit_matching

        target = self.active(child)
        model = self.build(target, input_shape, num_classes)
        for morph in self.morphs(parent):
            if self.active(morph.child) == target:
                fraction = self._apply_morph(morph, self.active(parent), parent_state, model, generator)
                return Inherited(model=model, fraction=fraction, morph=morph)
        return Inherited(model=model, fraction=inherit_matching(model, parent_state).fraction, morph=None)

    def _apply_morph(self, morph: Morph, parent: Sample, parent_state: Mapping[str, Any], model: Any, generator: Any) -> float:
        """Fill the freshly built child ``model`` so it computes ``parent``'s function; return the inherited fraction."""
        raise NotImplementedError(f"space {self.name!r} lists morphs but does not implement `_apply_morph`")

    # ---- low fidelity --------------------------------------------------------------------------
    def reduced(self, *, width: float = 1.0, depth: float = 1.0) -> SearchSpace:
        """This space with every built network ``width`` times as wide and with ``depth`` times the
        repeated, unsearched blocks (cells per stage); samples and keys are unchanged.

        Spaces override :meth:`_reduced`; the base checks the multipliers and returns ``self`` at 1.
        """
        for key, value in (("width_multiplier", width), ("depth_multiplier", depth)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ConfigError(f"estimator: `0 < {key} <= 1` must hold, but got {key}={value!r}.")
        if width == 1 and depth == 1:
            return self
        return self._reduced(float(width), float(depth))

    def _reduced(self, width: float, depth: float) -> SearchSpace:
        raise ConfigError(f"space {self.name!r} ({type(self).__name__}) has no reduced form: keep width_multiplier=1 and "
                          f"depth_multiplier=1, or implement `_reduced` for it, but got width={width}, depth={depth}.")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dimensions={len(self.dimensions())})"
