"""Grid, random, sequence and Optuna samplers through the shared strategy contract."""

from __future__ import annotations

import functools

import numpy as np
import optuna
import pytest

from nas import SamplerStrategy
from nas.testing import StrategyContract, ToySpace, simulate
from strategies import GridSearch, RandomSearch, SequenceStrategy


class TestRandom(StrategyContract):
    def make_strategy(self, space, seed):
        return RandomSearch(space, seed=seed)


class TestRandomSkipDuplicates(StrategyContract):
    def make_strategy(self, space, seed):
        return RandomSearch(space, seed=seed, skip_duplicates=True)


class TestGrid(StrategyContract):
    seed_independent = True  # unshuffled, it walks space.grid() in its fixed order: the seed is not used

    def make_strategy(self, space, seed):
        return GridSearch(space, seed=seed)


class TestShuffledGrid(StrategyContract):
    def make_strategy(self, space, seed):
        return GridSearch(space, seed=seed, shuffle=True)


class TestSequence(StrategyContract):
    seed_independent = True  # it replays the given samples in order: the seed is not used

    def make_strategy(self, space, seed):
        # a dozen random samples (fixed, whatever the seed), then the whole grid, so that it ends exhausted on a finite space
        rng = np.random.default_rng(7)
        return SequenceStrategy(space, samples=[space.sample(rng) for _ in range(self.steps)] + list(space.grid()), seed=seed)


class TestTPEAsStrategy(StrategyContract):
    steps = 6

    def make_strategy(self, space, seed):
        return SamplerStrategy(space, functools.partial(optuna.samplers.TPESampler, n_startup_trials=3), seed=seed)


def test_grid_enumerates_every_key_once_then_is_exhausted():
    space = ToySpace(max_depth=2, with_float=True)  # depth 1: 3 ops, depth 2: 9 ops; lr on 3 points
    strategy = GridSearch(space, seed=0)
    history = simulate(strategy, 1000)
    keys = [r.arch.key for r in history]
    assert len(keys) == len(set(keys)) == (3 + 9) * 3
    assert strategy.is_exhausted(history)
    assert sorted({r.arch.sample["lr"] for r in history}) == [0.0, 0.1, 0.2]  # floats on their resolution


def test_grid_ask_on_exhausted_grid_raises_clear_error():
    space = ToySpace(max_depth=1, with_float=False)
    strategy = GridSearch(space, seed=0)
    history = simulate(strategy, 10)
    with pytest.raises(RuntimeError, match="exhausted"):
        strategy.ask(history)


def test_random_skip_duplicates_never_repeats_a_key_while_new_ones_exist():
    space = ToySpace(max_depth=2, with_float=False)  # 12 architectures
    history = simulate(RandomSearch(space, seed=1, skip_duplicates=True), 12)
    assert len({r.arch.key for r in history}) == 12
    plain = simulate(RandomSearch(space, seed=1), 12)
    assert len({r.arch.key for r in plain}) < 12  # without skipping, collisions happen


def test_different_seeds_give_different_random_sequences():
    space = ToySpace()
    a = [r.arch.key for r in simulate(RandomSearch(space, seed=0), 8)]
    b = [r.arch.key for r in simulate(RandomSearch(space, seed=1), 8)]
    assert a != b


def test_random_sampling_is_uniform_over_active_dimensions():
    space = ToySpace(max_depth=3, with_float=False)
    history = simulate(RandomSearch(space, seed=0), 3000)
    depths = [r.arch.sample["depth"] for r in history]
    for d in (1, 2, 3):
        assert abs(depths.count(d) / len(depths) - 1 / 3) < 0.04
    assert all(set(r.arch.sample) == set(space.active(r.arch.sample)) for r in history)


def test_sequence_strategy_replays_then_stops():
    space = ToySpace(max_depth=1, with_float=False)
    samples = [{"depth": 1, "l1.op": "b"}, "depth=1 l1.op=\"a\""]
    strategy = SequenceStrategy(space, samples=samples)
    history = simulate(strategy, 10)
    assert [r.arch.sample["l1.op"] for r in history] == ["b", "a"]
    assert strategy.is_exhausted(history)


def test_shuffled_grid_refuses_a_grid_too_large_to_hold_before_any_trial():
    import nas
    from nas import ConfigError

    with pytest.raises(ConfigError, match="at most 200,000 points, but space 'macro_chain' has more"):
        GridSearch(nas.get_space("macro_chain"), seed=0, shuffle=True)


def test_the_configured_grid_does_not_start_with_cells_that_cannot_learn():
    """The grid's own order on cell_nb201 begins with every edge `none` (no path from input to output):
    5 of its first 8 cells; the configured grid (shuffle=auto) visits a seeded random order."""
    import nas
    from nas._api import make_strategy
    from nas._config import compose
    from nas.engine.loop import run_in_memory
    from strategies import GridSearch

    space = nas.get_space("cell_nb201")
    table = nas.TableEstimator(lambda arch: 0.0)
    in_order = run_in_memory(GridSearch(space, seed=0), table, 8)
    configured = make_strategy(compose(["strategy=grid"]).strategy, space, 0, budget=8)
    shuffled = run_in_memory(configured, table, 8)
    dead = [sum(not space.paths(r.arch.sample) for r in h) for h in (in_order, shuffled)]
    assert dead[0] == 5 and dead[1] <= 1, dead
    assert configured.budget_notes(8) == ["shuffle=auto -> true (15,625 points, visited in a seeded random order)"]
    big = make_strategy(compose(["strategy=grid"]).strategy, nas.get_space("macro_chain"), 0)
    assert big.shuffle is False and "more than 200,000 points" in big.budget_notes(None)[0]
