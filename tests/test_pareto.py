"""Pareto utilities against brute force: ranks by pairwise dominance, hypervolume by counting unit cells."""

import itertools

import numpy as np
import pytest

from nas.core.pareto import crowding_distance, front, hypervolume, minimised, nondominated_ranks


def dominates(a, b):  # written out here: the brute force must not share the module's code
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def brute_ranks(points):
    ranks, left, rank = np.full(len(points), -1), set(range(len(points))), 0
    while left:
        layer = {i for i in left if not any(dominates(points[j], points[i]) for j in left if j != i)}
        for i in layer:
            ranks[i] = rank
        left -= layer
        rank += 1
    return ranks


def cell_count(points, reference):
    """Hypervolume of integer points: the unit cells [c, c+1) some point dominates, counted one by one."""
    count = 0
    for cell in itertools.product(*(range(0, int(r)) for r in reference)):
        if any(np.all(p <= np.array(cell)) for p in points):
            count += 1
    return count


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_ranks_match_pairwise_dominance(dims):
    rng = np.random.default_rng(dims)
    for _ in range(20):
        points = rng.integers(0, 6, size=(int(rng.integers(1, 30)), dims)).astype(float)
        assert nondominated_ranks(points).tolist() == brute_ranks(points).tolist()


@pytest.mark.parametrize("dims", [1, 2, 3, 4])
def test_hypervolume_is_exact_on_integer_points(dims):
    rng = np.random.default_rng(10 + dims)
    reference = np.full(dims, 6.0)
    for _ in range(15):
        points = rng.integers(0, 7, size=(int(rng.integers(1, 12)), dims)).astype(float)  # some on or past the reference
        assert hypervolume(points, reference) == cell_count(points[np.all(points < reference, axis=1)], reference)


def test_hypervolume_ignores_dominated_and_outside_points():
    ref = [4.0, 4.0]
    assert hypervolume([[1, 1]], ref) == 9.0
    assert hypervolume([[1, 1], [2, 2], [5, 0], [0, 4]], ref) == 9.0  # dominated, beyond and on the reference add nothing
    assert hypervolume(np.zeros((0, 2)), ref) == 0.0


def test_minimised_negates_max_columns_and_refuses_other_directions():
    assert minimised([[0.9, 3.0]], ["max", "min"]).tolist() == [[-0.9, 3.0]]
    with pytest.raises(ValueError, match=r"directions\[1\]` must be 'max' or 'min', but got 'up'"):
        minimised([[1.0, 2.0]], ["max", "up"])


def test_front_and_crowding():
    points = np.array([[0.0, 4.0], [1.0, 2.0], [2.0, 1.5], [4.0, 0.0], [3.0, 3.0]])
    assert front(points).tolist() == [0, 1, 2, 3]
    distance = crowding_distance(points[:4])
    assert np.isinf(distance[[0, 3]]).all()
    assert distance[1] == pytest.approx(2 / 4 + 2.5 / 4)  # neighbours (0, 4) and (2, 1.5) over ranges 4 and 4
    assert distance[2] == pytest.approx(3 / 4 + 2 / 4)
