"""Contract test suites shipped with the code. A new strategy or space adds a five-line test class:

    class TestMyStrategy(StrategyContract):
        def make_strategy(self, space, seed):
            return MyStrategy(space, seed=seed)

and inherits the checks: valid samples, several distinct architectures (not one constant answer), same
seed same sequence, different seeds differ, clean exhaustion, resume gives the same next candidate, and
the Optuna sampler round trip. A strategy that is deterministic by design (an unshuffled grid, a replayed
list) sets ``seed_independent = True`` in its test class, with a comment saying why, and skips only
"different seeds differ". A space's test class inherits :class:`SpaceContract` the same way.

Each check is proven by a deliberately broken plugin that it rejects (``tests/test_contracts_bite.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from torch import nn

from nas.core.dimensions import Categorical, Float, Integer
from nas.core.records import TrialRecord, as_proposal
from nas.store.adapters import StrategySampler
from nas.core.space import Sample, SearchSpace
from nas.core.strategy import Strategy


class ToySpace(SearchSpace):
    """A conditional toy space with a known optimum: depth 3, every op 'c', lr 0.1 (score 1.0)."""

    name = "toy"

    def __init__(self, *, max_depth: int = 3, with_float: bool = True) -> None:
        self.max_depth, self.with_float = max_depth, with_float

    def dimensions(self) -> dict[str, Any]:
        dims: dict[str, Any] = {"depth": Integer(1, self.max_depth)}
        for i in range(1, self.max_depth + 1):
            dims[f"l{i}.op"] = Categorical(("a", "b", "c"))
        if self.with_float:
            dims["lr"] = Float(0.0, 0.2, resolution=3)
        return dims

    def is_active(self, name: str, partial: Mapping[str, Any]) -> bool:
        if name.startswith("l") and name != "lr":
            return int(name[1:].split(".")[0]) <= int(partial["depth"])  # type: ignore[arg-type]
        return True

    def build(self, sample: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), num_classes))

    @staticmethod
    def score(sample: Mapping[str, Any]) -> float:
        depth = int(sample["depth"])
        ops = sum(sample[f"l{i}.op"] == "c" for i in range(1, depth + 1))
        return (ops + (depth == 3)) / 4 - abs(float(sample.get("lr", 0.1)) - 0.1)


def simulate(strategy: Strategy, steps: int, score: Callable[[Mapping[str, Any]], float] = ToySpace.score,
             history: list[TrialRecord] | None = None) -> list[TrialRecord]:
    """Ask/tell ``steps`` more times with scores from ``score``; stops early if the strategy is exhausted."""
    from nas.estimators.table import TableEstimator
    from nas.engine.loop import run_in_memory

    return run_in_memory(strategy, TableEstimator(lambda arch: float(score(arch.sample))), steps, history)


class StrategyContract:
    """Inherit and implement :meth:`make_strategy`. Override :meth:`make_space` for other spaces."""

    steps = 12
    #: ``True`` for a strategy that is deterministic by design (an unshuffled grid, a replayed list of
    #: samples): its sequence does not depend on the seed, so :meth:`test_different_seeds_differ` is
    #: skipped. Every other check still runs. Say why in a comment where a test class sets it.
    seed_independent: bool = False

    def make_strategy(self, space: SearchSpace, seed: int) -> Strategy:
        raise NotImplementedError

    def make_space(self) -> SearchSpace:
        return ToySpace()

    @staticmethod
    def scorer(space: SearchSpace) -> Callable[[Mapping[str, Any]], float]:
        """The toy space's known score; on any other space a fixed pseudo-random score per canonical key."""
        if isinstance(space, ToySpace):
            return ToySpace.score
        return lambda sample: int(space.key(sample), 16) % 10_007 / 10_007

    def test_samples_are_valid(self) -> None:
        space = self.make_space()
        for record in simulate(self.make_strategy(space, 0), self.steps, self.scorer(space)):
            assert space.validate(record.arch.sample) == dict(record.arch.sample)

    def test_proposes_several_architectures(self) -> None:
        """Over ``steps`` asks, the candidates hold at least ``max(2, asks // 4)`` distinct architectures
        (canonical keys), so a strategy whose ``ask`` keeps returning one architecture, or cycles through
        two, fails. On the toy space every strategy of the project proposes a new architecture on nearly every ask."""
        space = self.make_space()
        history = simulate(self.make_strategy(space, 0), self.steps, self.scorer(space))
        distinct = {r.arch.key: r.arch.sample for r in history}
        needed = max(2, len(history) // 4)
        assert len(distinct) >= needed, (
            f"{len(history)} asks on space '{space.name}' must propose at least {needed} distinct architectures, but got "
            f"{len(distinct)}: {[space.format(s) for s in distinct.values()]!r}.")

    def test_different_seeds_differ(self) -> None:
        """The ``steps``-ask sequences of seeds 0, 1 and 2 are not all identical: a strategy that ignores
        its seed fails. Skipped when :attr:`seed_independent` is set."""
        if self.seed_independent:
            import pytest  # only here: nas.testing is importable without pytest

            pytest.skip(f"{type(self).__name__}.seed_independent is set: the strategy is deterministic by design")
        space = self.make_space()
        seeds = (0, 1, 2)
        sequences = [[r.arch.sample for r in simulate(self.make_strategy(space, seed), self.steps, self.scorer(space))]
                     for seed in seeds]
        first = space.format(sequences[0][0]) if sequences[0] else "nothing"
        assert any(s != sequences[0] for s in sequences[1:]), (
            f"The sequences of seeds {seeds} must not all be identical (the strategy must use its seed), but each seed "
            f"proposed the same {len(sequences[0])} candidates, starting with {first!r}.")

    def test_same_seed_same_sequence(self) -> None:
        space = self.make_space()
        first = [r.arch.sample for r in simulate(self.make_strategy(space, 3), self.steps, self.scorer(space))]
        second = [r.arch.sample for r in simulate(self.make_strategy(space, 3), self.steps, self.scorer(space))]
        assert first == second

    def test_resume_gives_same_next_candidate(self) -> None:
        space = self.make_space()
        full = simulate(self.make_strategy(space, 5), self.steps, self.scorer(space))
        resumed = self.make_strategy(space, 5)  # a fresh process: nothing but the history
        assert as_proposal(resumed.ask(full[:-1])).sample == dict(full[-1].arch.sample)

    def test_exhaustion_is_clean_on_a_finite_space(self) -> None:
        space = ToySpace(max_depth=1, with_float=False)  # 3 architectures
        strategy = self.make_strategy(space, 0)
        history = simulate(strategy, 30)
        if strategy.is_exhausted(history):
            assert {r.arch.key for r in history} == {space.key(s) for s in space.grid()}
        assert all(space.validate(r.arch.sample) for r in history)

    def test_runs_as_optuna_sampler(self) -> None:
        space = self.make_space()
        strategy = self.make_strategy(space, 0)
        study = optuna.create_study(direction="maximize", sampler=StrategySampler(strategy))
        for _ in range(4):
            trial = study.ask()
            sample = space.suggest(trial)
            space.validate(sample)
            study.tell(trial, ToySpace.score(sample) if space.name == "toy" else 0.0)
        assert [t.params for t in study.trials] == [space.active(t.params) for t in study.trials]
        assert len(study.trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def settle_batch_norm(model: nn.Module, input_shape: Sequence[int], *, seed: int = 0) -> nn.Module:
    """Give every BatchNorm running statistics and an affine far from their initial values (forward
    passes in train mode on random data, then random scale and shift): the state of a trained
    network, on which a morphism that forgets the statistics would show."""
    generator = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, *input_shape, generator=generator) * 2 + 0.5)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=generator) * 0.3)
    return model.eval()


class SpaceContract:
    """Inherit and implement :meth:`make_space` (tiny sizes); ``input_shapes`` lists shapes to build for."""

    input_shapes: Sequence[tuple[int, ...]] = ((1, 8, 8),)
    samples = 4
    morphs_per_sample = 6

    def make_space(self) -> SearchSpace:
        raise NotImplementedError

    def _samples(self) -> list[Sample]:
        space = self.make_space()
        rng = np.random.default_rng(0)
        return [space.sample(rng) for _ in range(self.samples)]

    def test_random_samples_validate_and_round_trip_json(self) -> None:
        import json

        space = self.make_space()
        for sample in self._samples():
            arch = space.architecture(sample)
            assert json.loads(json.dumps(dict(arch.sample))) == dict(arch.sample)
            assert space.parse(space.format(arch.sample)) == dict(arch.sample)

    def test_key_ignores_inactive_values_and_is_stable(self) -> None:
        """Each random sample, and the all-defaults one (``complete({})``: usually the most inactive
        dimensions), with a value drawn from every inactive dimension added: the key and the canonical
        form are unchanged, and ``validate`` and ``active`` drop the added values. Keys have 16 hex
        digits and do not depend on the order of the sample's items."""
        space = self.make_space()
        dims = space.dimensions()
        rng = np.random.default_rng(1)
        defaults = space.complete({})
        for sample in [*self._samples(), *([defaults] if space.is_valid(defaults) else [])]:  # a constrained space's may not be
            active = space.active(sample)
            assert space.key(sample) == space.key(dict(active))
            assert len(space.key(sample)) == 16 and set(space.key(sample)) <= set("0123456789abcdef")
            padded = {name: active[name] if name in active else dim.sample(rng) for name, dim in dims.items()}
            added = {name: value for name, value in padded.items() if name not in active}
            what = f"{space.format(sample)} with inactive values {added!r} added"
            assert space.key(padded) == space.key(sample), (
                f"`key` must ignore inactive dimensions, but {what} has key {space.key(padded)} instead of {space.key(sample)}.")
            assert space.canonical(padded) == space.canonical(sample), (
                f"`canonical` must ignore inactive dimensions, but {what} gives {space.canonical(padded)!r} "
                f"instead of {space.canonical(sample)!r}.")
            assert space.active(padded) == active, f"`active` must drop inactive dimensions, but {what} gives {space.active(padded)!r}."
            assert space.validate(padded) == space.validate(sample), (
                f"`validate` must drop inactive dimensions, but {what} gives {space.validate(padded)!r}.")
            shuffled = dict(reversed(list(padded.items())))
            assert space.key(shuffled) == space.key(sample), f"`key` must not depend on the order of items, but {what} reversed differs."

    def test_build_forward_shape(self) -> None:
        space = self.make_space()
        if space.lookup_only:
            pytest.skip(f"space '{space.name}' is lookup-only: it has no network to build")
        for shape in self.input_shapes:
            for sample in self._samples()[:2]:
                model = space.build(sample, shape, 10).eval()
                with torch.no_grad():
                    out = model(torch.randn(2, *shape))
                assert tuple(out.shape) == (2, 10)

    def test_neighbors_differ_in_one_active_dimension_and_validate(self) -> None:
        space = self.make_space()
        sample = space.validate(self._samples()[0])
        neighbors = space.neighbors(sample)
        assert neighbors
        for n in neighbors[:20]:
            n = space.validate(n)
            changed = [k for k in sample if k in n and n[k] != sample[k]]
            # exactly one dimension active in both changes; others may only turn active (filled) or inactive (dropped)
            assert len(changed) == 1, (f"a neighbor must change exactly one active dimension, but {space.format(n)} of "
                                       f"{space.format(sample)} changes {changed!r}.")

    def test_mutations_validate(self) -> None:
        """``mutate`` gives valid samples (a constrained space's constraints included), each differing from its parent."""
        space = self.make_space()
        rng = np.random.default_rng(2)
        for sample in self._samples():
            child = space.mutate(sample, rng)
            assert space.is_valid(child), f"`mutate` of {space.format(sample)} gave an invalid sample {child!r}."
            assert space.active(child) != space.active(sample), f"`mutate` of {space.format(sample)} changed nothing."

    def test_morphs_preserve_the_function(self) -> None:
        """Listed morphs (one of each kind first, up to ``morphs_per_sample`` per sample), applied by
        ``inherit`` to a trained-looking parent, compute the parent's function (relative output
        difference <= 1e-5 in eval mode on random inputs)."""
        from nas.inheritance.morphisms import preservation_error

        space = self.make_space()
        if space.lookup_only:
            assert not space.morphs(self._samples()[0]), f"lookup-only space '{space.name}' lists morphs of networks it cannot build"
            return
        for shape in self.input_shapes:
            for n, sample in enumerate(self._samples()):
                parent = settle_batch_norm(space.build(sample, shape, 10), shape, seed=n)
                inputs = torch.randn(16, *shape, generator=torch.Generator().manual_seed(n))
                morphs = space.morphs(sample)
                first_of_kind = list({m.kind: m for m in reversed(morphs)}.values())  # every kind, then the rest in order
                for morph in (first_of_kind + [m for m in morphs if m not in first_of_kind])[:self.morphs_per_sample]:
                    child = space.inherit(sample, parent.state_dict(), morph.child, shape, 10, generator=torch.Generator().manual_seed(n))
                    assert child.morph == morph and 0.0 < child.fraction <= 1.0
                    error = preservation_error(parent, child.model, inputs)
                    assert error <= 1e-5, f"{morph} of {space.format(sample)} on {shape}: relative error {error:.2e}"


class CostProviderContract:
    """Checks for a :class:`nas.costs.CostProvider`: subclass it and implement :meth:`make_provider`.

    Every declared metric comes back, finite and ``>= 0``, on a 2-D and a 1-D model; measuring leaves the
    model as it was (same weights, same mode, same outputs). ``tests/test_costs.py`` shows each check
    rejecting a broken provider."""

    def make_provider(self) -> Any:
        raise NotImplementedError

    def _models(self) -> list[tuple[nn.Module, tuple[int, ...]]]:
        torch.manual_seed(0)
        conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(4, 10))
        signal = nn.Sequential(nn.Conv1d(1, 3, 5, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 40, 10))
        return [(conv, (1, 8, 8)), (signal, (1, 40))]

    def test_every_metric_comes_back_finite_and_non_negative(self) -> None:
        import math

        provider = self.make_provider()
        assert provider.metrics, f"cost provider '{provider.name}' declares no metrics"
        for model, shape in self._models():
            got = provider.measure(model.eval() if provider.needs_model else None, shape, sample={"model": type(model).__name__})
            missing = [m for m in provider.metrics if m not in got]
            assert not missing, f"cost provider '{provider.name}' declares {list(provider.metrics)} but returned no {missing}."
            for metric, value in got.items():
                assert isinstance(value, float) and math.isfinite(value) and value >= 0, (
                    f"cost provider '{provider.name}': `{metric}` must be a finite float >= 0, but got {value!r}.")

    def test_measuring_leaves_the_model_as_it_was(self) -> None:
        provider = self.make_provider()
        if not provider.needs_model:
            return
        for model, shape in self._models():
            model.eval()
            before = {k: v.clone() for k, v in model.state_dict().items()}
            x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
            with torch.no_grad():
                expected = model(x)
            provider.measure(model, shape, sample={})
            assert not model.training, f"cost provider '{provider.name}' left the model in training mode."
            changed = [k for k, v in model.state_dict().items() if not torch.equal(v.cpu(), before[k])]
            assert not changed, f"cost provider '{provider.name}' changed the model's tensors {changed}."
            with torch.no_grad():
                assert torch.allclose(model.cpu()(x), expected), f"cost provider '{provider.name}' changed the model's outputs."
