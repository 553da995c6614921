"""Morphisms of the macro chain space: every listed child computes its parent's function once it inherits
(eval mode, trained-looking batch norms), on images and signals, full and reduced width; morphs that would
not preserve are not listed."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import nas
from nas import Morph
from nas.inheritance.morphisms import preservation_error
from nas.testing import settle_batch_norm
from search_spaces.macro_chain import MacroChainSpace

TOL = 1e-5
SHAPES = [(1, 8, 8), (1, 40)]
CLASSES = 3
ALL_OPS = ("conv1x1", "conv3x3", "conv5x5", "sep_conv3x3", "sep_conv5x5", "dil_conv3x3", "max_pool3x3", "avg_pool3x3", "identity")
KINDS = {"widen", "deepen", "widen_kernel", "add_skip"}


def make_space(**over: Any) -> MacroChainSpace:
    """Tiny widths (stem 8 is one of them, so deepen can follow the stem); depth 5 so depth-4 parents deepen."""
    kw: dict[str, Any] = {"depth": (1, 2, 3, 4, 5), "ops": ALL_OPS, "widths": (4, 8, 12), "stem_width": 8, "head_hidden": (0, 6)}
    return MacroChainSpace(**{**kw, **over})


SPACE = make_space()


def arch(*layers: tuple[str, int, bool, bool], pool: str = "avg", hidden: int = 0) -> dict[str, Any]:
    """A sample from ``(op, width, skip, reduce)`` layers (the width is ignored for pools and identity)."""
    s: dict[str, Any] = {"depth": len(layers), "head.pool": pool, "head.hidden": hidden, "head.dropout": 0.2}
    for i, (op, width, skip, reduce) in enumerate(layers, start=1):
        s.update({f"layer{i}.op": op, f"layer{i}.width": width, f"layer{i}.skip": skip, f"layer{i}.reduce": reduce})
    return SPACE.validate(s)


# Hand-picked parents; the comments say what each one covers.
HAND_PICKED = [
    # identity shortcuts on the widened layer and on its sep-conv reader; the last layer feeds a plain head
    arch(("conv3x3", 8, True, False), ("sep_conv3x3", 8, True, False)),
    # projection shortcuts (reduce, and 4 -> 12), a max-pooled head with a hidden layer, dilated conv last
    arch(("conv5x5", 4, True, True), ("conv1x1", 12, True, False), ("dil_conv3x3", 8, False, False), pool="max", hidden=6),
    # pools and identity keep the sign: deepen after them; reduce layers with and without a skip
    arch(("max_pool3x3", 4, False, True), ("conv3x3", 4, False, False), ("avg_pool3x3", 4, False, False),
         ("identity", 4, True, False), pool="max"),
    # sep conv widened into a conv reader with a reducing projection skip; sep 3x3 -> 5x5
    arch(("sep_conv3x3", 4, False, False), ("conv3x3", 8, True, True), ("sep_conv5x5", 12, False, True), hidden=6),
    # one layer: widen into a hidden head, add a skip, deepen before and after
    arch(("conv3x3", 4, False, False), pool="max", hidden=6),
]


def parents() -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    return [SPACE.sample(rng) for _ in range(30)] + HAND_PICKED


def trained_like(space: MacroChainSpace, sample: dict[str, Any], shape: tuple[int, ...], seed: int) -> nn.Module:
    """A parent whose batch norms have non-trivial running statistics and affine parameters."""
    torch.manual_seed(seed)
    return settle_batch_norm(space.build(sample, shape, CLASSES), shape, seed=seed)


def inherited_share(child: nn.Module, parent_state: dict[str, torch.Tensor]) -> float:
    """Share of the child's parameter elements whose names exist in the parent."""
    sizes = {name: p.numel() for name, p in child.named_parameters()}
    return sum(n for name, n in sizes.items() if name in parent_state) / sum(sizes.values())


# ---- preservation ------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [1.0, 0.5])
@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "1d"])
def test_every_listed_morph_preserves_the_parent_function(shape: tuple[int, ...], width: float) -> None:
    space = SPACE.reduced(width=width)
    kinds: Counter[str] = Counter()
    fractions: dict[str, list[float]] = {k: [] for k in KINDS}
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(7))
    for seed, parent in enumerate(parents()):
        net = trained_like(space, parent, shape, seed)
        state = net.state_dict()
        morphs = space.morphs(parent)
        assert len({space.format(m.child) for m in morphs}) == len(morphs)  # each child listed once
        for morph in morphs:
            assert morph.child == space.validate(morph.child)
            got = space.inherit(parent, state, morph.child, shape, CLASSES, generator=torch.Generator().manual_seed(seed))
            assert got.morph == morph
            error = preservation_error(net, got.model, x)
            assert error <= TOL, f"{morph} of {space.format(parent)}: error {error:.2e}"
            kinds[morph.kind] += 1
            fractions[morph.kind].append(got.fraction)
            if morph.kind in ("widen", "widen_kernel"):
                # every tensor comes from the parent, except a projection that replaced an identity shortcut
                assert got.fraction == pytest.approx(inherited_share(got.model, state), abs=1e-12)
    assert set(kinds) == KINDS, kinds
    assert all(f == 1.0 for f in fractions["widen_kernel"])
    assert 1.0 in fractions["widen"]  # the usual case: nothing new
    assert all(0 < f < 1 for f in fractions["deepen"] + fractions["add_skip"])


def test_widen_fraction_is_one_unless_an_identity_shortcut_becomes_a_projection() -> None:
    parent = HAND_PICKED[1]
    state = trained_like(SPACE, parent, (1, 8, 8), 0).state_dict()
    got = SPACE.inherit(parent, state, {**parent, "layer3.width": 12}, (1, 8, 8), CLASSES)
    assert got.morph is not None and got.morph.kind == "widen" and got.fraction == 1.0
    parent = HAND_PICKED[0]
    state = trained_like(SPACE, parent, (1, 8, 8), 0).state_dict()
    got = SPACE.inherit(parent, state, {**parent, "layer1.width": 12}, (1, 8, 8), CLASSES)
    new = sum(p.numel() for name, p in got.model.named_parameters() if "shortcut" in name)  # both shortcuts are new projections
    assert got.morph is not None and got.morph.kind == "widen" and new > 0
    assert got.fraction == pytest.approx(1 - new / sum(p.numel() for p in got.model.parameters()))


def test_hand_picked_parents_list_the_expected_morphs() -> None:
    listed = [{str(m) for m in SPACE.morphs(p)} for p in HAND_PICKED]
    assert "add_skip layer2" not in listed[0]  # its shortcut would be the identity, which adds x
    assert {"widen layer1", "widen layer2", "deepen layer1", "deepen layer2", "deepen layer3"} <= listed[0]
    assert {"widen layer1", "widen layer3", "deepen layer1", "deepen layer4"} <= listed[1]
    assert {"add_skip layer1", "deepen layer1", "deepen layer2", "deepen layer3", "deepen layer4", "deepen layer5"} <= listed[2]
    assert {"widen layer1", "widen layer2", "widen_kernel layer1", "add_skip layer1", "deepen layer2"} <= listed[3]
    assert {"widen layer1", "add_skip layer1", "deepen layer1", "deepen layer2"} <= listed[4]


def test_the_default_declared_space_preserves_too() -> None:
    space = nas.get_space("macro_chain")
    rng = np.random.default_rng(1)
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    seen = 0
    for seed in range(4):
        parent = space.sample(rng)
        net = trained_like(space, parent, (1, 8, 8), seed)
        for morph in space.morphs(parent):
            got = space.inherit(parent, net.state_dict(), morph.child, (1, 8, 8), CLASSES, generator=torch.Generator().manual_seed(0))
            assert got.morph == morph and preservation_error(net, got.model, x) <= TOL
            seen += 1
    assert seen > 0


# ---- what is not listed ------------------------------------------------------------------------
def test_no_deepen_after_a_projection_skip_and_why() -> None:
    parent = HAND_PICKED[1]  # layers 1 and 2 end with a projection skip: their outputs can be negative
    listed = {str(m) for m in SPACE.morphs(parent)}
    assert "deepen layer2" not in listed and "deepen layer3" not in listed
    # Applied anyway, the identity conv's ReLU drops the negative part, so the function changes.
    layers = [(parent[f"layer{i}.op"], parent[f"layer{i}.width"], parent[f"layer{i}.skip"], parent[f"layer{i}.reduce"]) for i in (1, 2, 3)]
    child = arch(*layers[:2], ("conv3x3", 12, False, False), layers[2], pool="max", hidden=6)
    net = trained_like(SPACE, parent, (1, 8, 8), 0)
    model = SPACE.build(child, (1, 8, 8), CLASSES)
    SPACE._apply_morph(Morph(child, "deepen", "layer3"), parent, net.state_dict(), model, None)
    assert preservation_error(net, model, torch.randn(5, 1, 8, 8)) > 1e-3


def test_no_widen_before_a_pool_or_identity() -> None:
    parent = HAND_PICKED[2]  # conv3x3 (layer2) is read by avg_pool3x3, which would carry the wider tensor on
    assert not [m for m in SPACE.morphs(parent) if m.kind == "widen"]
    parent = arch(("conv3x3", 8, False, False), ("identity", 8, False, False), ("conv1x1", 4, False, False))
    assert {m.where for m in SPACE.morphs(parent) if m.kind == "widen"} == {"layer3"}


def test_no_widen_that_turns_a_projection_shortcut_into_an_identity() -> None:
    # Layer 2 (4 -> 12, skip) has a projection; widening layer 1 to 12 would make it an identity shortcut.
    widths = {m.child["layer1.width"] for m in SPACE.morphs(HAND_PICKED[1]) if str(m) == "widen layer1"}
    assert widths == {8}
    # Same for the widened layer's own projection: 12 -> 4 with a skip widens to 8, not to 12.
    parent = arch(("conv3x3", 12, False, False), ("conv3x3", 4, True, False))
    assert {m.child["layer2.width"] for m in SPACE.morphs(parent) if str(m) == "widen layer2"} == {8}


def test_no_add_skip_where_the_shortcut_would_be_the_identity() -> None:
    same = arch(("conv3x3", 8, False, False), ("max_pool3x3", 8, False, False))
    assert not [m for m in SPACE.morphs(same) if m.kind == "add_skip"]
    other = arch(("conv3x3", 12, False, False), ("max_pool3x3", 8, False, True))
    assert {m.where for m in SPACE.morphs(other) if m.kind == "add_skip"} == {"layer1", "layer2"}


def test_declared_choices_bound_the_morphs() -> None:
    parent = arch(("conv3x3", 8, False, False), ("sep_conv3x3", 8, False, False))
    assert not [m for m in make_space(ops=("conv3x3", "sep_conv3x3")).morphs(parent) if m.kind == "widen_kernel"]
    assert not [m for m in make_space(depth=(1, 2)).morphs(parent) if m.kind == "deepen"]
    assert not [m for m in make_space(skip=(False,)).morphs(arch(("conv3x3", 12, False, False))) if m.kind == "add_skip"]
    fallback = make_space(ops=("conv1x1", "sep_conv3x3")).morphs(arch(("conv1x1", 8, False, False)))
    assert {m.child["layer1.op"] for m in fallback if m.kind == "deepen"} == {"conv1x1"}


def test_a_child_that_is_not_a_morph_inherits_by_name() -> None:
    parent = arch(("conv3x3", 12, False, False), ("conv3x3", 8, False, False))
    child = {**parent, "layer1.op": "max_pool3x3"}  # layer 2 then reads 8 channels, not 12: its conv starts fresh
    assert child not in [m.child for m in SPACE.morphs(parent)]
    state = trained_like(SPACE, parent, (1, 8, 8), 0).state_dict()
    got = SPACE.inherit(parent, state, child, (1, 8, 8), CLASSES)
    assert got.morph is None and 0 < got.fraction < 1
