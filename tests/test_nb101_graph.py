"""NAS-Bench-101's key: pruning and the isomorphism-invariant hash, pinned on the benchmark's cases."""

from __future__ import annotations

import itertools
import random

import pytest

from search_spaces._nb101_graph import graph_hash, prune, spec_hash

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"

# The benchmark README's query (an Inception-like cell) and the spec the benchmark returned for it: the
# same cell stored with its nodes in another order (module_adjacency / module_operations).
QUERIED = ([[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
            [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
           ["input", C1, C3, C3, C3, MP, "output"])
STORED = ([[0, 1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1],
           [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
          ["input", C3, C1, MP, C3, C3, "output"])


def test_the_benchmarks_stored_spec_has_the_queried_specs_key():
    assert spec_hash(*QUERIED) == spec_hash(*STORED)
    assert len(spec_hash(*QUERIED)) == 32


# graph_util_test.py's cases: (matrix, labels) pairs the benchmark's hash must equate or separate.
DIAMOND = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
CHAIN5 = [[0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
M1 = [[0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
M2 = [[0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
M3 = [[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
R1 = [[0, 1, 0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0, 1, 0], [0, 0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 0, 0],
      [0, 0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 0, 1], [0] * 8]
R2 = [[0, 1, 0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0, 1, 0], [0, 0, 0, 0, 1, 1, 0, 0],
      [0, 0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 0, 1], [0] * 8]
SKIP = [[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
FAN = [[0, 1, 1, 1, 1, 0, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1, 0],
       [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0] * 7]
SAME = [((DIAMOND, [-1, 1, 2, -2]), (DIAMOND, [-1, 2, 1, -2])),
        ((M1, [-1, 1, 2, 3, -2]), (M2, [-1, 2, 3, 1, -2])),
        ((M1, [-1, 1, 2, 3, -2]), (M3, [-1, 2, 1, 3, -2]))]
DIFFERENT = [((M1, [-1, 1, 2, 3, -2]), (M1, [-1, 2, 3, 1, -2])),
             ((M1, [-1, 1, 2, 3, -2]), (M1, [-1, 2, 1, 3, -2])),
             ((R1, [-1, 1, 1, 1, 1, 1, 1, -2]), (R2, [-1, 1, 1, 1, 1, 1, 1, -2])),
             ((CHAIN5, [-1, 1, 0, 0, -2]), (CHAIN5, [-1, 0, 0, 1, -2])),
             ((SKIP, [-1, 1, 0, -2]), (SKIP, [-1, 0, 1, -2])),
             ((FAN, [-1, 1, 0, 0, 0, 0, -2]), (FAN, [-1, 0, 0, 0, 1, 0, -2]))]


@pytest.mark.parametrize("first, second", SAME)
def test_isomorphic_graphs_of_the_benchmarks_tests_share_a_hash(first, second):
    assert graph_hash(*first) == graph_hash(*second)


@pytest.mark.parametrize("first, second", DIFFERENT)
def test_non_isomorphic_graphs_of_the_benchmarks_tests_are_told_apart(first, second):
    assert graph_hash(*first) != graph_hash(*second)


def relabel(matrix, labels, order):
    """The same graph with node ``order[k]`` renamed ``k``."""
    size = len(matrix)
    return [[matrix[order[i]][order[j]] for j in range(size)] for i in range(size)], [labels[order[k]] for k in range(size)]


def random_spec(rng, size=7, edges=9):
    pairs = [(i, j) for j in range(size) for i in range(j)]
    chosen = set(rng.sample(pairs, rng.randint(1, min(edges, len(pairs)))))
    matrix = [[int((i, j) in chosen) for j in range(size)] for i in range(size)]
    return matrix, [-1, *(rng.randrange(3) for _ in range(size - 2)), -2]


def isomorphic(a, b):
    (ma, la), (mb, lb) = a, b
    size = len(ma)
    return any(relabel(ma, la, [0, *perm, size - 1]) == (mb, lb) for perm in itertools.permutations(range(1, size - 1)))


def test_the_hash_ignores_how_the_nodes_are_numbered():
    rng = random.Random(0)
    for _ in range(300):
        matrix, labels = random_spec(rng, size=rng.randint(3, 8), edges=12)
        order = list(range(len(matrix)))
        rng.shuffle(order)  # any relabelling: the hash does not need a DAG in topological order
        assert graph_hash(*relabel(matrix, labels, order)) == graph_hash(matrix, labels)


def test_the_hash_separates_non_isomorphic_specs():
    """All pairs of 400 random 5-node specs: equal hashes exactly when a brute-force search finds an isomorphism."""
    rng = random.Random(1)
    specs = [random_spec(rng, size=5, edges=6) for _ in range(400)]
    by_hash: dict[str, list] = {}
    for spec in specs:
        by_hash.setdefault(graph_hash(*spec), []).append(spec)
    collisions = sum(len(group) > 1 for group in by_hash.values())
    assert collisions > 10  # the test sees isomorphic pairs, not only distinct specs
    for group in by_hash.values():
        assert all(isomorphic(group[0], other) for other in group[1:])
    groups = [group[0] for group in by_hash.values()]
    for a, b in itertools.combinations(groups[:120], 2):
        assert not isomorphic(a, b)


def test_pruning_drops_nodes_off_every_path_and_keeps_the_key():
    # node 5 feeds nothing that reaches the output; node 4 is fed by nothing from the input
    matrix = [[0, 1, 0, 0, 0, 1, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1],
              [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0], [0] * 7]
    ops = ["input", C3, C1, MP, C3, C3, "output"]
    pruned_matrix, pruned_ops = prune(matrix, ops)
    assert pruned_ops == ("input", C3, C1, MP, "output")
    assert pruned_matrix == ((0, 1, 0, 0, 0), (0, 0, 1, 0, 0), (0, 0, 0, 1, 0), (0, 0, 0, 0, 1), (0, 0, 0, 0, 0))
    assert spec_hash(matrix, ops) == spec_hash(pruned_matrix, pruned_ops)
    assert prune([[0, 0, 0], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"]) is None
    assert spec_hash([[0, 0, 0], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"]) is None


def test_malformed_specs_are_refused():
    with pytest.raises(ValueError, match="upper triangular"):
        prune([[0, 0], [1, 0]], ["input", "output"])
    with pytest.raises(ValueError, match="square"):
        prune([[0, 1], [0]], ["input", "output"])
    with pytest.raises(ValueError, match="one op per node"):
        prune([[0, 1], [0, 0]], ["input"])
