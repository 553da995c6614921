"""Hill climbing by network morphisms with inherited weights, in the manner of NASH (Elsken et al. 2017)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nas.core import ConfigError, SearchSpace, Strategy, TrialRecord
from nas.core.space import Sample
from nas.core.records import Proposal


class MorphismHillClimbing(Strategy):
    """NASH: start from a small network, then in each round propose ``children`` morphed children of
    the best trial so far, each trained briefly from its parent's weights; the best of all is the
    next round's parent.

    Trial 0 is ``start`` (an architecture's text form or sample; default: every dimension at its
    default, the space's smallest network), trained from scratch. Round ``r`` is trials
    ``1 + r * children`` to ``(r + 1) * children``; its parent is the best completed trial among
    those before the round. A child is one of :meth:`SearchSpace.morphs` of the parent (a
    function-preserving morphism, so it starts at the parent's accuracy), drawn without
    replacement among the keys not tried yet; when every morph of the parent was tried, the child
    applies two morphs in a row (it then inherits by name and shape). Children are
    :class:`nas.Proposal` samples: the training estimator starts them from the parent's weights for
    ``estimator.inherited_epochs`` on a fresh cosine cycle, which is NASH's SGDR restart.

    State is the history: the same seed and history give the same next ask, also after a resume.
    """

    name = "nash"
    inherits_weights = True

    def __init__(self, space: SearchSpace, *, seed: int | None = None, start: str | Mapping[str, Any] | None = None,
                 children: int = 8, skip_duplicates: bool = True) -> None:
        super().__init__(space, seed=seed, skip_duplicates=skip_duplicates)
        if isinstance(children, bool) or not isinstance(children, int) or children < 1:
            raise ConfigError(f"strategy 'nash': `children >= 1` must hold (children per round), but got children={children!r}.")
        self.children = children
        if start is None:
            self.start = space.active(space.complete({}))
        elif isinstance(start, str):
            self.start = space.parse(start)
        elif isinstance(start, Mapping):
            self.start = space.validate(dict(start))
        else:
            raise ConfigError(f"strategy 'nash': `start` must be an architecture's text form, a sample mapping or null, but got {start!r}.")
        if not space.morphs(self.start):
            raise ConfigError(f"strategy 'nash': the space {space.name!r} offers no function-preserving morph of `start` "
                              f"{space.format(self.start)!r}; pick a start with room to grow, or a space that implements `morphs`.")

    def parent(self, history: Sequence[TrialRecord]) -> TrialRecord | None:
        """The parent of the round the next trial belongs to: the best completed trial before the round."""
        round_start = 1 + (len(history) - 1) // self.children * self.children
        return _best(history[:round_start])

    def ask(self, history: Sequence[TrialRecord]) -> Sample | Proposal:
        if not history:
            return dict(self.start)
        parent = self.parent(history)
        rng = self.rng(history)
        if parent is None:  # the start failed: climb from a random architecture instead
            return self.space.sample(rng)
        seen = self.seen_keys(history) if self.skip_duplicates else set()
        first = self.space.morphs(parent.arch.sample)
        fresh = [m.child for m in first if self.space.key(m.child) not in seen]
        if fresh:
            return Proposal(fresh[int(rng.integers(len(fresh)))], parent=parent.number)
        for _ in range(100 if first else 0):  # every single morph was tried: two in a row (none at all: a mutation)
            step = first[int(rng.integers(len(first)))].child
            second = self.space.morphs(step)
            if second:
                child = second[int(rng.integers(len(second)))].child
                if self.space.key(child) not in seen:
                    return Proposal(child, parent=parent.number)
        return Proposal(self.space.mutate(parent.arch.sample, rng), parent=parent.number)

    def alive(self, history: Sequence[TrialRecord]) -> set[int]:
        """The parent of the coming round and the best trial so far (the next round's parent)."""
        return {r.number for r in (self.parent(history), _best(history)) if r is not None}


def _best(history: Sequence[TrialRecord]) -> TrialRecord | None:
    """The best completed trial (the earliest among equals), or None."""
    done = [r for r in history if r.state == "complete" and r.value is not None]
    return max(done, key=lambda r: (r.value, -r.number)) if done else None  # type: ignore[arg-type, return-value]
