"""What a person reviewing a search sees in TensorBoard: every curve, pictures of the best, the best's graph."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import nas
from nas.core import Diagram
from nas.engine.drawing import render
from nas.engine.tensorboard import scalar_tag
from nas.testing import ToySpace


def _events(path):
    return EventAccumulator(str(path), size_guidance={"images": 0, "scalars": 0}).Reload()


def test_scalar_names_become_one_section_per_split():
    assert scalar_tag("train_loss") == "train/loss"
    assert scalar_tag("train_accuracy") == "train/accuracy"
    assert scalar_tag("test_accuracy") == "test/accuracy"
    assert scalar_tag("train_lr") == "train/lr"
    assert scalar_tag("grad_norm") == "grad_norm" and scalar_tag("train") == "train"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("review") / "run"
    result = nas.search(space="mlp", strategy="random", dataset="digits", trials=3, epochs=3, seed=0, out_dir=out, progress=False,
                        overrides=["estimator.test_curve=true"])
    return result, out


def test_a_trained_trial_has_train_test_and_learning_rate_curves(trained_run):
    result, out = trained_run
    run = _events(out / "tb" / "trial_0000")
    for tag in ("val/accuracy", "train/loss", "train/accuracy", "train/lr", "test/accuracy"):
        assert [e.step for e in run.Scalars(tag)] == [0, 1, 2], tag
    lr = [e.value for e in run.Scalars("train/lr")]
    assert lr[0] > lr[1] > lr[2] > 0  # the cosine schedule, as trained
    train_acc = [e.value for e in run.Scalars("train/accuracy")]
    assert all(0 <= a <= 1 for a in train_acc) and train_acc[-1] > 0.5  # digits, far above chance
    first = result.trials[0]
    assert run.Scalars("test/accuracy")[-1].value == pytest.approx(first.metrics["test_accuracy"])  # the last point is the score's


def test_the_test_curve_is_off_by_default(tmp_path):
    nas.search(space="mlp", trials=1, epochs=2, out_dir=tmp_path, progress=False)
    tags = _events(tmp_path / "tb" / "trial_0000").Tags()["scalars"]
    assert "train/accuracy" in tags and "test/accuracy" not in tags


def test_the_search_run_draws_the_best_and_holds_the_best_models_graph(trained_run):
    result, out = trained_run
    run = _events(out / "tb" / "search")
    assert sorted(run.Tags()["images"]) == ["architecture/rank_1", "architecture/rank_2", "architecture/rank_3"]
    image = Image.open(io.BytesIO(run.Images("architecture/rank_1")[-1].encoded_image_string))
    assert image.width > 200 and image.height > 100
    assert run.Tags()["graph"]
    graph = run.Graph()
    assert any("Linear" in node.op or "linear" in node.op.lower() for node in graph.node)


def test_the_thread_count_is_recorded_with_the_run(trained_run):
    _, out = trained_run
    assert json.loads((out / "run.json").read_text())["estimator"]["threads"] == 1  # the default, on any machine


def test_default_diagram_groups_dimensions_by_prefix():
    space = ToySpace(max_depth=2, with_float=False)
    diagram = space.diagram({"depth": 2, "l1.op": "a", "l2.op": "c"})
    assert diagram.nodes == ("input", "l1: op=a", "l2: op=c", "output")
    assert diagram.edges == ((0, 1, ""), (1, 2, ""), (2, 3, "")) and diagram.caption == "depth=2"


def test_a_cell_diagram_shows_each_edge_with_its_op_and_leaves_none_out():
    space = nas.get_space("cell_nb201")
    sample = space.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|")
    diagram = space.diagram(sample)
    assert diagram.layout == "dag" and len(diagram.nodes) == 4
    assert sorted(diagram.edges) == [(0, 1, "nor_conv_3x3"), (0, 3, "avg_pool_3x3"), (1, 2, "skip_connect"), (2, 3, "nor_conv_1x1")]
    image = render(diagram, "a title")
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert (image < 128).any()  # something was drawn on the white ground


def test_a_diagram_refuses_edges_outside_its_nodes_and_unknown_layouts():
    with pytest.raises(ValueError, match=r"edge \(0, 5\)"):
        Diagram(("a", "b"), ((0, 5, ""),))
    with pytest.raises(ValueError, match="layout"):
        Diagram(("a",), (), layout="circle")


class UndrawableSpace(ToySpace):
    def diagram(self, sample):
        raise RuntimeError("no picture for you")


def test_a_space_that_cannot_be_drawn_costs_the_search_nothing(tmp_path, capsys):
    from tests.test_search import ScriptedEstimator

    result = nas.search(space=UndrawableSpace(max_depth=1, with_float=False), strategy="random", estimator=ScriptedEstimator(),
                        trials=2, out_dir=tmp_path)
    assert [r.state for r in result.trials] == ["complete", "complete"]
    assert "no picture of trial" in capsys.readouterr().out
    assert not _events(tmp_path / "tb" / "search").Tags()["images"]
