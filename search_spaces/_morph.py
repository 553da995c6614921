"""Shared steps of the families' morphisms: start a child from the parent's matching tensors, then
overwrite the tensors a morphism changes (:mod:`nas.inheritance.morphisms` computes them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from nas.inheritance.morphisms import inherit_matching

#: Relative spread of Net2Wider's symmetry-breaking split of outgoing weights (the function is unchanged).
WIDEN_NOISE = 0.1


def transplant(model: nn.Module, parent_state: Mapping[str, Any], rename: Callable[[str], str | None] | None = None) -> set[str]:
    """Copy every parent tensor into ``model`` under ``rename(name)`` (``None`` drops it) where the shapes
    match; returns the child names filled."""
    if rename is not None:
        parent_state = {new: v for k, v in parent_state.items() if (new := rename(k)) is not None}
    return set(inherit_matching(model, parent_state).copied)


def put(model: nn.Module, tensors: Mapping[str, torch.Tensor]) -> set[str]:
    """Overwrite ``model``'s tensors by name (shapes must match); returns the names written."""
    own = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for name, value in tensors.items():
            if own[name].shape != value.shape:
                raise ValueError(f"morph: {name} needs shape {tuple(own[name].shape)}, but got {tuple(value.shape)}")
            own[name].copy_(value)
    return set(tensors)



def shift_from(at: int, *, by: int = 1, prefix: str = "") -> Callable[[str], str]:
    """State-dict rename for modules inserted at index ``at`` of a sequence named ``prefix``:
    ``{prefix}{k}.`` -> ``{prefix}{k + by}.`` for ``k >= at``; other names are kept."""

    def rename(name: str) -> str:
        if not name.startswith(prefix):
            return name
        index, _, rest = name[len(prefix):].partition(".")
        return f"{prefix}{int(index) + by}.{rest}" if index.isdigit() and int(index) >= at else name

    return rename
