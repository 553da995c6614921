"""Regularized evolution and local search: the contract, their mechanics, and that they search."""

from __future__ import annotations

import numpy as np
import pytest

import nas
from nas import ConfigError, TrialRecord
from nas.testing import StrategyContract, ToySpace, simulate
from strategies.evolution import RegularizedEvolution
from strategies.local import LocalSearch
from strategies.random import RandomSearch


class TestEvolution(StrategyContract):
    steps = 20  # past the random phase of a population of 6

    def make_strategy(self, space, seed):
        return RegularizedEvolution(space, seed=seed, population_size=6, tournament_size=3)


class TestEvolutionWithCrossover(StrategyContract):
    steps = 20

    def make_strategy(self, space, seed):
        return RegularizedEvolution(space, seed=seed, population_size=6, tournament_size=3, crossover=0.5)


class TestLocalSearch(StrategyContract):
    steps = 20

    def make_strategy(self, space, seed):
        return LocalSearch(space, seed=seed)


def test_mutate_changes_exactly_one_active_dimension_and_respects_conditions():
    space = ToySpace()
    rng = np.random.default_rng(0)
    depth_changes = 0
    for _ in range(300):
        parent = space.sample(rng)
        child = space.mutate(parent, rng)
        assert space.validate(child) == child  # newly active layers are filled, inactive ones dropped
        shared = [k for k in parent if k in child]
        changed = [k for k in shared if parent[k] != child[k]]
        if child["depth"] != parent["depth"]:
            depth_changes += 1
            assert changed == ["depth"]
        else:
            assert len(changed) == 1 and set(child) == set(parent)
    assert depth_changes > 0


@pytest.mark.parametrize("morph_mutation", [0.0, 1.0])
def test_evolution_children_are_mutations_of_tournament_winners(morph_mutation):
    # with morph_mutation 1 too: a child is one of the winner's morphs (one edge changes) or, once those were all
    # tried, a plain mutation; never a random redraw
    space = nas.get_space("cell_nb201")
    strategy = RegularizedEvolution(space, seed=0, population_size=10, tournament_size=10, morph_mutation=morph_mutation)
    history = simulate(strategy, 10, score=lambda s: sum(v == "nor_conv_3x3" for v in s.values()))
    best = max(history, key=lambda r: r.value)
    for _ in range(5):  # tournament over the whole population: the winner is always the best
        child = strategy.ask(history)
        assert sum(child[k] != best.arch.sample[k] for k in child) == 1
        history.append(TrialRecord(number=len(history), arch=space.architecture(child), state="running"))


def test_evolution_population_ages_out_the_oldest_and_ignores_failures():
    space = ToySpace()
    strategy = RegularizedEvolution(space, seed=0, population_size=4, tournament_size=2)
    history = simulate(strategy, 10)
    history.append(TrialRecord(number=10, arch=history[0].arch, state="failed", reason="boom"))
    assert [r.number for r in strategy.population(history)] == [6, 7, 8, 9]


def test_evolution_skips_keys_already_tried():
    space = ToySpace(max_depth=2, with_float=False)  # 12 architectures, 9 distinct... a tiny space
    history = simulate(RegularizedEvolution(space, seed=1, population_size=3, tournament_size=2), 8)
    keys = [r.arch.key for r in history]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("knobs, key", [
    ({"population_size": 1}, "population_size"),
    ({"tournament_size": 30}, "tournament_size"),
    ({"crossover": 1.5}, "crossover"),
])
def test_evolution_rejects_bad_knobs_naming_the_key(knobs, key):
    with pytest.raises(ConfigError, match=key):
        RegularizedEvolution(ToySpace(), seed=0, **knobs)


def test_local_search_walks_uphill_and_restarts_at_a_local_optimum():
    space = nas.get_space("cell_nb201")
    target = {name: "nor_conv_3x3" for name in space.dimensions()}

    def score(s):  # one peak: the all-conv3x3 cell; every other cell has a better neighbour
        return float(sum(s[k] == target[k] for k in s))

    history = simulate(LocalSearch(space, seed=0), 150, score)
    values = [r.value for r in history]
    assert max(values) == 6.0
    first_best = values.index(6.0)
    assert first_best < 6 * 24 + 1  # at most one full neighbourhood per step up from the start


def test_local_search_resume_and_exhaustion_on_a_tiny_space():
    space = ToySpace(max_depth=1, with_float=False)
    strategy = LocalSearch(space, seed=0, max_restarts=50)
    history = simulate(strategy, 10)
    assert len(history) == 3 and strategy.is_exhausted(history)
    with pytest.raises(RuntimeError, match="is_exhausted"):
        strategy.ask(history)


def test_evolution_and_local_search_beat_random_on_the_toy_space():
    def mean_best(make, steps=30, seeds=range(20)):
        return float(np.mean([max(r.value for r in simulate(make(s), steps)) for s in seeds]))

    space = ToySpace()
    rand = mean_best(lambda s: RandomSearch(space, seed=s, skip_duplicates=True))
    evo = mean_best(lambda s: RegularizedEvolution(space, seed=s, population_size=8, tournament_size=3))
    local = mean_best(lambda s: LocalSearch(space, seed=s))
    assert evo > rand + 0.02 and local > rand + 0.02, (rand, evo, local)
