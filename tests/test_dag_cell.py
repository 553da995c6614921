"""DAG cells whose nodes choose their inputs: the DARTS cell and a GNN benchmark's cell, declared in YAML."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nas
from nas.core import ConfigError, InvalidSampleError
from nas.testing import SpaceContract
from search_spaces.dag_cell import DagCellSpace
from tests.test_darts_genotype import DARTS, DARTS_V2

GNN = """\
_target_: search_spaces.dag_cell.DagCellSpace
cells: [cell]
cell_inputs: 1
nodes: 4
inputs_per_node: 1
ops: [gat, gcn, gin, cheb, sage, arma, graph, fc, skip]
output: concat_leaves
"""


def test_darts_genotypes_parse_and_format_back():
    space = nas.get_space("cell_darts")
    for text in (DARTS, DARTS_V2):
        sample = space.parse(text)
        assert space.format(sample) == text.replace("range(2, 6)", "[2, 3, 4, 5]")
        assert space.parse(space.format(sample)) == sample
    assert space.parse(DARTS_V2)["normal.n5.in1"] == 2 and space.parse(DARTS_V2)["reduce.n2.op0"] == "max_pool_3x3"


def test_darts_v2_built_at_the_papers_size_has_its_parameter_count():
    space = nas.get_space("cell_darts", channels=36, layers=20)
    model = space.build(space.parse(DARTS_V2), (3, 32, 32), 10)
    assert sum(p.numel() for p in model.parameters()) == 3_349_342


def test_equivalent_orderings_share_a_key_and_different_cells_do_not():
    space = nas.get_space("cell_darts")
    v2 = space.parse(DARTS_V2)
    swapped = {**v2, "normal.n2.in0": v2["normal.n2.in1"], "normal.n2.in1": v2["normal.n2.in0"],
               "normal.n2.op0": v2["normal.n2.op1"], "normal.n2.op1": v2["normal.n2.op0"]}
    assert swapped != v2 and space.key(swapped) == space.key(v2)
    # in DARTS V2's reduction cell nodes 3, 4 and 5 read only the cell inputs and node 2: numbering 3 and 4 the other way is the same cell
    assert {v2[f"reduce.n{j}.in{a}"] for j in (3, 4, 5) for a in (0, 1)} <= {0, 1, 2}
    renumbered = {**v2, **{f"reduce.n{a}.{f}": v2[f"reduce.n{b}.{f}"] for a, b in ((3, 4), (4, 3)) for f in ("in0", "in1", "op0", "op1")}}
    assert renumbered != v2 and space.key(renumbered) == space.key(v2)
    other = {**v2, "normal.n2.op0": "avg_pool_3x3"}
    assert space.key(other) != space.key(v2)


def test_inputs_choose_among_earlier_states_only():
    space = nas.get_space("cell_darts")
    dims = space.dimensions()
    assert dims["normal.n2.in0"].choices == (0, 1) and dims["normal.n5.in1"].choices == (0, 1, 2, 3, 4)
    with pytest.raises(InvalidSampleError, match="normal.n3.in0"):
        space.validate({**space.parse(DARTS_V2), "normal.n3.in0": 3})
    with pytest.raises(InvalidSampleError, match="`normal_concat` must list every intermediate node"):
        space.parse(DARTS_V2.replace("normal_concat=range(2, 6)", "normal_concat=[2, 3]"))
    with pytest.raises(InvalidSampleError, match="must hold 8 \\(op, input\\) pairs"):
        space.parse(DARTS_V2.replace("('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ", "", 1))


def test_a_gnn_benchmarks_cell_is_declared_in_yaml_alone(tmp_path):
    (tmp_path / "gnn_cell.yaml").write_text(GNN)
    space = nas.get_space(str(tmp_path / "gnn_cell.yaml"))
    assert space.lookup_only and len(space.dimensions()) == 8
    assert [d.choices for n, d in space.dimensions().items() if n.endswith(".in0")] == [(0,), (0, 1), (0, 1, 2), (0, 1, 2, 3)]
    chain = space.validate({"cell.n1.in0": 0, "cell.n2.in0": 1, "cell.n3.in0": 2, "cell.n4.in0": 3,
                            "cell.n1.op0": "gcn", "cell.n2.op0": "gin", "cell.n3.op0": "fc", "cell.n4.op0": "cheb"})
    assert space.outputs(chain, "cell") == [4]
    # links [0, 1, 2, 1] and [0, 1, 1, 3] with the ops renumbered are one architecture: fc(gin(gcn(x))) and cheb(gcn(x))
    def cell(links, ops):
        return {**{f"cell.n{j}.in0": v for j, v in enumerate(links, 1)}, **{f"cell.n{j}.op0": v for j, v in enumerate(ops, 1)}}

    a, b = cell([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"]), cell([0, 1, 1, 3], ["gcn", "cheb", "gin", "fc"])
    assert space.key(a) == space.key(b) and space.outputs(a, "cell") == [3, 4] and space.outputs(b, "cell") == [2, 4]
    assert space.key(a) != space.key(cell([0, 1, 1, 2], ["gcn", "cheb", "gin", "fc"]))  # fc(cheb(...)): another cell
    with pytest.raises(ConfigError, match="lookup-only"):
        space.build(a, (1, 8, 8), 10)


def benchmark_key(sample):
    """A stand-in for a benchmark's own hash: the ops only."""
    return ",".join(str(sample[f"cell.n{j}.op0"]) for j in range(1, 5))


def test_a_benchmarks_own_key_is_named_in_yaml(tmp_path):
    (tmp_path / "gnn_cell.yaml").write_text(GNN + "canonical: {_target_: tests.test_dag_cell.benchmark_key}\n")
    space = nas.get_space(str(tmp_path / "gnn_cell.yaml"))
    rng = np.random.default_rng(0)
    sample = space.sample(rng)
    other = {**sample, "cell.n4.in0": (int(sample["cell.n4.in0"]) + 1) % 4}
    assert space.key(sample) == space.key(other) and space.canonical(sample) == benchmark_key(sample)


@pytest.mark.parametrize("kwargs, message", [
    ({"cells": "normal"}, "`cells` must be a list of distinct names"),
    ({"output": "mean"}, "`output` must be one of concat, concat_leaves, sum_leaves"),
    ({"text": "darts"}, "`text: darts` needs cells \\[normal, reduce\\]"),
    ({"network": "darts", "ops": ["gcn"], "cell_inputs": 2}, "`network: darts` builds DARTS operations .* but \\['gcn'\\]"),
    ({"network": "darts", "ops": ["skip_connect"]}, "`cell_inputs` must be 2"),
    ({"ops": {"a": {"fn": 1}}}, "`ops.a` must be null .* or a mapping with `_target_`"),
    ({"nodes": 0}, "`nodes` must be an integer >= 1"),
])
def test_malformed_declarations_are_refused_naming_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DagCellSpace(**kwargs)


class TestDartsCell(SpaceContract):
    input_shapes = ((1, 8, 8), (1, 40))

    def make_space(self):
        return nas.get_space("cell_darts")


class TestGnnCell(SpaceContract):
    def make_space(self):
        return DagCellSpace(name="gnn", ops=["gat", "gcn", "skip"], output="concat_leaves")


def test_nas_search_trains_the_darts_and_nb101_cells_on_digits(tmp_path):
    """One sweep of two jobs (one process): each cell form is searched with real training, its text form printed."""
    out = subprocess.run([str(Path(sys.executable).with_name("nas-search")), "-m", "space=cell_darts,cell_nb101", "dataset=digits",
                          "budget.trials=2", "estimator.epochs=1", f"hydra.sweep.dir={tmp_path / 'sweep'}", "tensorboard=false"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("2 trials: 2 complete.") == 2
    assert "`Genotype(normal=[(" in out.stdout and "`ModelSpec(matrix=[[0, " in out.stdout
    results = [nas.load(p) for p in sorted((tmp_path / "sweep").iterdir()) if (p / "run.json").exists()]
    assert sorted(r.space.name for r in results) == ["cell_darts", "cell_nb101"]
    assert all(r.best.value > 0.1 and len(r.trials) == 2 for r in results)