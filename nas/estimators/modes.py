"""Train/eval flags of every submodule, given back after a measurement that changes them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def restoring_modes(*models: nn.Module) -> Iterator[None]:
    """Give every submodule of ``models`` its own training flag back on exit, even on error (a model
    may be in mixed mode, e.g. frozen batch norms in a training model)."""
    modes = [(m, m.training) for model in models for m in model.modules()]
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
