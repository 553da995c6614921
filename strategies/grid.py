"""Grid search: every combination of a finite space, each canonical key once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from nas import SearchSpace, Strategy, TrialRecord
from nas._space import Sample


class GridSearch(Strategy):
    """Enumerates :meth:`SearchSpace.grid` (floats on their declared resolution), lazily.

    Architectures whose canonical key was already tried are skipped, so a cell space is walked once
    per isomorphism class. ``shuffle`` visits the grid in a seeded random order (it materialises the
    grid, so keep it for spaces of at most a few hundred thousand points). When nothing is left,
    :meth:`is_exhausted` turns true and the search stops with a message.
    """

    name = "grid"

    def __init__(self, space: SearchSpace, *, seed: int | None = None, shuffle: bool = False, skip_duplicates: bool = True) -> None:
        super().__init__(space, seed=seed, skip_duplicates=skip_duplicates)
        self.shuffle = shuffle
        self._order: list[Sample] | None = None

    def _points(self) -> Iterator[Sample]:
        if not self.shuffle:
            return self.space.grid()
        if self._order is None:
            points = list(self.space.grid())
            perm = np.random.default_rng(self.seed).permutation(len(points))
            self._order = [points[i] for i in perm]
        return iter(self._order)

    def _next(self, history: Sequence[TrialRecord]) -> Sample | None:
        seen = self.seen_keys(history)
        tried = {tuple(sorted(r.arch.sample.items(), key=str)) for r in history}
        for point in self._points():
            if self.skip_duplicates:
                if self.space.key(point) not in seen:
                    return point
            elif tuple(sorted(point.items(), key=str)) not in tried:
                return point
        return None

    def ask(self, history: Sequence[TrialRecord]) -> Sample:
        point = self._next(history)
        if point is None:
            raise RuntimeError("GridSearch.ask() was called on an exhausted grid; check is_exhausted() first.")
        return point

    def is_exhausted(self, history: Sequence[TrialRecord]) -> bool:
        return self._next(history) is None
