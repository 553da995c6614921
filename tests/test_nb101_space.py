"""The NAS-Bench-101 cell declared in YAML (configs/space/cell_nb101.yaml): benchmark keys, valid cells only, its network."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from omegaconf import OmegaConf

import nas
from nas import ConfigError, InvalidSampleError, TableEstimator
from nas._api import make_strategy
from nas._config import load_group_file
from nas.engine.loop import run_in_memory
from search_spaces._nb101_graph import prune, spec_hash
from search_spaces.dag_adjacency import AdjacencyCellSpace
from search_spaces.dag_cell import DagCellSpace
from tests.test_nb101_graph import QUERIED, STORED

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"


@pytest.fixture(scope="module")
def space() -> AdjacencyCellSpace:
    return nas.get_space("cell_nb101")


def spec_text(matrix, ops) -> str:
    return f"ModelSpec(matrix={matrix}, ops={ops})"


def pruned_edges(space, sample) -> int:
    matrix, _ = space.pruned(sample)
    return sum(map(sum, matrix))


def test_the_yaml_declares_nb101_through_the_dag_family(space):
    assert isinstance(space, AdjacencyCellSpace) and isinstance(space, DagCellSpace) and space.constrained
    dims = space.dimensions()
    assert len(dims) == 21 + 5 and list(dims)[:3] == ["cell.e0_1", "cell.e0_2", "cell.e0_3"]
    assert dims["cell.n3.op"].choices == (C3, C1, MP) and dims["cell.e2_6"].choices == (0, 1)


def test_the_readme_cell_has_the_benchmarks_parameter_count_and_key():
    """NAS-Bench-101's README queries this Inception-like cell and prints `trainable_parameters: 2694282`,
    with the stored spec in another vertex order: both build that network and share the benchmark's key."""
    benchmark = nas.get_space("cell_nb101", stem_channels=128, cells_per_stage=3)
    queried, stored = (benchmark.parse(spec_text(*spec)) for spec in (QUERIED, STORED))
    for sample in (queried, stored):
        assert sum(p.numel() for p in benchmark.build(sample, (3, 32, 32), 10).parameters()) == 2_694_282
    assert benchmark.canonical(queried) == spec_hash(*QUERIED) == benchmark.canonical(stored)
    assert benchmark.key(queried) == benchmark.key(stored)


def test_keys_ignore_vertex_numbering_and_separate_other_cells(space):
    rng = np.random.default_rng(0)
    relabellings = separations = 0
    for _ in range(40):
        sample = space.sample(rng)
        matrix, ops = space.spec(sample)
        order = _random_topological_order(matrix, rng)  # relabel the interior vertices, keeping the DAG's order
        position = {old: new for new, old in enumerate(order)}
        relabelled = [[0] * 7 for _ in range(7)]
        for i, j in itertools.combinations(range(7), 2):
            if matrix[i][j]:
                assert position[i] < position[j]  # the same DAG, written another way
                relabelled[position[i]][position[j]] = 1
        new_ops = [ops[old] for old in order]
        assert space.key(space.parse(spec_text(relabelled, new_ops))) == space.key(sample)
        relabellings += 1
        # another op on a vertex that survives pruning is another cell
        kept = [j for j in range(1, 6) if j in _survivors(matrix, ops)]
        if kept:
            j = kept[0]
            other = {**sample, f"cell.n{j}.op": next(op for op in (C3, C1, MP) if op != sample[f"cell.n{j}.op"])}
            if space.is_valid(other):
                assert space.key(other) != space.key(sample)
                separations += 1
    assert relabellings == 40 and separations >= 10, (relabellings, separations)  # the checks above did run


def _random_topological_order(matrix, rng):
    """Vertex 0, the 5 interior vertices in a random order every edge agrees with, vertex 6."""
    order, left = [0], [1, 2, 3, 4, 5]
    while left:
        ready = [v for v in left if not any(matrix[u][v] for u in left)]
        order.append(ready[int(rng.integers(len(ready)))])
        left.remove(order[-1])
    return order + [6]


def _survivors(matrix, ops):
    """Vertex indices (of the unpruned spec) that pruning keeps."""
    tagged = [f"{op}#{i}" for i, op in enumerate(ops)]
    return {int(t.rpartition("#")[2]) for t in prune(matrix, tagged)[1]}


def test_samples_mutations_neighbours_and_grids_hold_valid_cells_only(space):
    rng = np.random.default_rng(1)
    raw = [{name: dim.sample(rng) for name, dim in space.dimensions().items()} for _ in range(300)]
    assert sum(not space.is_valid(s) for s in raw) > 30  # uniform draws break the constraints often: the filter matters
    samples = [space.sample(rng) for _ in range(200)]
    assert all(0 < pruned_edges(space, s) <= 9 for s in samples)
    counts = []
    for sample in samples[:50]:
        assert space.is_valid(space.mutate(sample, rng))
        neighbours = space.neighbors(sample)
        assert neighbours and all(space.is_valid(n) for n in neighbours)
        counts.append(len(neighbours))
    assert min(counts) < 21 + 10 == max(counts)  # some flips break the limit or cut the input off: they are left out
    assert len({space.key(s) for s in samples}) > 100  # pruning merges some
    first = list(itertools.islice(space.grid(), 300))  # lazily, fewest edges first, unused vertices unlabelled
    assert len(first) == 300 and all(space.is_valid(s) for s in first) and len({space.key(s) for s in first}) > 50  # isomorphic cells repeat keys


def test_a_reduced_network_is_narrower_and_shallower_with_the_same_cells(space):
    benchmark = nas.get_space("cell_nb101", stem_channels=16, cells_per_stage=4)
    small = benchmark.reduced(width=0.5, depth=0.5)
    assert (small.stem_channels, small.cells_per_stage) == (8, 2) and small.dimensions() == benchmark.dimensions()
    sample = benchmark.parse(spec_text(*QUERIED))
    assert small.key(sample) == benchmark.key(sample)
    sizes = [sum(p.numel() for p in s.build(sample, (1, 8, 8), 10).parameters()) for s in (benchmark, small)]
    assert sizes[1] < sizes[0]


def test_invalid_cells_are_refused_naming_the_rule(space):
    edges = {name: 0 for name in space.dimensions() if ".e" in name}
    ops = {f"cell.n{j}.op": C3 for j in range(1, 6)}
    with pytest.raises(InvalidSampleError, match="must connect its input \\(vertex 0\\) to its output \\(vertex 6\\)"):
        space.validate({**edges, **ops})
    dense = {name: 1 for name in edges}
    with pytest.raises(InvalidSampleError, match="at most max_edges=9 edges once pruned, but it keeps 21"):
        space.validate({**dense, **ops})
    assert space.is_valid({**edges, "cell.e0_6": 1, **ops})  # input straight to output: valid, one edge


@pytest.mark.parametrize("text, message", [
    ("ModelSpec(matrix=[[0, 1], [0, 0]], ops=['input', 'output'])", "must have 7 vertices"),
    (spec_text(QUERIED[0], ["input", C1, C3, C3, C3, MP, "conv"]), "must begin with 'input' and end with 'output'"),
    (spec_text([[1] * 7] * 7, QUERIED[1]), "upper triangular"),
    (spec_text(QUERIED[0], ["input", C1, "conv5x5", C3, C3, MP, "output"]), "cell.n2.op"),
    ("Genotype(normal=[])", "must read `ModelSpec\\(matrix="),
    ("ModelSpec(matrix=[[0]], ops=['input'], extra=1)", "must read `ModelSpec\\(matrix="),
])
def test_parse_refuses_bad_specs(space, text, message):
    with pytest.raises(InvalidSampleError, match=message):
        space.parse(text)


def test_format_and_parse_round_trip_and_a_mapping_is_accepted(space):
    sample = space.parse(spec_text(*QUERIED))
    assert space.format(sample) == spec_text(*QUERIED)
    assert space.parse(str({"matrix": QUERIED[0], "ops": QUERIED[1]})) == sample


@pytest.mark.parametrize("kwargs, message", [
    ({"edges": "chosen", "cell_inputs": 2}, "`edges: chosen` declares NAS-Bench-101's cell: one input vertex"),
    ({"edges": "chosen", "output": "last", "inputs_per_node": 2}, "`inputs_per_node` chooses a fixed number of inputs"),
    ({"edges": "chosen", "output": "last", "max_edges": 0}, "`max_edges` must be an integer >= 1"),
    ({"edges": "chosen", "output": "last", "network": "nb101", "ops": ["gcn"]}, "`network: nb101` builds NAS-Bench-101's operations"),
    ({"edges": "chosen", "output": "last", "network": "darts"}, "`network` must be nb101 or null"),
    ({"max_edges": 9}, "`max_edges` limits a cell whose edges are chosen"),
    ({"edges": "all", "max_edges": 9}, "`max_edges` limits a cell whose edges are chosen"),
    ({"edges": "all", "inputs_per_node": 1}, "`inputs_per_node` chooses a fixed number of inputs per node, which `edges` declares"),
])
def test_malformed_declarations_are_refused_naming_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DagCellSpace(**kwargs)


def conv3x3_count(arch) -> float:
    """A stand-in table: the share of 3x3 convolutions on the vertices that survive pruning."""
    space = nas.get_space("cell_nb101", network=None)
    _, ops = space.pruned(arch.sample)
    return sum(op == C3 for op in ops) / 5


@pytest.mark.parametrize("strategy", ["random", "grid", "local", "evolution", "tpe", "bo", "rl"])
def test_every_strategy_proposes_valid_cells_only(strategy):
    """Strategies that draw dimension by dimension (TPE, the RL controller) redraw an invalid cell;
    the others use the space's valid-only sample, mutate and neighbours; evolution's crossover falls
    back to a mutation when a mix breaks the limit."""
    space = nas.get_space("cell_nb101", network=None)
    node = OmegaConf.merge(load_group_file("strategy", strategy)[1], {"shuffle": False} if strategy == "grid" else {})
    node = OmegaConf.merge(node, {"crossover": 0.5} if strategy == "evolution" else {})
    history = run_in_memory(make_strategy(node, space, 0), TableEstimator(conv3x3_count, space=space), 30)
    assert len(history) == 30 and all(r.state == "complete" for r in history)
    assert all(space.is_valid(r.arch.sample) and pruned_edges(space, r.arch.sample) <= 9 for r in history)
