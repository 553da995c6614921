"""The shipped contract suites can fail: each check added to ``nas.testing`` rejects a deliberately broken
plugin that passes every check the suites had before it, and a correct plugin passes them all."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
import numpy as np
import pytest

from nas import InvalidSampleError, SearchSpace, Strategy, TrialRecord
from nas.core.dimensions import Primitive
from nas.core.space import Sample
from nas.testing import SpaceContract, StrategyContract, ToySpace

#: The checks the strategy contract had before "several architectures" and "different seeds differ";
#: the broken strategies below pass all of them, which is why those two were added.
EARLIER_STRATEGY_CHECKS = ("test_samples_are_valid", "test_same_seed_same_sequence", "test_resume_gives_same_next_candidate",
                           "test_exhaustion_is_clean_on_a_finite_space", "test_runs_as_optuna_sampler")
#: The space contract's checks that the broken spaces below pass (the key check before it padded inactive
#: values is replayed in `test_the_leaky_space_passes_what_the_key_check_asserted_before`).
EARLIER_SPACE_CHECKS = ("test_random_samples_validate_and_round_trip_json", "test_build_forward_shape",
                        "test_morphs_preserve_the_function")
STRATEGY_CHECKS = sorted(name for name in vars(StrategyContract) if name.startswith("test_"))
SPACE_CHECKS = sorted(name for name in vars(SpaceContract) if name.startswith("test_"))


# ---- strategies ---------------------------------------------------------------------------------
class ConstantStrategy(Strategy):
    """Broken: every ask returns the same architecture (the space's defaults), whatever the seed and history."""

    name = "constant"

    def ask(self, history: Sequence[TrialRecord]) -> Sample:
        return self.space.complete({})


class AlternatingStrategy(Strategy):
    """Broken: alternates between two architectures (the defaults and their first neighbor): not constant, but no search."""

    name = "alternating"

    def ask(self, history: Sequence[TrialRecord]) -> Sample:
        base = self.space.complete({})
        return base if len(history) % 2 == 0 else self.space.neighbors(base)[0]


class SeedIgnoringStrategy(Strategy):
    """Broken: random samples from a generator seeded by the history length alone, so every seed gives one sequence."""

    name = "seed_ignoring"

    def ask(self, history: Sequence[TrialRecord]) -> Sample:
        return self.space.sample(np.random.default_rng(len(history)))


class SeededRandom(Strategy):
    """Correct: random samples from the contract's generator, seeded by the seed and the history length."""

    name = "seeded_random"

    def ask(self, history: Sequence[TrialRecord]) -> Sample:
        return self.space.sample(self.rng(history))


class ConstantContract(StrategyContract):
    def make_strategy(self, space: SearchSpace, seed: int) -> Strategy:
        return ConstantStrategy(space, seed=seed)


class AlternatingContract(StrategyContract):
    def make_strategy(self, space: SearchSpace, seed: int) -> Strategy:
        return AlternatingStrategy(space, seed=seed)


class SeedIgnoringContract(StrategyContract):
    def make_strategy(self, space: SearchSpace, seed: int) -> Strategy:
        return SeedIgnoringStrategy(space, seed=seed)


class SeededRandomContract(StrategyContract):
    def make_strategy(self, space: SearchSpace, seed: int) -> Strategy:
        return SeededRandom(space, seed=seed)


@pytest.mark.parametrize("check", EARLIER_STRATEGY_CHECKS)
@pytest.mark.parametrize("contract", [ConstantContract, AlternatingContract, SeedIgnoringContract])
def test_the_broken_strategies_pass_every_earlier_check(contract: type[StrategyContract], check: str) -> None:
    getattr(contract(), check)()


def test_a_constant_strategy_is_rejected() -> None:
    with pytest.raises(AssertionError, match="12 asks on space 'toy' must propose at least 3 distinct architectures, but got 1: "):
        ConstantContract().test_proposes_several_architectures()
    with pytest.raises(AssertionError, match=r"The sequences of seeds \(0, 1, 2\) must not all be identical"):
        ConstantContract().test_different_seeds_differ()  # constant, so blind to its seed too


def test_a_strategy_that_only_alternates_between_two_architectures_is_rejected() -> None:
    with pytest.raises(AssertionError, match="must propose at least 3 distinct architectures, but got 2: "):
        AlternatingContract().test_proposes_several_architectures()


def test_a_strategy_that_ignores_its_seed_is_rejected() -> None:
    with pytest.raises(AssertionError, match=r"The sequences of seeds \(0, 1, 2\) must not all be identical \(the strategy must "
                                             r"use its seed\), but each seed proposed the same 12 candidates, starting with "):
        SeedIgnoringContract().test_different_seeds_differ()
    SeedIgnoringContract().test_proposes_several_architectures()  # it does vary its candidates: only the seed check catches it


def test_seed_independent_skips_only_the_seed_check() -> None:
    class Opted(ConstantContract):
        seed_independent = True

    with pytest.raises(pytest.skip.Exception, match="Opted.seed_independent is set"):
        Opted().test_different_seeds_differ()
    with pytest.raises(AssertionError, match="must propose at least 3 distinct architectures, but got 1"):
        Opted().test_proposes_several_architectures()  # opting out of the seed check excuses nothing else


@pytest.mark.parametrize("check", STRATEGY_CHECKS)
def test_a_correct_strategy_passes_every_check(check: str) -> None:
    getattr(SeededRandomContract(), check)()


# ---- spaces -------------------------------------------------------------------------------------
class LeakyKeySpace(ToySpace):
    """Broken: the canonical form, and so the key, keeps whatever inactive values the sample holds."""

    def canonical(self, sample: Mapping[str, Primitive]) -> str:
        return json.dumps(dict(sample), sort_keys=True, separators=(",", ":"))


class KeepsInactiveSpace(ToySpace):
    """Broken: ``validate`` returns the inactive values it was given along with the active part (the key is right)."""

    def validate(self, sample: Mapping[str, Primitive]) -> Sample:
        clean = super().validate(sample)
        return {**clean, **{k: v for k, v in sample.items() if k not in clean}}


class TwoMovesOnDepthSpace(ToySpace):
    """Broken: a neighbor that changes the depth also changes ``l1.op``, two moves at once; the neighbors check
    used to accept any neighbor whose set of active dimensions changed."""

    def neighbors(self, sample: Mapping[str, Primitive], rng: np.random.Generator | None = None) -> list[Sample]:
        out = []
        for n in super().neighbors(sample, rng):
            if n["depth"] != sample["depth"]:
                n = {**n, "l1.op": next(c for c in ("a", "b", "c") if c != sample["l1.op"])}
            out.append(n)
        return out


class MutatesIntoForbiddenSpace(ToySpace):
    """Broken: its rule forbids op 'c' in layer 1 (``check``, ``constrained``), but its own ``mutate`` ignores the rule."""

    constrained = True

    def check(self, sample: Sample) -> None:
        if sample.get("l1.op") == "c":
            raise InvalidSampleError("l1.op must not be 'c'")

    def mutate(self, sample: Mapping[str, Primitive], rng: np.random.Generator) -> Sample:
        return {**self.active(sample), "l1.op": "c"}


class ToyContract(SpaceContract):
    def make_space(self) -> SearchSpace:
        return ToySpace()


class LeakyKeyContract(SpaceContract):
    def make_space(self) -> SearchSpace:
        return LeakyKeySpace()


class KeepsInactiveContract(SpaceContract):
    def make_space(self) -> SearchSpace:
        return KeepsInactiveSpace()


class TwoMovesOnDepthContract(SpaceContract):
    def make_space(self) -> SearchSpace:
        return TwoMovesOnDepthSpace()


class MutatesIntoForbiddenContract(SpaceContract):
    def make_space(self) -> SearchSpace:
        return MutatesIntoForbiddenSpace()


@pytest.mark.parametrize("check", EARLIER_SPACE_CHECKS)
@pytest.mark.parametrize("contract", [LeakyKeyContract, KeepsInactiveContract, TwoMovesOnDepthContract, MutatesIntoForbiddenContract])
def test_the_broken_spaces_pass_every_earlier_check(contract: type[SpaceContract], check: str) -> None:
    getattr(contract(), check)()


def test_the_leaky_space_passes_what_the_key_check_asserted_before() -> None:
    space = LeakyKeySpace()
    samples = LeakyKeyContract()._samples()
    assert any(len(s) < len(space.dimensions()) for s in samples)  # some dimensions are inactive...
    for sample in samples:
        assert space.key(sample) == space.key(space.active(sample))  # ...but `sample()` holds only the active ones


def test_a_key_that_depends_on_inactive_values_is_rejected() -> None:
    with pytest.raises(AssertionError, match="`key` must ignore inactive dimensions, but .* with inactive values .* added has key"):
        LeakyKeyContract().test_key_ignores_inactive_values_and_is_stable()


def test_a_validate_that_keeps_inactive_values_is_rejected() -> None:
    with pytest.raises(AssertionError, match="`validate` must drop inactive dimensions, but .* with inactive values .* added gives"):
        KeepsInactiveContract().test_key_ignores_inactive_values_and_is_stable()
    KeepsInactiveContract().test_neighbors_differ_in_one_active_dimension_and_validate()  # only the key check catches it


def test_a_neighbor_with_two_moves_is_rejected() -> None:
    space = TwoMovesOnDepthSpace()
    sample = space.validate(TwoMovesOnDepthContract()._samples()[0])
    for n in space.neighbors(sample):  # what the neighbors check asserted before: the changed depth excused the second move
        changed = [k for k in sample if k in n and n[k] != sample[k]]
        assert len(changed) == 1 or set(n) != set(sample)
    with pytest.raises(AssertionError, match=r"a neighbor must change exactly one active dimension, but .* changes \['depth', 'l1.op'\]"):
        TwoMovesOnDepthContract().test_neighbors_differ_in_one_active_dimension_and_validate()


def test_a_mutation_that_breaks_the_spaces_rule_is_rejected() -> None:
    contract = MutatesIntoForbiddenContract()
    contract.test_neighbors_differ_in_one_active_dimension_and_validate()  # its neighbours keep the rule: only this check bites
    assert all(s["l1.op"] != "c" for s in contract._samples())  # and `sample` keeps it, through the base's redraws
    with pytest.raises(AssertionError, match="`mutate` of .* gave an invalid sample"):
        contract.test_mutations_validate()


@pytest.mark.parametrize("check", SPACE_CHECKS)
def test_a_correct_space_passes_every_check(check: str) -> None:
    getattr(ToyContract(), check)()


def test_every_space_check_in_the_suite_is_covered() -> None:
    # the earlier checks plus the three made to bite here: a new check gets its broken plugin in this file
    assert set(SPACE_CHECKS) == {*EARLIER_SPACE_CHECKS, "test_key_ignores_inactive_values_and_is_stable",
                                 "test_neighbors_differ_in_one_active_dimension_and_validate", "test_mutations_validate"}
    assert set(STRATEGY_CHECKS) == {*EARLIER_STRATEGY_CHECKS, "test_proposes_several_architectures", "test_different_seeds_differ"}
