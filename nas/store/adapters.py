"""Two adapters: our strategies as Optuna samplers, and Optuna samplers as our strategies."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from nas.core.fronts import objective_values
from nas.core.objectives import VIOLATION
from nas.core.space import Sample, SearchSpace
from nas.core.strategy import Strategy
from nas.core.records import TrialRecord, as_proposal
from nas.core.records import TrialState as State
from nas.store.optuna_store import discard_last_trial, distribution, genetic_generation, record_from_trial

#: Optuna's samplers that search several objectives at once (the others take one value).
MULTI_OBJECTIVE_SAMPLERS = ("TPESampler", "NSGAIISampler", "NSGAIIISampler", "GPSampler", "RandomSampler", "QMCSampler",
                            "BruteForceSampler", "GridSampler")

_STATE_NAMES = {TrialState.COMPLETE: State.COMPLETE, TrialState.PRUNED: State.PRUNED, TrialState.FAIL: State.FAILED}


class StrategySampler(BaseSampler):
    """Runs a :class:`~nas.Strategy` inside an Optuna study.

    ``before_trial`` asks the strategy for a whole sample (it sees the study's history, other
    workers' trials included); ``sample_independent`` then hands each suggested parameter its value;
    ``after_trial`` tells the strategy how the trial ended. Trials are keyed by number (one
    sampler per study).
    """

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.space: SearchSpace = strategy.space
        self._proposals: dict[int, Sample] = {}  # trial number -> what the strategy proposed

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        history = [record_from_trial(t, self.space) for t in study.get_trials(deepcopy=False) if t.number != trial.number]
        self._proposals[trial.number] = dict(as_proposal(self.strategy.ask(history)).sample)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution) -> Any:
        proposal = self._proposals.get(trial.number, {})
        if param_name in proposal:
            return proposal[param_name]
        # The strategy left an active dimension unset (e.g. a user's objective suggests extra
        # parameters): take the dimension's default so the sequence stays deterministic.
        dim = self.space.dimensions().get(param_name)
        if dim is not None:
            return dim.default
        return optuna.samplers.RandomSampler(seed=self.strategy.seed + trial.number).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        if self._proposals.pop(trial.number, None) is None:
            return
        record = record_from_trial(trial, self.space)
        record = dataclasses.replace(record, state=_STATE_NAMES.get(state, State.FAILED),
                                     value=values[0] if values and state == TrialState.COMPLETE else None)
        self.strategy.tell(record)


class SamplerStrategy(Strategy):
    """Runs any Optuna sampler (TPE, GP, NSGA-II, CMA-ES, QMC, ...) through the :class:`~nas.Strategy` contract.

    Each ask mirrors the finished records of the history into an in-memory study and asks the
    sampler there, so it also sees other workers' trials. Given a *factory* (a sampler class or a
    ``functools.partial`` taking ``seed=``), every ask uses a sampler seeded by ``(seed, len(history))``:
    the strategy is then stateless, and a resumed search proposes exactly what an uninterrupted one
    would. Given a sampler *instance*, its own random state carries on between asks.

    With ``skip_duplicates``, a proposal whose canonical key was already tried is dropped and a
    freshly seeded sampler asked again (the tried one is already in its model; up to ``max_redraws``
    times, then an unseen random sample), so no evaluation is spent twice on one architecture. An
    invalid cell of a :attr:`~nas.SearchSpace.constrained` space (NAS-Bench-101's edge limit) is
    redrawn the same way, duplicates skipped or not.
    """

    name = "optuna"

    def __init__(self, space: SearchSpace, sampler: BaseSampler | Callable[..., BaseSampler], *, seed: int | None = None,
                 skip_duplicates: bool = False, max_redraws: int = 20) -> None:
        super().__init__(space, seed=seed, skip_duplicates=skip_duplicates)
        self.max_redraws = int(max_redraws)
        self._study: optuna.Study | None = None
        self._synced: list[tuple[int, State, float | None]] = []
        self._instance = sampler if isinstance(sampler, BaseSampler) else None
        self._factory = None if isinstance(sampler, BaseSampler) else sampler
        target = type(sampler) if self._instance is not None else getattr(sampler, "func", sampler)
        self.name = getattr(target, "__name__", "optuna").replace("Sampler", "").lower() or "optuna"
        self._genetic: tuple[str, int] | None | bool = False  # (generation attribute, population) of NSGA-II / III; False: unread
        self.multi_objective = isinstance(target, type) and any(k.__name__ in MULTI_OBJECTIVE_SAMPLERS for k in target.__mro__)

    def random_warmup(self) -> tuple[str, int] | None:
        """The sampler's ``n_startup_trials`` (TPE, GP, ...), as given or as its default; ``None`` if it has none."""
        keywords = getattr(self._factory, "keywords", {}) if self._factory is not None else {}
        if isinstance(keywords.get("population_size"), int):  # NSGA-II / III: the first generation is random
            return ("population_size", keywords["population_size"])
        startup = keywords.get("n_startup_trials", getattr(self._instance, "_n_startup_trials", None))
        if startup is None and self._factory is not None:
            import inspect

            target = getattr(self._factory, "func", self._factory)
            try:
                default = inspect.signature(target).parameters.get("n_startup_trials")
                startup = default.default if default is not None and default.default is not default.empty else None
            except (TypeError, ValueError):
                startup = None
        return ("n_startup_trials", startup) if isinstance(startup, int) else None

    def sampler_for(self, history: Sequence[TrialRecord], attempt: int = 0) -> BaseSampler:
        if self._factory is None:
            return self._instance  # type: ignore[return-value]
        derived = int(np.random.SeedSequence([self.seed, len(history), attempt]).generate_state(1)[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return self._factory(seed=derived)

    def _study_with(self, history: Sequence[TrialRecord]) -> optuna.Study:
        """An in-memory study holding the finished records, in order. Kept between asks and extended
        when the history only grew (one new trial per ask instead of a full replay); rebuilt otherwise.
        The trial each ask opens is discarded right after, so the study equals a fresh replay."""
        dims = self.space.dimensions()
        finished = [r for r in history if r.finished]
        signature = [(r.number, r.state, r.value) for r in finished]
        if self._study is None or signature[:len(self._synced)] != self._synced:
            verbosity = optuna.logging.get_verbosity()
            optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line per rebuild
            try:  # several objectives: the sampler sees each trial's values, in their directions (MOTPE, NSGA-II, ...)
                directions: list[Any] = [o.optuna_direction for o in self.objectives] or ["maximize"]
                self._study = optuna.create_study(directions=directions)
            finally:
                optuna.logging.set_verbosity(verbosity)
            self._synced = []
        new = []
        generations = self._generations(finished)
        for position, record in enumerate(finished[len(self._synced):], len(self._synced)):
            state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(record.state, TrialState.FAIL)
            constraints = {"constraints:" + name[len(VIOLATION):]: float(v) for name, v in record.metrics.items()
                           if name.startswith(VIOLATION) and isinstance(v, (int, float))}
            if generations:
                constraints[generations[0]] = generations[1][position]
            if record.infeasible:
                state = TrialState.PRUNED  # refused before training: the samplers rank it by its violations (set_constraint's way)
            values = self._values(record) if state == TrialState.COMPLETE else None
            if state == TrialState.COMPLETE and values is None:
                state = TrialState.FAIL  # completed without a finite value of every objective: nothing to rank it by
            sample = self.space.active(record.arch.sample)
            # a pruned trial keeps its partial curve: TPE ranks pruned trials by how far they got (BOHB-style)
            curve = record.curve if state == TrialState.PRUNED else ()
            new.append(optuna.trial.create_trial(params=sample, distributions={n: distribution(dims[n]) for n in sample}, state=state,
                                                 values=values if state == TrialState.COMPLETE else None,
                                                 intermediate_values=dict(enumerate(curve)) if curve else None,
                                                 system_attrs=constraints or None))
        self._study.add_trials(new)
        self._synced = signature
        return self._study

    def _generations(self, finished: Sequence[TrialRecord]) -> tuple[str, list[int]] | None:
        """For a genetic sampler (NSGA-II, NSGA-III): the generation of each finished record, replayed as the
        sampler assigns it when a trial is asked (the newest generation until it has ``population_size``
        completed trials, then the next), under the sampler's own system attribute. The mirrored study is
        built from records, which do not carry the sampler's attributes: without them every trial would be
        generation 0, and NSGA-II would sample at random forever."""
        if self._genetic is False:  # the sampler's kind and population do not change between asks: read once
            self._genetic = genetic_generation(self._instance if self._instance is not None else self.sampler_for([], 0))
        genetic = self._genetic
        if not isinstance(genetic, tuple):
            return None
        key, population = genetic
        newest, count, out = 0, 0, []
        for record in finished:
            generation = newest if count < population else newest + 1
            out.append(generation)
            if record.state == State.COMPLETE and self._values(record) is not None:
                newest, count = (generation, count + 1) if generation == newest else (generation, 1)
        return key, out

    def _values(self, record: TrialRecord) -> list[float] | None:
        """What the mirrored study is told of a completed record: its score, or each objective's value."""
        if len(self.objectives) < 2:
            return [float(record.value)] if record.value is not None else None
        values = objective_values(record, self.objectives)
        return list(values) if values is not None else None

    def ask(self, history: Sequence[TrialRecord]) -> Sample:
        study = self._study_with(history)
        seen = self.seen_keys(history) if self.skip_duplicates else set()
        for attempt in range(self.max_redraws + 1):
            study.sampler = self.sampler_for(history, attempt)
            sample = self.space.suggest(study.ask())
            if not discard_last_trial(study):
                self._study = None  # an Optuna without the storage layout we rely on: rebuild next time
            if self.space.constrained and not self.space.is_valid(sample):
                continue  # the sampler draws dimension by dimension: a constrained space's invalid cell is redrawn
            if self.space.key(sample) not in seen:
                return sample
        rng = self.rng(history)
        for _ in range(1000):  # the sampler keeps proposing known keys: fall back to an unseen random sample
            sample = self.space.sample(rng)
            if self.space.key(sample) not in seen:
                break
        return sample
