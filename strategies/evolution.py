"""Regularized (aging) evolution, Real et al. 2019: tournament selection, one-dimension mutation, oldest dies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas.core import ConfigError, SearchSpace, Strategy, TrialRecord
from nas.core.strategy import auto_population, auto_tournament, resolve_auto
from nas.core.space import Sample
from nas.core.fronts import crowded_standing, front_of, objective_values
from nas.core.records import Proposal


class RegularizedEvolution(Strategy):
    """Aging evolution whose whole state is the study's history.

    The first ``population_size`` trials are random samples. After that the population is the
    ``population_size`` most recent completed trials (older ones have aged out); each ask runs a
    tournament of ``tournament_size`` members drawn at random from it and mutates the winner with
    :meth:`SearchSpace.mutate` (one active dimension changes; conditional dimensions are completed
    or dropped). With probability ``crossover`` the child first takes each active dimension from
    one of two tournament winners. Because everything is read from the history, many workers share
    one population and a resumed search asks exactly what an uninterrupted one would.

    ``inherit_weights`` makes every child a :class:`nas.Proposal` of its tournament winner: the training
    estimator starts it from the winner's trained weights (a function-preserving morphism when the
    mutation is one, else every tensor whose name and shape match, as in Real et al. 2017), and the
    population's weights are kept until it ages out. ``morph_mutation`` is the probability that the
    mutation is one of the winner's function-preserving morphisms (:meth:`SearchSpace.morphs`: widen,
    deepen, a wider kernel, a zero-start skip...) rather than a one-dimension change; such a child
    starts at its parent's accuracy, so a short training from the parent's weights is enough (as in
    LEMONADE's morphism mutations, Elsken et al. 2019). A winner without morphs is mutated as usual,
    and so is one whose morphs were all tried already.

    ``skip_duplicates`` redraws (up to ``max_redraws`` times) children whose canonical key was
    already tried, so the evaluation budget is spent on new architectures.

    With several :attr:`objectives` (``objectives={"val_accuracy": "max", "params": "min"}``) the
    population is the most recent ``population_size`` completed trials that have every objective plus the
    Pareto front of all trials so far (an elitist archive, as NSGA-II keeps its best: aging alone let front
    members die before their neighbourhood was searched), and a tournament is won by NSGA-II's crowded
    comparison within it: the lowest non-dominated rank, then the largest crowding distance (the extremes
    of each front first).
    """

    name = "evolution"
    multi_objective = True  # the crowded comparison within the aging population (see above)

    def __init__(self, space: SearchSpace, *, seed: int | None = None, population_size: int | str = "auto",
                 tournament_size: int | str = "auto", crossover: float = 0.0, skip_duplicates: bool = True, max_redraws: int = 100,
                 inherit_weights: bool = False, morph_mutation: float = 0.0, budget: int | None = None) -> None:
        super().__init__(space, seed=seed, skip_duplicates=skip_duplicates)
        auto = [name for name, value in (("population_size", population_size), ("tournament_size", tournament_size)) if value == "auto"]
        population_size = resolve_auto("population_size", population_size, auto_population(budget), strategy="evolution")
        tournament_size = resolve_auto("tournament_size", tournament_size, auto_tournament(population_size), strategy="evolution")
        if auto and budget is not None:
            chosen = {"population_size": population_size, "tournament_size": tournament_size}
            self.notes.append(", ".join(f"{n}=auto -> {chosen[n]}" for n in auto) + f" for {budget} trials")
        checks = [
            (population_size >= 2, f"`population_size >= 2` must hold, but got {population_size}."),
            (1 <= tournament_size <= population_size,
             f"`1 <= tournament_size <= population_size` must hold, but got tournament_size={tournament_size}, population_size={population_size}."),
            (0.0 <= crossover <= 1.0, f"`0 <= crossover <= 1` must hold, but got {crossover}."),
            (max_redraws >= 0, f"`max_redraws >= 0` must hold, but got {max_redraws}."),
            (isinstance(inherit_weights, bool), f"`inherit_weights` must be true or false, but got {inherit_weights!r}."),
            (0.0 <= morph_mutation <= 1.0, f"`0 <= morph_mutation <= 1` must hold (the probability of a morphism), but got {morph_mutation}."),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"strategy 'evolution': {message}")
        self.population_size, self.tournament_size = int(population_size), int(tournament_size)
        self.crossover, self.max_redraws = float(crossover), int(max_redraws)
        self.inherits_weights = inherit_weights
        self.morph_mutation = float(morph_mutation)
        self._standing: dict[int, tuple[int, float]] = {}  # trial number -> (rank, -crowding) in this ask's population

    def random_warmup(self) -> tuple[str, int]:
        return "population_size", self.population_size  # tournaments start once a population has completed

    def population(self, history: Sequence[TrialRecord]) -> list[TrialRecord]:
        """The living population: the most recent ``population_size`` completed trials (with every objective)."""
        if len(self.objectives) > 1:  # the aging population, and the front so far (an elitist archive)
            recent = [r for r in history if objective_values(r, self.objectives) is not None][-self.population_size:]
            numbers = {r.number for r in recent}
            return recent + [r for r in front_of(history, self.objectives) if r.number not in numbers]
        return [r for r in history if r.state == "complete" and r.value is not None][-self.population_size:]

    def alive(self, history: Sequence[TrialRecord]) -> set[int]:
        """The population: any member may still win a tournament and pass its weights on."""
        return {r.number for r in self.population(history)} if self.inherits_weights else set()

    def ask(self, history: Sequence[TrialRecord]) -> Sample | Proposal:
        rng = self.rng(history)
        population = self.population(history)
        self._standing = crowded_standing(population, self.objectives) if len(self.objectives) > 1 else {}
        seen = self.seen_keys(history) if self.skip_duplicates else set()
        breeding = len(history) >= self.population_size and bool(population)
        candidate: Sample = {}
        parent: int | None = None
        # a child (up to max_redraws + 1 tries while its key was seen), then random samples likewise
        for attempt in range(2 * self.max_redraws + 1):
            if breeding and attempt <= self.max_redraws:
                candidate, parent = self._child(population, rng, seen)
            else:
                candidate, parent = self.space.sample(rng), None
            if self.space.key(candidate) not in seen:
                break
        return Proposal(candidate, parent=parent) if self.inherits_weights and parent is not None else candidate

    def _tournament(self, population: list[TrialRecord], rng: np.random.Generator) -> TrialRecord:
        size = min(self.tournament_size, len(population))
        contenders = rng.choice(len(population), size=size, replace=False)
        if self._standing:  # several objectives: the crowded comparison (lower rank, then less crowded)
            return min((population[i] for i in sorted(contenders)), key=lambda r: self._standing[r.number])
        return max((population[i] for i in sorted(contenders)), key=lambda r: r.value)  # type: ignore[arg-type, return-value]

    def _child(self, population: list[TrialRecord], rng: np.random.Generator, seen: set[str]) -> tuple[Sample, int]:
        """A child of a tournament winner, and the winner's number."""
        winner = self._tournament(population, rng)
        parent = self.space.active(winner.arch.sample)
        crossed = self.crossover > 0 and rng.random() < self.crossover
        if crossed:
            other = self.space.active(self._tournament(population, rng).arch.sample)
            mixed = {name: (other if name in other and rng.random() < 0.5 else parent).get(name, value) for name, value in parent.items()}
            mixed = self.space.complete(mixed, rng)
            if not self.space.constrained or self.space.is_valid(mixed):  # a constrained space's mix may break its rule: then the winner is mutated
                parent = mixed
        # a morph of a crossover mix is no morph of the winner it inherits from: those children are mutated
        morphs = self.space.morphs(parent) if self.morph_mutation > 0 and not crossed and rng.random() < self.morph_mutation else []
        morphs = [m for m in morphs if self.space.key(m.child) not in seen]  # every morph tried: a plain mutation, not a redraw
        child = morphs[int(rng.integers(len(morphs)))].child if morphs else self.space.mutate(parent, rng)
        return child, winner.number
