"""MLPSpace: conditional widths, flattening of any input rank, YAML declaration, config errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from nas import ConfigError, Float
from search_spaces.mlp import MLPSpace

SPACE_YAML = Path(__file__).resolve().parents[1] / "configs" / "space" / "mlp.yaml"


@pytest.fixture(scope="module")
def space() -> MLPSpace:
    space = instantiate(OmegaConf.load(SPACE_YAML))
    assert isinstance(space, MLPSpace) and space.name == "mlp"
    return space


def sample(**over: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"depth": 2, "layer1.width": 128, "layer2.width": 64, "layer3.width": 256, "activation": "gelu", "dropout": 0.1}
    s.update(over)
    return s


def test_dimensions(space: MLPSpace) -> None:
    assert list(space.dimensions()) == ["depth", "layer1.width", "layer2.width", "layer3.width", "activation", "dropout"]
    assert isinstance(space.dimensions()["dropout"], Float)
    assert space.dimensions() == MLPSpace().dimensions()


def test_widths_beyond_depth_are_inactive_and_ignored_by_key(space: MLPSpace) -> None:
    assert "layer3.width" not in space.active(sample())
    assert space.key(sample()) == space.key(sample(**{"layer3.width": 64}))
    assert space.key(sample()) != space.key(sample(**{"layer2.width": 256}))
    assert space.key(sample()) != space.key(sample(depth=3))


@pytest.mark.parametrize("shape", [(64,), (1, 8, 8), (3, 32, 32), (1, 40)])
def test_build_flattens_any_rank(space: MLPSpace, shape: tuple[int, ...]) -> None:
    net = space.build(sample(), shape, 10)
    assert net(torch.randn(4, *shape)).shape == (4, 10)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [m.in_features for m in linears] == [int(np.prod(shape)), 128, 64]
    assert sum(isinstance(m, nn.GELU) for m in net.modules()) == 2
    assert all(m.p == pytest.approx(0.1) for m in net.modules() if isinstance(m, nn.Dropout))


def test_random_samples_build_and_round_trip(space: MLPSpace) -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = space.sample(rng)
        assert space.parse(space.format(s)) == s
        net = space.build(s, (1, 8, 8), 10)
        assert sum(isinstance(m, nn.Linear) for m in net.modules()) == s["depth"] + 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth": [0, 2]}, r"`depth` must hold integers >= 1, but got \[0, 2\]"),
        ({"widths": [-16, 32]}, r"`widths` must hold positive integers, but got \[-16, 32\]"),
        ({"widths": []}, "`widths` must hold at least one value"),
        ({"activation": ["relu", "swish"]}, r"`activation`: Unknown activation 'swish'.*Valid names: gelu, relu, silu, tanh"),
        ({"dropout": {"low": 0.0}}, "`dropout` must be a mapping with keys `low` and `high`"),
        ({"dropout": [-0.1, 0.5]}, r"`dropout` must satisfy `0.0 <= low <= high < 1.0`, but got \(low=-0.1, high=0.5\)"),
    ],
)
def test_config_errors_name_the_key(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        MLPSpace(**kwargs)


def test_build_rejects_bad_arguments(space: MLPSpace) -> None:
    with pytest.raises(ConfigError, match="`num_classes` must be a positive integer"):
        space.build(sample(), (64,), -1)
    with pytest.raises(ConfigError, match="`input_shape` must be a non-empty tuple of positive sizes"):
        space.build(sample(), (), 10)


def test_morphs_widen_each_layer_to_every_larger_width_and_deepen_only_after_relu(space: MLPSpace) -> None:
    gelu = sample(depth=2, **{"layer1.width": 64, "layer2.width": 256})
    assert [(str(m), m.child["layer1.width"]) for m in space.morphs(gelu)] == [("widen layer1", 128), ("widen layer1", 256)]
    assert all(space.active(m.child) == space.active({**gelu, "layer1.width": m.child["layer1.width"]}) for m in space.morphs(gelu))
    relu = {**gelu, "activation": "relu"}
    deepened = [m for m in space.morphs(relu) if m.kind == "deepen"]
    # the inserted layer copies the width of the layer it follows; the others move down one place
    assert [(m.where, m.child["depth"], [m.child[f"layer{i}.width"] for i in (1, 2, 3)]) for m in deepened] == [
        ("layer2", 3, [64, 64, 256]), ("layer3", 3, [64, 256, 256])]
    assert not [m for m in space.morphs({**relu, "depth": 3}) if m.kind == "deepen"]  # no room below the deepest allowed
    widest = sample(depth=1, **{"layer1.width": 256})
    assert space.morphs(widest) == []  # nothing wider, and gelu is not the identity on what it follows


def test_a_child_that_is_no_morph_inherits_by_name_and_shape(space: MLPSpace) -> None:
    parent = sample(depth=2, **{"layer1.width": 128, "layer2.width": 64})
    state = space.build(parent, (64,), 10).state_dict()
    narrower = space.inherit(parent, state, {**parent, "layer1.width": 64}, (64,), 10)
    assert narrower.morph is None and 0 < narrower.fraction < 1
    kept = narrower.model.state_dict()
    same = [name for name in kept if kept[name].shape == state[name].shape and torch.equal(kept[name], state[name])]
    assert same == ["4.bias", "7.weight", "7.bias"]  # the first layer and the second's weight changed shape
    assert narrower.fraction == pytest.approx((64 + 10 * 64 + 10) / sum(v.numel() for v in kept.values()))
