"""Exceptions raised by nas. Every message says what must hold and what was received."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NASError(Exception):
    """Base class of every error nas raises on purpose."""


class ConfigError(NASError, ValueError):
    """A space, strategy, estimator, dataset or storage declaration is malformed."""


class InvalidSampleError(NASError, ValueError):
    """A sample does not belong to its search space."""


class TrialFailed(NASError, RuntimeError):
    """A trial could not produce a result (NaN loss, out of memory, ...); the search goes on."""


class Infeasible(TrialFailed):
    """A candidate whose costs, measured before training, break a constraint; ``metrics`` holds what was measured.
    The search records it as failed, marked ``infeasible``, outside the trial budget."""

    def __init__(self, message: str, metrics: dict[str, object]) -> None:
        super().__init__(message)
        self.metrics = metrics


def unknown_name_message(kind: str, name: object, valid: Iterable[str]) -> str:
    """``"Unknown space 'macro'; did you mean 'macro_chain'? Valid names: ..."``."""
    valid = sorted(valid)
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"Unknown {kind} {name!r}.{hint} Valid names: {', '.join(valid) or '(none)'}."
