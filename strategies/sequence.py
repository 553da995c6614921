"""Replay a fixed list of architectures: evaluate given candidates through the full machinery."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nas.core import SearchSpace, Strategy, TrialRecord
from nas.core.space import Sample


class SequenceStrategy(Strategy):
    """Proposes ``samples`` in order (dicts or the space's text form), then is exhausted.

    Useful to re-evaluate known architectures, to seed a study, and to benchmark the framework's
    overhead against a hand-written loop on the very same candidates.
    """

    name = "sequence"
    multi_objective = True  # it never ranks trials: any objectives alike

    def __init__(self, space: SearchSpace, *, samples: Sequence[Mapping[str, Any] | str], seed: int | None = None) -> None:
        super().__init__(space, seed=seed)
        self.samples = [space.parse(s) if isinstance(s, str) else space.validate(s) for s in samples]

    def ask(self, history: Sequence[TrialRecord]) -> Sample:
        return dict(self.samples[len(history)])

    def is_exhausted(self, history: Sequence[TrialRecord]) -> bool:
        return len(history) >= len(self.samples)
