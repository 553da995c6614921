"""Random search: uniform over the active dimensions, optionally never repeating a canonical key."""

from __future__ import annotations

from collections.abc import Sequence

from nas.core import SearchSpace, Strategy, TrialRecord
from nas.core.space import Sample


class RandomSearch(Strategy):
    """Uniform random sampling; a strong baseline that every other strategy must beat.

    With ``skip_duplicates`` it redraws (up to ``max_redraws`` times) until the canonical key is new,
    so equivalent architectures (isomorphic cells, inactive-layer differences) are evaluated once.
    """

    name = "random"
    multi_objective = True  # it never ranks trials: any objectives alike

    def __init__(self, space: SearchSpace, *, seed: int | None = None, skip_duplicates: bool = False, max_redraws: int = 1000) -> None:
        super().__init__(space, seed=seed, skip_duplicates=skip_duplicates)
        self.max_redraws = max_redraws

    def ask(self, history: Sequence[TrialRecord]) -> Sample:
        rng = self.rng(history)
        sample = self.space.sample(rng)
        if self.skip_duplicates:
            seen = self.seen_keys(history)
            for _ in range(self.max_redraws):
                if self.space.key(sample) not in seen:
                    break
                sample = self.space.sample(rng)
        return sample
