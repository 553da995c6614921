"""The strategy contract. Strategies see a space's dimensions and flat samples, never modules."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from nas.core.errors import ConfigError
from nas.core.objectives import Objective
from nas.core.space import SearchSpace
from nas.core.records import Asked, Child, Proposal, TrialRecord

__all__ = ["Child", "Proposal", "Strategy", "auto_population", "auto_startup", "auto_tournament", "resolve_auto"]


def auto_population(trials: int | None) -> int:
    """Regularized evolution's population for a budget of ``trials``: a fifth of it, between 4 and
    the usual 20 (with 10 trials a population of 20 would leave evolution random throughout)."""
    return 20 if trials is None else min(20, max(4, trials // 5))


def auto_tournament(population: int) -> int:
    """A quarter of the population, at least 2: the ratio of Real et al. (2019), 25 of 100 (and 5 of 20)."""
    return max(2, population // 4)


def auto_startup(trials: int | None) -> int:
    """Random trials before a model-based strategy uses its model: a tenth of the budget, between 2
    and Optuna's usual 10 (with 10 trials, 10 start-up trials would be random search throughout)."""
    return 10 if trials is None else min(10, max(2, trials // 10))


def resolve_auto(name: str, value: int | str, auto: int, *, strategy: str) -> int:
    """``value``, or ``auto`` when it is ``"auto"``; anything else is refused with the key named."""
    if value == "auto":
        return auto
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"strategy '{strategy}': `{name}` must be an integer or 'auto', but got {value!r}.")
    return value


class Strategy(ABC):
    """Proposes architectures. State is derived from the history, so resume and many workers come free.

    When each hook is called (by :func:`nas.search`, the ask/tell :class:`nas.Searcher`, or the
    Optuna adapter :class:`nas.StrategySampler`):

    - :meth:`is_exhausted` before every new trial; ``True`` ends the search cleanly with a message.
    - :meth:`ask` once per new trial. ``history`` holds every trial of the study so far, oldest first,
      including running ones and those of other workers. It returns a :class:`Proposal` (or the bare
      sample, a mapping): a valid active sample, and the parent it was bred from, if any.
    - :meth:`tell` once when a trial asked by this process has finished (complete, pruned or failed).
      Most strategies need not override it: the next ``ask`` sees the record in its history.
    - :meth:`alive` after every finished trial when trained weights are kept: the trials whose
      weights a later ``ask`` may still inherit (e.g. evolution's population); the weight store keeps them.

    A strategy that breeds from trained parents returns ``Proposal(sample, parent=n)`` from ``ask`` and
    sets ``inherits_weights = True``, so the search keeps completed trials' weights.

    Reproducibility: :meth:`rng` gives a generator seeded by ``(seed, len(history))``, so the same seed
    and history give the same next ask, also in a fresh process that resumes the study.
    """

    name: str = "strategy"
    #: Whether the strategy can search several objectives at once (:attr:`objectives`): it ranks trials by
    #: their Pareto front (NSGA-II, our evolution and BO in their multi-objective modes), or never ranks
    #: them at all (random, grid). A strategy that ranks by the one score leaves it ``False``, and a search
    #: with two objectives or more refuses it before anything runs.
    multi_objective: bool = False
    #: Whether ``ask`` proposes children (``Proposal.parent``) meant to start from their parent's weights.
    inherits_weights: bool = False

    def __init__(self, space: SearchSpace, *, seed: int | None = None, skip_duplicates: bool = False) -> None:
        self.notes: list[str] = []  # how settings were chosen for the budget (see budget_notes)
        self.space = space
        self.seed = int(seed) if seed is not None else int(np.random.SeedSequence().generate_state(2, np.uint64)[0] % (2**63))
        self.skip_duplicates = skip_duplicates
        #: What the search optimises (:class:`nas.core.objectives.Objective`, set by the search before the first
        #: ask); empty: the estimator's score alone, maximised (each record's ``value``).
        self.objectives: tuple[Objective, ...] = ()

    @abstractmethod
    def ask(self, history: Sequence[TrialRecord]) -> Asked:
        """Return the next sample to evaluate (a :class:`Proposal`, or the sample itself)."""

    def tell(self, record: TrialRecord) -> None:
        """Called when a trial this process asked for has finished. Default: nothing to do."""

    def is_exhausted(self, history: Sequence[TrialRecord]) -> bool:
        """Whether no new candidate can be proposed. Default: never."""
        return False

    def random_warmup(self) -> tuple[str, int] | None:
        """The setting that makes the first trials random samples, and how many (``("population_size",
        20)``), for a strategy that has one; ``None`` (the default) for the others."""
        return None

    def budget_notes(self, trials: int | None) -> list[str]:
        """Lines the search prints at its start about this strategy and the budget: settings chosen
        for it (``auto``, :attr:`notes`), and a WARNING when the random warm-up
        (:meth:`random_warmup`) takes the whole budget, so the strategy never acts as itself."""
        notes = list(self.notes)
        warmup = self.random_warmup()
        if trials is not None and warmup is not None and trials <= warmup[1]:
            name, count = warmup
            notes.append(f"WARNING {name}={count} >= budget.trials={trials}: every trial is a random sample; "
                         f"lower strategy.{name} or raise budget.trials.")
        return notes

    def alive(self, history: Sequence[TrialRecord]) -> set[int]:
        """Numbers of trials whose weights a later ask may still inherit. Default: none."""
        return set()

    def rng(self, history: Sequence[TrialRecord], *salt: int) -> np.random.Generator:
        """A generator determined by the seed and the history length (and ``salt``)."""
        return np.random.default_rng([self.seed, len(history), *salt])

    @staticmethod
    def seen_keys(history: Sequence[TrialRecord]) -> set[str]:
        """Canonical keys already evaluated or running."""
        return {r.arch.key for r in history if r.arch.key}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space.name!r}, seed={self.seed})"
