"""Local search: best-improvement hill climbing over the space's neighbours, restarting at local optima."""

from __future__ import annotations

from collections.abc import Sequence

from nas.core import ConfigError, SearchSpace, Strategy, TrialRecord
from nas.core.space import Sample


class LocalSearch(Strategy):
    """Best-improvement hill climbing (White et al. 2021 found it a strong NAS baseline).

    Start from a random architecture; evaluate all of its :meth:`SearchSpace.neighbors` (one active
    dimension changed) not evaluated yet; move to the best neighbour if it beats the current one,
    otherwise the current one is a local optimum and the walk restarts from a new random
    architecture. Neighbours sharing a canonical key count as one evaluation.

    The walk is replayed from the history on every ask (a pure function of the seed and the scores
    so far), so it resumes exactly and many workers can share it: neighbours still running in
    another worker are skipped for the moment. ``max_restarts`` bounds the walk on small spaces;
    after it, or once every architecture was tried, the strategy is exhausted.
    """

    name = "local"

    def __init__(self, space: SearchSpace, *, seed: int | None = None, max_restarts: int = 1000, skip_duplicates: bool = True) -> None:
        super().__init__(space, seed=seed, skip_duplicates=skip_duplicates)
        if max_restarts < 1:
            raise ConfigError(f"strategy 'local': `max_restarts >= 1` must hold, but got {max_restarts}.")
        self.max_restarts = int(max_restarts)
        self._memo: tuple[tuple, Sample | None] | None = None

    def _start(self, restart: int) -> Sample:
        return self.space.sample(self.rng([], 1, restart))  # fixed by (seed, restart), not by the history

    def _next(self, history: Sequence[TrialRecord]) -> Sample | None:
        scores = {r.arch.key: (r.value if r.value is not None else float("-inf")) for r in history if r.finished}
        running = {r.arch.key for r in history if not r.finished}
        for restart in range(self.max_restarts):
            current = self._start(restart)
            while True:
                key = self.space.key(current)
                if key not in scores:
                    if key in running:
                        break  # another worker is evaluating this start; take the next restart for now
                    return current
                neighbours = self.space.neighbors(current, self.rng([], 2, restart))
                for neighbour in neighbours:
                    k = self.space.key(neighbour)
                    if k not in scores and k not in running:
                        return neighbour
                known = [n for n in neighbours if self.space.key(n) in scores]
                best = max(known, key=lambda n: scores[self.space.key(n)], default=None)
                if best is None or scores[self.space.key(best)] <= scores[key]:
                    break  # a local optimum (or every neighbour is still running): restart
                current = best
        return None

    def _memoized_next(self, history: Sequence[TrialRecord]) -> Sample | None:
        fingerprint = tuple((r.number, r.state, r.value) for r in history)
        if self._memo is None or self._memo[0] != fingerprint:
            self._memo = (fingerprint, self._next(history))
        return self._memo[1]

    def ask(self, history: Sequence[TrialRecord]) -> Sample:
        nxt = self._memoized_next(history)
        if nxt is None:
            raise RuntimeError("LocalSearch.ask() was called when exhausted; check is_exhausted() first.")
        return nxt

    def is_exhausted(self, history: Sequence[TrialRecord]) -> bool:
        return self._memoized_next(history) is None
