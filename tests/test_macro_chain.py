"""MacroChainSpace: conditional dimensions, keys, building, YAML declarations and config errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from nas import ConfigError, Float, Integer, InvalidSampleError
from search_spaces.macro_chain import ChainLayer, MacroChainSpace

SPACE_DIR = Path(__file__).resolve().parents[1] / "configs" / "space"


def load(name: str) -> MacroChainSpace:
    space = instantiate(OmegaConf.load(SPACE_DIR / f"{name}.yaml"))
    assert isinstance(space, MacroChainSpace)
    return space


@pytest.fixture(scope="module")
def space() -> MacroChainSpace:
    return load("macro_chain")


def two_layers(**over: Any) -> dict[str, Any]:
    """depth=2 with values also set for layers 3 and 4, which must then be ignored."""
    s: dict[str, Any] = {"depth": 2, "head.pool": "avg", "head.hidden": 64, "head.dropout": 0.1}
    for i, op in enumerate(["conv3x3", "sep_conv3x3", "max_pool3x3", "conv5x5"], start=1):
        s.update({f"layer{i}.op": op, f"layer{i}.width": 32, f"layer{i}.skip": False, f"layer{i}.reduce": i == 2})
    s.update(over)
    return s


# ---- dimensions and activity -------------------------------------------------------------------
def test_dimensions_in_dependency_order(space: MacroChainSpace) -> None:
    names = list(space.dimensions())
    assert names[:5] == ["depth", "layer1.op", "layer1.width", "layer1.skip", "layer1.reduce"]
    assert names[-3:] == ["head.pool", "head.hidden", "head.dropout"]
    assert space.max_depth == 4 and "layer4.reduce" in names and "layer5.op" not in names
    assert isinstance(space.dimensions()["depth"], Integer)
    assert isinstance(space.dimensions()["head.dropout"], Float)


def test_layers_beyond_depth_are_inactive_and_ignored_by_key(space: MacroChainSpace) -> None:
    a = two_layers()
    active = space.active(a)
    assert "layer2.op" in active and not any(k.startswith(("layer3.", "layer4.")) for k in active)
    # Differ only in inactive values: same architecture.
    b = two_layers(**{"layer3.op": "identity", "layer3.skip": True, "layer4.width": 64})
    assert space.key(a) == space.key(b)
    # Differ in an active value: different architecture.
    assert space.key(a) != space.key(two_layers(**{"layer2.width": 64}))
    assert space.key(a) != space.key(two_layers(depth=3))


def test_width_inactive_for_channel_keeping_ops(space: MacroChainSpace) -> None:
    for op in ["max_pool3x3", "avg_pool3x3", "identity"]:
        s = two_layers(**{"layer1.op": op})
        assert "layer1.width" not in space.active(s)
        assert space.key(s) == space.key(two_layers(**{"layer1.op": op, "layer1.width": 64}))
    assert "layer1.width" in space.active(two_layers())


def test_dropout_active_only_with_hidden_layer(space: MacroChainSpace) -> None:
    no_hidden = two_layers(**{"head.hidden": 0})
    assert "head.dropout" not in space.active(no_hidden)
    assert space.key(no_hidden) == space.key(two_layers(**{"head.hidden": 0, "head.dropout": 0.25}))
    assert space.key(two_layers()) != space.key(two_layers(**{"head.dropout": 0.25}))


def test_noop_identity_layer_shares_key_with_shorter_chain(space: MacroChainSpace) -> None:
    short = two_layers()
    padded = two_layers(depth=3, **{"layer2.op": "identity", "layer2.reduce": False, "layer3.op": "sep_conv3x3", "layer3.reduce": True})
    assert space.key(short) == space.key(padded)
    # With a skip the identity layer computes 2x, with reduce it subsamples: both are kept.
    assert space.key(short) != space.key({**padded, "layer2.skip": True})
    assert space.key(short) != space.key({**padded, "layer2.reduce": True})


def test_samples_validate_and_round_trip_through_text(space: MacroChainSpace) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = space.sample(rng)
        assert space.validate(s) == s
        assert space.parse(space.format(s)) == s
        assert all(n in space.active(s) for n in s)
    assert all(space.validate(n) for n in space.neighbors(space.sample(rng)))


def test_invalid_sample_names_the_key(space: MacroChainSpace) -> None:
    with pytest.raises(InvalidSampleError, match="`layer2.width` must be one of"):
        space.validate(two_layers(**{"layer2.width": 48}))
    with pytest.raises(InvalidSampleError, match="`layer1.op`"):
        space.validate(two_layers(**{"layer1.op": "conv7x7"}))


# ---- building ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 40)])
def test_build_output_shape_and_declared_depth(space: MacroChainSpace, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    for _ in range(4):
        s = space.sample(rng)
        net = space.build(s, shape, 10)
        assert len(net.layers) == s["depth"]
        assert all(isinstance(layer, ChainLayer) for layer in net.layers)
        assert net(torch.randn(2, *shape)).shape == (2, 10)


@pytest.mark.parametrize("op", ["conv3x3", "conv5x5", "sep_conv3x3", "dil_conv3x3", "max_pool3x3", "avg_pool3x3", "identity"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 40)])
def test_every_default_op_builds_and_runs(space: MacroChainSpace, op: str, shape: tuple[int, ...]) -> None:
    # Four reductions take 8 -> 1 and 40 -> 3; skips force projections where shapes change.
    s = {"depth": 4, "head.pool": "max", "head.hidden": 0}
    for i in range(1, 5):
        s.update({f"layer{i}.op": op, f"layer{i}.width": (16, 32, 64, 32)[i - 1], f"layer{i}.skip": True, f"layer{i}.reduce": True})
    net = space.build(space.complete(s), shape, 7)
    out = net(torch.randn(3, *shape))
    assert out.shape == (3, 7) and torch.isfinite(out).all()
    out.sum().backward()


def test_channels_follow_widths_and_pools_keep_them(space: MacroChainSpace) -> None:
    s = two_layers(**{"layer1.width": 64, "layer2.op": "max_pool3x3", "layer2.skip": True})
    net = space.build(s, (1, 8, 8), 10)
    assert net.head[0].in_features == 64  # hidden Linear sees the pool's unchanged 64 channels
    assert sum(p.numel() for p in net.layers[1].op.parameters()) == 0  # no projection inside the pool
    # The skip around a reducing pool needs a strided projection; without reduce it is the identity.
    assert isinstance(net.layers[1].shortcut[0], torch.nn.Conv2d)
    flat = space.build({**s, "layer2.reduce": False}, (1, 8, 8), 10)
    assert isinstance(flat.layers[1].shortcut, torch.nn.Identity)
    assert space.build(two_layers(**{"head.hidden": 0}), (1, 40), 3).head.in_features == 32


def test_build_rejects_bad_shapes(space: MacroChainSpace) -> None:
    with pytest.raises(ConfigError, match=r"`input_shape` must be \(C, L\) or \(C, H, W\).*\(64,\)"):
        space.build(two_layers(), (64,), 10)
    with pytest.raises(ConfigError, match="`num_classes` must be a positive integer, but got 0"):
        space.build(two_layers(), (1, 8, 8), 0)


# ---- declarations ------------------------------------------------------------------------------
def test_tiny_space_is_declared_in_yaml_only() -> None:
    tiny, default = load("macro_tiny"), load("macro_chain")
    assert tiny.name == "macro_tiny"
    assert set(tiny.ops) != set(default.ops) and tiny.widths != default.widths and tiny.max_depth != default.max_depth
    assert "head.dropout" not in tiny.dimensions()  # head_hidden is [0]
    samples = list(tiny.grid())
    assert len(samples) == len({tiny.key(s) for s in samples}) > 10
    assert tiny.build(samples[-1], (1, 8, 8), 10)(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_constructor_defaults_match_default_yaml() -> None:
    assert MacroChainSpace().dimensions() == load("macro_chain").dimensions()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ops": ["conv3x3", "conv7x7"]}, r"`ops`: Unknown op 'conv7x7'.*Valid names:.*sep_conv3x3"),
        ({"ops": []}, "`ops` must hold at least one value, but got an empty list"),
        ({"widths": []}, "`widths` must hold at least one value"),
        ({"widths": [-16, 32]}, r"`widths` must hold positive integers, but got \[-16, 32\]"),
        ({"widths": [16, 16]}, "`widths` must hold distinct values"),
        ({"depth": [0, 1]}, r"`depth` must hold integers >= 1, but got \[0, 1\]"),
        ({"depth": 0}, r"`depth` must hold integers >= 1, but got \[0\]"),
        ({"skip": ["yes"]}, "`skip` must hold booleans"),
        ({"stem_width": 0}, "`stem_width` must be a positive integer, but got 0"),
        ({"head_hidden": [-1]}, "`head_hidden` must hold integers >= 0"),
        ({"head_dropout": {"low": 0.5, "high": 0.2}}, r"`head_dropout` must satisfy .*, but got \(low=0.5, high=0.2\)"),
        ({"head_dropout": [0.0, 1.0]}, "`head_dropout` must satisfy `0.0 <= low <= high < 1.0`"),
        ({"head_pool": ["mean"]}, r"`head_pool`: Unknown pooling 'mean'.*Valid names: avg, max"),
    ],
)
def test_config_errors_name_the_key(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        MacroChainSpace(**kwargs)


def test_gapped_depths_become_categorical() -> None:
    space = MacroChainSpace(depth=[1, 3])
    assert space.dimensions()["depth"].grid() == [1, 3] and space.max_depth == 3
