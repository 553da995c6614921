"""The NAS-Bench-201 cell space checked against the benchmark's own data.

Text form, keys and parameter counts are compared with the published tables in
``../shared/benchmarks/nb201`` (skipped where that folder is missing); shapes and errors are
checked on tiny networks so the whole file runs in seconds on a CPU.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from nas import Categorical, ConfigError, InvalidSampleError
from search_spaces.cell_nb201 import NB201_OPS, CellSpace
from search_spaces.dag_edges import EdgeCellSpace

NB201 = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "nb201"
EDGES = ["cell.e0_1", "cell.e0_2", "cell.e1_2", "cell.e0_3", "cell.e1_3", "cell.e2_3"]
BEST_CIFAR10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def needs(name: str) -> Path:
    path = NB201 / name
    if not path.exists():
        pytest.skip(f"benchmark data {path} is missing")
    return path


@pytest.fixture(scope="module")
def table() -> list[dict[str, str]]:
    with needs("nb201_test_accuracy.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def cell(*ops: str) -> dict[str, str]:
    """A full-DAG sample from six ops in NB201 edge order."""
    return dict(zip(EDGES, ops))


def tiny(**kwargs: object) -> CellSpace:
    return CellSpace(cells_per_stage=1, stem_channels=4, **kwargs)  # type: ignore[arg-type]


# ---- dimensions and text form --------------------------------------------------------------------
def test_dimensions_are_one_categorical_per_edge_in_nb201_order() -> None:
    dims = CellSpace().dimensions()
    assert list(dims) == EDGES
    assert all(d == Categorical(NB201_OPS) for d in dims.values())
    assert all(CellSpace().is_active(name, {}) for name in dims)


def test_every_benchmark_string_round_trips(table: list[dict[str, str]]) -> None:
    space = CellSpace()
    for row in table:
        sample = space.parse(row["ArchitectureString"])
        assert space.format(sample) == row["ArchitectureString"]
    assert space.parse(BEST_CIFAR10) == cell("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_3x3")
    assert len(table) == 15_625


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|", "conv_7x7"),
        ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", "|none~1|none~0|"),
        ("|none~0|+|none~0|none|+|none~0|none~1|none~2|", "'none'"),
        ("|none~0|+|none~0|none~1|", "2 in"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "none~0|"),
    ],
)
def test_parse_refuses_bad_strings_naming_the_bad_part(text: str, named: str) -> None:
    with pytest.raises(InvalidSampleError) as info:
        CellSpace().parse(text)
    assert named in str(info.value)


# ---- keys ----------------------------------------------------------------------------------------
def test_keys_split_the_benchmark_into_its_isomorphism_classes(table: list[dict[str, str]]) -> None:
    space = CellSpace()
    keys_of: dict[str, set[str]] = defaultdict(set)
    for row in table:
        sample = space.parse(row["ArchitectureString"])
        assert space.canonical(sample) == row["UniqueString"]
        keys_of[row["UniqueString"]].add(space.key(sample))
    assert all(len(keys) == 1 for keys in keys_of.values())
    assert len({key for keys in keys_of.values() for key in keys}) == len(keys_of) == 6466


def test_key_ignores_edges_that_cannot_reach_the_output() -> None:
    space = CellSpace()
    # Node 1 feeds nothing (both its out-edges are `none`), so edge 0->1 is dead.
    keys = {space.key(cell(op, "nor_conv_3x3", "none", "avg_pool_3x3", "none", "skip_connect")) for op in NB201_OPS}
    assert len(keys) == 1
    # The output sums pool(x) and conv(x) either way round: same function, same key.
    a = cell("avg_pool_3x3", "none", "none", "nor_conv_1x1", "skip_connect", "none")
    b = cell("nor_conv_1x1", "none", "none", "avg_pool_3x3", "skip_connect", "none")
    assert space.key(a) == space.key(b)
    # Composing the two ops the other way round is a different function.
    c = cell("avg_pool_3x3", "none", "nor_conv_1x1", "none", "none", "skip_connect")
    d = cell("nor_conv_1x1", "none", "avg_pool_3x3", "none", "none", "skip_connect")
    assert space.key(c) != space.key(d)


def test_cells_sharing_a_key_compute_the_same_function(table: list[dict[str, str]]) -> None:
    """Checked on parameter-free cells, where two builds from one seed share every weight."""
    space = tiny()
    groups: dict[str, list[str]] = defaultdict(list)
    for row in table:
        if "conv" not in row["ArchitectureString"] and "avg_pool" in row["UniqueString"]:
            groups[row["UniqueString"]].append(row["ArchitectureString"])
    x = torch.randn(4, 3, 8, 8)

    def run(text: str) -> torch.Tensor:
        torch.manual_seed(0)
        model = space.build(space.parse(text), (3, 8, 8), 10).eval()
        with torch.no_grad():
            return model(x)

    largest = sorted(groups.values(), key=len, reverse=True)[:6]
    for texts in largest:
        assert texts[0] != texts[-1]
        assert torch.allclose(run(texts[0]), run(texts[-1]), atol=1e-6)
    # Control: different keys, different functions.
    assert not torch.allclose(run(largest[0][0]), run(largest[1][0]), atol=1e-3)


# ---- network -------------------------------------------------------------------------------------
def test_parameter_counts_match_the_benchmark() -> None:
    with needs("nb201_subset_valacc_zerocost.json").open() as f:
        cells = json.load(f)["cifar10"]
    by_index = ["skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3"]
    space = CellSpace(cells_per_stage=5, stem_channels=16)
    millions: dict[tuple[int, int], float] = {}  # only the number of each conv changes the count
    for text, record in cells.items():
        ops = [by_index[int(v)] for v in text.strip("()").split(",")]
        counts = (ops.count("nor_conv_3x3"), ops.count("nor_conv_1x1"))
        if counts not in millions:
            model = space.build(cell(*ops), (3, 32, 32), 10)
            millions[counts] = sum(p.numel() for p in model.parameters()) / 1e6
        assert millions[counts] == pytest.approx(record["params"]["score"], abs=1e-6), text
    assert len(cells) > 700 and len(millions) > 20


@pytest.mark.parametrize(
    ("shape", "stages"),
    # Deeper stacks reduce odd sizes (40 -> ... -> 5 -> 3) and size 1 (8x8 -> ... -> 1 -> 1).
    [((3, 32, 32), 3), ((1, 8, 8), 3), ((1, 28, 28), 3), ((1, 40), 3), ((1, 8, 8), 5), ((1, 40), 8)],
)
def test_forward_and_backward_on_small_inputs(shape: tuple[int, ...], stages: int) -> None:
    space = tiny(stages=stages)
    model = space.build(space.parse(BEST_CIFAR10), shape, 7)
    out = model(torch.randn(5, *shape))
    assert out.shape == (5, 7)
    out.sum().backward()
    stem = next(model.parameters())
    assert stem.dim() == len(shape) + 1 and stem.grad is not None and torch.isfinite(stem.grad).all()


def test_all_none_cell_builds_and_outputs_a_constant() -> None:
    space = tiny()
    model = space.build(cell(*["none"] * 6), (1, 8, 8), 3).eval()
    with torch.no_grad():
        out = model(torch.randn(6, 1, 8, 8))
    assert out.shape == (6, 3) and torch.isfinite(out).all()
    # The cells output zeros, so nothing of the input survives to the head.
    assert torch.allclose(out, out[:1].expand_as(out))


def test_build_refuses_unsupported_shapes() -> None:
    sample = cell(*["skip_connect"] * 6)
    with pytest.raises(ConfigError, match="`input_shape` must be"):
        tiny().build(sample, (3,), 10)
    with pytest.raises(ConfigError, match="`num_classes` must be"):
        tiny().build(sample, (3, 8, 8), 0)
    with pytest.raises(InvalidSampleError, match="cell.e0_1"):
        tiny().build({**sample, "cell.e0_1": "conv_7x7"}, (3, 8, 8), 10)


# ---- declared topologies -------------------------------------------------------------------------
def test_sparse_topology_drops_dead_edges_but_builds_them() -> None:
    # Node 2 has no path to the output: edge 0->2 is dead, yet its weights exist as in NB201.
    space = tiny(edges=[[1, 3], [0, 1], [0, 2]])
    assert list(space.dimensions()) == ["cell.e0_1", "cell.e0_2", "cell.e1_3"]
    sample = {"cell.e0_1": "nor_conv_3x3", "cell.e0_2": "nor_conv_3x3", "cell.e1_3": "skip_connect"}
    text = space.format(sample)
    assert text == "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~1|"
    assert space.parse(text) == sample
    lighter = {**sample, "cell.e0_2": "none"}
    assert space.key(sample) == space.key(lighter)
    count = [sum(p.numel() for p in space.build(s, (1, 40), 2).parameters()) for s in (sample, lighter)]
    assert count[0] > count[1]
    assert space.build(sample, (1, 40), 2)(torch.randn(2, 1, 40)).shape == (2, 2)


def test_node_without_inputs_carries_nothing() -> None:
    space = tiny(edges=[[0, 1], [1, 3], [2, 3]])
    sample = {"cell.e0_1": "avg_pool_3x3", "cell.e1_3": "skip_connect", "cell.e2_3": "nor_conv_1x1"}
    assert space.format(sample) == "|avg_pool_3x3~0|+||+|skip_connect~1|nor_conv_1x1~2|"
    assert space.parse(space.format(sample)) == sample
    assert space.canonical(sample) == "(0)@avg_pool_3x3"
    assert space.key(sample) == space.key({**sample, "cell.e2_3": "none"})
    assert space.build(sample, (2, 8, 8), 4)(torch.randn(3, 2, 8, 8)).shape == (3, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ops": ["none", "conv_7x7"]}, "`ops` must name known operations. Unknown operation 'conv_7x7'."),
        ({"ops": []}, "`ops` must name at least one operation"),
        ({"ops": "none"}, "`ops` must be a list"),
        ({"ops": ["none", "none"]}, "`ops` must not repeat"),
        ({"nodes": 1}, "`nodes` must be an integer >= 2, but got 1"),
        ({"stem_channels": 0}, "`stem_channels` must be an integer >= 1, but got 0"),
        ({"cells_per_stage": -1}, "`cells_per_stage` must be an integer >= 1, but got -1"),
        ({"stages": True}, "`stages` must be an integer >= 1, but got True"),
        ({"edges": [[0, 4]]}, "0 <= i < j < 4 and j >= 1 (state 0 is the cell's input), but got [0, 4]"),
        ({"edges": [[2, 1]]}, "but got [2, 1]"),
        ({"edges": [[0, 1], [0, 1], [1, 3]]}, "`edges` must not repeat"),
        ({"edges": [[0, 1], [2, 3]]}, "`edges` must connect input node 0 to output node 3, but got [[0, 1], [2, 3]]"),
    ],
)
def test_bad_declarations_are_refused_naming_the_key(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        CellSpace(**kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith("space 'cell_nb201': ")
    assert message in str(info.value)


def test_yaml_declares_the_space_and_overrides_give_the_benchmark_network() -> None:
    from nas import get_space

    space = get_space("cell_nb201")
    assert isinstance(space, EdgeCellSpace) and space.name == "cell_nb201"  # declared through the DAG cell family
    assert list(space.dimensions()) == EDGES and space.ops == NB201_OPS
    assert (space.cells_per_stage, space.stem_channels) == (1, 8)  # the CPU-friendly default
    benchmark = get_space("cell_nb201", cells_per_stage=5, stem_channels=16)
    model = benchmark.build(cell(*["avg_pool_3x3"] * 6), (3, 32, 32), 10)
    assert sum(p.numel() for p in model.parameters()) == 73_306  # NB201's count for a conv-free cell


def test_the_yaml_declaration_and_the_python_class_agree_on_every_cell(table: list[dict[str, str]]) -> None:
    """The DAG family's NAS-Bench-201 (configs/space/cell_nb201.yaml) against CellSpace: same dimensions and
    draws, and on all 15,625 benchmark cells the same key, string, paths and morphs."""
    import numpy as np

    from nas import get_space

    declared, python = get_space("cell_nb201"), CellSpace(cells_per_stage=1, stem_channels=8)
    assert declared.dimensions() == python.dimensions()
    assert [declared.sample(np.random.default_rng(3)) for _ in range(3)] == [python.sample(np.random.default_rng(3)) for _ in range(3)]
    for row in table:
        sample = declared.parse(row["ArchitectureString"])
        assert declared.key(sample) == python.key(sample) and declared.format(sample) == python.format(sample)
        assert declared.paths(sample) == python.paths(sample) and declared.live(sample) == python.live(sample)
        assert [str(m) for m in declared.morphs(sample)] == [str(m) for m in python.morphs(sample)]
    model = [s.build(cell(*["nor_conv_3x3"] * 6), (1, 8, 8), 10) for s in (declared, python)]
    assert [tuple(v.shape) for v in model[0].state_dict().values()] == [tuple(v.shape) for v in model[1].state_dict().values()]


def test_the_same_cells_as_labels_are_lookup_only_with_the_same_keys() -> None:
    from nas import get_space

    labels = get_space("cell_nb201", network=None)
    assert labels.lookup_only and labels.morphs(cell(*["none"] * 6)) == []
    sample = cell("none", "nor_conv_1x1", "nor_conv_3x3", "skip_connect", "avg_pool_3x3", "none")
    assert labels.key(sample) == CellSpace().key(sample) and labels.format(sample) == CellSpace().format(sample)
    with pytest.raises(ConfigError, match="lookup-only"):
        labels.build(sample, (1, 8, 8), 10)


# ---- morphisms ------------------------------------------------------------------------------------
def test_morphs_fill_none_edges_with_a_convolution_and_widen_1x1_kernels() -> None:
    space = tiny()
    parent = cell("none", "nor_conv_1x1", "nor_conv_3x3", "skip_connect", "avg_pool_3x3", "none")
    morphs = space.morphs(parent)
    assert [str(m) for m in morphs] == ["add_op cell.e0_1:nor_conv_1x1", "add_op cell.e0_1:nor_conv_3x3", "widen_kernel cell.e0_2",
                                        "add_op cell.e2_3:nor_conv_1x1", "add_op cell.e2_3:nor_conv_3x3"]
    for m in morphs:  # exactly one edge changes
        assert [e for e in EDGES if m.child[e] != parent[e]] == [m.where.partition(":")[0]]
    assert space.morphs(cell(*["nor_conv_3x3"] * 6)) == []  # no none edge, no 1x1 kernel: nothing to grow
    no_3x3 = tiny(ops=["none", "skip_connect", "nor_conv_1x1"])
    assert [str(m) for m in no_3x3.morphs(cell("none", "nor_conv_1x1", *["skip_connect"] * 4))] == ["add_op cell.e0_1:nor_conv_1x1"]


def test_an_added_op_starts_silent_and_a_widened_kernel_keeps_the_parent_weights_in_its_centre() -> None:
    space = tiny()
    parent = cell("none", "nor_conv_1x1", "nor_conv_3x3", "skip_connect", "avg_pool_3x3", "none")
    state = space.build(parent, (1, 8, 8), 10).state_dict()
    widened = space.inherit(parent, state, {**parent, "cell.e0_2": "nor_conv_3x3"}, (1, 8, 8), 10)
    assert str(widened.morph) == "widen_kernel cell.e0_2" and widened.fraction == 1.0  # every tensor comes from the parent
    weights = {k: v for k, v in widened.model.state_dict().items() if k.endswith("edges.e0_2.1.weight")}
    # the 1x1 kernel sits in the centre of the 3x3 one, zeros around it
    assert weights and all(torch.equal(w, torch.nn.functional.pad(state[k], (1, 1, 1, 1))) for k, w in weights.items())
    added = space.inherit(parent, state, {**parent, "cell.e0_1": "nor_conv_3x3"}, (1, 8, 8), 10)
    assert added.morph.kind == "add_op" and 0 < added.fraction < 1
    norms = {k: v for k, v in added.model.state_dict().items() if ".edges.e0_1.2." in k and k.endswith(("weight", "bias"))}
    assert norms and all(torch.count_nonzero(v) == 0 for v in norms.values())  # its batch norm's scale and shift start at zero
