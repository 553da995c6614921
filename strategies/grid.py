"""Grid search: every combination of a finite space, each canonical key once."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np

from nas.core import ConfigError, SearchSpace, Strategy, TrialRecord
from nas.core.space import Sample


#: Largest grid that ``shuffle`` materialises.
MAX_SHUFFLED = 200_000


class GridSearch(Strategy):
    """Enumerates :meth:`SearchSpace.grid` (floats on their declared resolution), lazily.

    Architectures whose canonical key was already tried are skipped, so a cell space is walked once
    per isomorphism class. ``shuffle`` visits the grid in a seeded random order (it materialises the
    grid when built, so it refuses spaces of more than 200,000 points); ``shuffle="auto"`` (the config's
    default) shuffles a grid of at most that many points and walks a larger one in order. The grid's own
    order starts with the degenerate corner of a space (every cell edge ``none``: no path from input to
    output), so an unshuffled grid spends a small budget on networks that cannot learn. When nothing is
    left, :meth:`is_exhausted` turns true and the search stops with a message.
    """

    name = "grid"
    multi_objective = True  # it never ranks trials: any objectives alike

    def __init__(self, space: SearchSpace, *, seed: int | None = None, shuffle: bool | str = False, skip_duplicates: bool = True) -> None:
        super().__init__(space, seed=seed, skip_duplicates=skip_duplicates)
        if shuffle == "auto":
            size = sum(1 for _ in itertools.islice(space.grid(), MAX_SHUFFLED + 1))
            shuffle = size <= MAX_SHUFFLED
            self.notes.append(f"shuffle=auto -> true ({size:,} points, visited in a seeded random order)" if shuffle else
                              f"shuffle=auto -> false (more than {MAX_SHUFFLED:,} points: the grid is walked in its own order)")
        elif not isinstance(shuffle, bool):
            raise ConfigError(f"strategy 'grid': `shuffle` must be true, false or 'auto', but got {shuffle!r}.")
        self.shuffle = shuffle
        self._order: list[Sample] | None = None
        if shuffle:
            self._points()  # a grid too large to shuffle fails here, before any trial

    def _points(self) -> Iterator[Sample]:
        if not self.shuffle:
            return self.space.grid()
        if self._order is None:
            points = list(itertools.islice(self.space.grid(), MAX_SHUFFLED + 1))
            if len(points) > MAX_SHUFFLED:
                raise ConfigError(f"strategy 'grid': `shuffle: true` holds the whole grid in memory, which must have at most "
                                  f"{MAX_SHUFFLED:,} points, but space '{self.space.name}' has more. Use shuffle=false or strategy=random.")
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
