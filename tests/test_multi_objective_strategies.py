"""Strategies with several objectives: our evolution (crowded tournaments in an aging population), our BO
(ParEGO), Optuna's NSGA-II and MOTPE, on a cell space whose exact front is known; each must beat random."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import nas
from nas._api import make_strategy
from nas._config import load_group_file
from nas.core.fronts import crowded_standing, front_hypervolume
from nas.core.objectives import parse_objectives
from nas.core.pareto import hypervolume, minimised
from nas.engine.loop import run_in_memory
from nas.estimators.table import TableEstimator

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
QUALITY = {"none": 0.0, "skip_connect": 1.0, "nor_conv_1x1": 2.0, "nor_conv_3x3": 3.2, "avg_pool_3x3": 0.6}
SIZE = {"none": 0.0, "skip_connect": 0.0, "nor_conv_1x1": 1.0, "nor_conv_3x3": 9.0, "avg_pool_3x3": 0.0}
OBJECTIVES = parse_objectives({"accuracy": "max", "size": "min"})
REFERENCE = (0.0, 60.0)


def entry(ops):
    """A cell's two conflicting objectives: each edge's quality (3x3 convolutions best) against its size."""
    accuracy = sum(QUALITY[o] for o in ops) + 0.5 * (ops[0] == ops[5])  # an interaction, so the front is not additive
    return {"accuracy": accuracy, "size": sum(SIZE[o] for o in ops)}


def table_of(space):
    return {space.format(dict(zip(space.dimensions(), ops))): entry(ops) for ops in itertools.product(OPS, repeat=6)}


@pytest.fixture(scope="module")
def problem():
    space = nas.get_space("cell_nb201", network=None)
    table = table_of(space)
    points = np.array([[e["accuracy"], e["size"]] for e in table.values()])
    true = hypervolume(minimised(points, ["max", "min"]), minimised([list(REFERENCE)], ["max", "min"])[0])
    return space, table, true


def ratio(name, problem, seed, evaluations):
    space, table, true = problem
    strategy = make_strategy(load_group_file("strategy", name)[1], space, seed, budget=evaluations)
    strategy.objectives = OBJECTIVES
    history = run_in_memory(strategy, TableEstimator(table, space=space, metric="accuracy"), evaluations)
    return front_hypervolume(history, OBJECTIVES, REFERENCE) / true


def test_the_crowded_comparison_puts_the_front_first_and_its_extremes_before_its_middle():
    from nas.core.records import TrialRecord, TrialState
    from nas.testing import ToySpace

    space = ToySpace()

    def record(number, accuracy, size):
        return TrialRecord(number=number, arch=space.architecture(space.sample(np.random.default_rng(number))),
                           state=TrialState.COMPLETE, value=accuracy, metrics={"accuracy": accuracy, "size": size})

    records = [record(0, 1.0, 1.0), record(1, 2.0, 2.0), record(2, 3.0, 3.0), record(3, 1.5, 2.5)]  # #3 dominated by #1
    standing = crowded_standing(records, OBJECTIVES)
    assert [standing[n][0] for n in range(4)] == [0, 0, 0, 1]
    assert standing[0][1] == standing[2][1] == -np.inf and standing[1][1] > -np.inf  # extremes: infinite crowding distance
    assert sorted(range(4), key=lambda n: standing[n])[-1] == 3


@pytest.mark.slow
@pytest.mark.parametrize("name", ["evolution", "bo", "nsga2", "motpe"])
def test_each_multi_objective_strategy_covers_more_of_the_front_than_random(problem, name):
    seeds, evaluations = range(5), 150
    mine = np.mean([ratio(name, problem, seed, evaluations) for seed in seeds])
    random = np.mean([ratio("random", problem, seed, evaluations) for seed in seeds])
    assert mine > random, (name, mine, random)


@pytest.mark.parametrize("name", ["evolution", "bo"])
def test_our_multi_objective_strategies_repeat_their_sequence_for_a_seed(problem, name):
    space, table, _ = problem

    def keys(seed):
        strategy = make_strategy(load_group_file("strategy", name)[1], space, seed, budget=30)
        strategy.objectives = OBJECTIVES
        return [r.arch.key for r in run_in_memory(strategy, TableEstimator(table, space=space, metric="accuracy"), 30)]

    assert keys(0) == keys(0) != keys(1)


def test_evolutions_population_keeps_the_front_after_its_members_age_out():
    from nas.core.records import TrialRecord, TrialState
    from nas.testing import ToySpace
    from strategies import RegularizedEvolution

    space = ToySpace()
    strategy = RegularizedEvolution(space, seed=0, population_size=3, tournament_size=2)
    strategy.objectives = OBJECTIVES
    history = [TrialRecord(number=n, arch=space.architecture(space.sample(np.random.default_rng(n))), state=TrialState.COMPLETE,
                           value=v, metrics={"accuracy": v, "size": size})
               for n, (v, size) in enumerate([(0.9, 1.0), (0.5, 5.0), (0.4, 6.0), (0.3, 7.0), (0.2, 8.0)])]
    population = [r.number for r in strategy.population(history)]
    assert population == [2, 3, 4, 0]  # the three most recent, and #0, which dominates them all
    strategy.ask(history)
    assert strategy._standing[0] == (0, -np.inf)  # and it wins every tournament it enters


def test_the_running_front_equals_the_front_of_the_whole_history(problem):
    """The TensorBoard and front-checkpoint callbacks keep the front incrementally: it must be the same one."""
    from nas.core.fronts import RunningFront, front_of

    space, table, _ = problem
    strategy = make_strategy(load_group_file("strategy", "random")[1], space, 0, budget=120)
    history = run_in_memory(strategy, TableEstimator(table, space=space, metric="accuracy"), 120)
    running = RunningFront(OBJECTIVES)
    for end in range(1, len(history) + 1, 7):
        assert [r.number for r in running.update(history[:end])] == [r.number for r in front_of(history[:end], OBJECTIVES)]
