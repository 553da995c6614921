"""The Python search API: ``nas.search(...)``, ``nas.Searcher`` (ask/tell) and config-driven runs."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

from nas._architecture import Architecture
from nas._config import compose, get_space, instantiate, space_from_config, target_of
from nas._errors import ConfigError
from nas._estimator import Estimator
from nas._optuna_adapters import SamplerStrategy, StrategySampler
from nas._records import METRICS_ATTR, REASON_ATTR, TrialRecord, trial_attrs
from nas._results import SearchResult
from nas._runner import SearchRunner, open_storage
from nas._space import Inherited, SearchSpace
from nas._strategy import Strategy
from nas.datasets import DataSplits, as_splits


def make_strategy(spec: Any, space: SearchSpace, seed: int | None) -> Strategy:
    """A strategy from a config node, a partial, a class or an instance; Optuna samplers come wrapped
    in :class:`SamplerStrategy`, so every caller has one path for every strategy."""
    if isinstance(spec, Strategy):
        return spec
    if isinstance(spec, BaseSampler):
        return SamplerStrategy(space, spec, seed=seed)
    adapter: dict[str, Any] = {}
    if isinstance(spec, (DictConfig, Mapping)):
        target = target_of(spec, kind="strategy")
        if isinstance(target, type) and issubclass(target, BaseSampler):  # keys of the adapter, not of the sampler
            node = OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig) else dict(spec)
            adapter = {k: node.pop(k) for k in ("skip_duplicates", "max_redraws") if k in node}  # type: ignore[union-attr]
            spec = node
        spec = instantiate(spec, kind="strategy", space=space, seed=seed)
        if isinstance(spec, (Strategy, BaseSampler)):
            return make_strategy(spec, space, seed)
    if callable(spec):
        target = getattr(spec, "func", spec)
        if isinstance(target, type) and issubclass(target, BaseSampler):
            return SamplerStrategy(space, spec, seed=seed, **adapter)
        made = spec(space=space, seed=seed)
        if isinstance(made, (Strategy, BaseSampler)):
            return make_strategy(made, space, seed)
    raise ConfigError(f"`strategy` must be a nas.Strategy, an optuna sampler, or a config/class making one, but got {type(spec).__name__}.")


def build_components(cfg: DictConfig, *, space: SearchSpace | None = None, strategy: Any = None,
                     estimator: Estimator | None = None, dataset: Any = None) -> tuple[SearchSpace, Strategy, Estimator]:
    """Instantiate space, dataset, strategy and estimator from ``cfg``; objects given replace their config.

    Everything is validated here, before any training starts.
    """
    seed = cfg.get("seed")
    space = space if space is not None else space_from_config(cfg.space)
    made_strategy = make_strategy(strategy if strategy is not None else cfg.strategy, space, seed)
    if estimator is None:
        runtime: dict[str, Any] = {"space": space, "seed": seed}
        if getattr(target_of(cfg.estimator, kind="estimator"), "needs_data", True):  # table estimators look results up
            if dataset is None:
                dataset = instantiate(cfg.dataset, kind=f"dataset '{cfg.dataset.get('_target_', '?')}'")
            elif not isinstance(dataset, DataSplits) and callable(dataset):
                dataset = dataset()
            runtime["dataset"] = as_splits(dataset)
        estimator = instantiate(cfg.estimator, kind="estimator", **runtime)
        if callable(estimator) and not isinstance(estimator, Estimator):
            estimator = estimator()
    if not isinstance(estimator, Estimator):
        raise ConfigError(f"`estimator` must build a nas.Estimator, but got {type(estimator).__name__}.")
    return space, made_strategy, estimator


def run_from_config(cfg: DictConfig, run_dir: str | Path, *, pruner: optuna.pruners.BasePruner | None = None, **objects: Any) -> SearchResult:
    """Run the search ``cfg`` describes (the resolved config of ``nas-search``) in ``run_dir``.

    ``objects`` (space, strategy, estimator, dataset) replace their config; ``pruner`` replaces ``cfg.pruner``.
    """
    space, strategy, estimator = build_components(cfg, **objects)
    space_cfg = OmegaConf.to_container(cfg.space, resolve=True) if objects.get("space") is None else None
    budget = cfg.get("budget", {})
    runner = SearchRunner(
        space=space, strategy=strategy, estimator=estimator, run_dir=run_dir, trials=int(budget.get("trials", 20)),
        timeout=budget.get("timeout"), storage=cfg.get("storage"), study_name=cfg.get("study_name", "nas"),
        pruner=pruner if pruner is not None else (instantiate(cfg.pruner, kind="pruner") if cfg.get("pruner") else None),
        progress=bool(cfg.get("progress", True)), tensorboard=bool(cfg.get("tensorboard", True)),
        space_config=space_cfg, config=OmegaConf.to_container(cfg, resolve=True),  # type: ignore[arg-type]
        weights=OmegaConf.to_container(cfg.weights, resolve=True) if cfg.get("weights") is not None else None,  # type: ignore[arg-type]
    )
    pruner_name = type(runner.study.pruner).__name__.replace("Pruner", "").lower()
    header = (f"nas: space '{space.name}' ({len(space.dimensions())} dims), strategy '{getattr(strategy, 'name', type(strategy).__name__)}', "
              f"{estimator.describe()}, {runner.trials} trials" + ("" if pruner_name == "nop" else f", pruner '{pruner_name}'") +
              f" -> {runner.run_dir}")
    runner.progress.say(header)
    return runner.run()


def _group_override(group: str, value: Any, overrides: list[str]) -> Any:
    """Strings become Hydra group overrides; objects are returned to be passed through."""
    if isinstance(value, str):
        overrides.append(f"{group}={value}")
        return None
    return value


def search(
    space: str | SearchSpace = "macro_chain",
    strategy: str | Strategy | BaseSampler | Any = "random",
    dataset: str | DataSplits | Any = "digits",
    *,
    estimator: str | Estimator = "train",
    trials: int | None = None,
    epochs: int | None = None,
    seed: int | None = 0,
    out_dir: str | Path | None = None,
    storage: str | None = None,
    timeout: float | None = None,
    pruner: str | optuna.pruners.BasePruner | None = None,
    overrides: Sequence[str] = (),
    progress: bool = True,
    tensorboard: bool = True,
) -> SearchResult:
    """Run a search and return its :class:`SearchResult`.

    Strings name configs (``configs/<group>/<name>.yaml``) exactly as on the command line; objects
    (a space, a strategy or Optuna sampler, a dataset, an estimator) are used as they are.
    ``overrides`` takes any further Hydra override, e.g. ``["estimator.lr=0.01"]``. ``pruner`` names a
    ``configs/pruner`` entry (``"successive_halving"``, ``"hyperband"``, ``"median"``, ``"lce"``) or is an
    Optuna pruner object.
    Re-running with the same ``out_dir`` resumes the study.
    """
    ov: list[str] = []
    objects = {
        "space": _group_override("space", space, ov),
        "strategy": _group_override("strategy", strategy, ov),
        "dataset": _group_override("dataset", dataset, ov),
        "estimator": _group_override("estimator", estimator, ov),
    }
    if isinstance(pruner, str):
        pruner = _group_override("pruner", pruner, ov)
    if trials is not None:
        ov.append(f"budget.trials={trials}")
    if epochs is not None:
        ov.append(f"estimator.epochs={epochs}")
    if timeout is not None:
        ov.append(f"budget.timeout={timeout}")
    ov += [f"seed={'null' if seed is None else seed}", f"progress={progress}", f"tensorboard={tensorboard}", *overrides]
    if storage is not None:
        ov.append(f"storage='{storage}'")
    cfg = compose(ov)
    run_dir = Path(out_dir) if out_dir is not None else Path("runs") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    objects = {k: v for k, v in objects.items() if v is not None}
    return run_from_config(cfg, run_dir, pruner=pruner, **objects)


class Candidate:
    """One asked architecture in the ask/tell interface."""

    def __init__(self, trial: optuna.Trial, arch: Architecture, space: SearchSpace, parent: TrialRecord | None = None) -> None:
        self.trial, self.arch, self.space = trial, arch, space
        self.number = trial.number
        self.parent = parent  # the trial this candidate was bred from (a strategy that inherits weights), else None
        self.started = time.perf_counter()

    def build(self, input_shape: Sequence[int], num_classes: int) -> Any:
        return self.space.build(self.arch.sample, tuple(input_shape), num_classes)

    def inherit(self, parent_state: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> Inherited:
        """Build this candidate from its parent's trained ``state_dict``: the function-preserving
        morphism when the candidate is one of the parent's morphs, else every tensor whose name and
        shape match (see :meth:`SearchSpace.inherit`). Keeping the parent's weights is up to you."""
        if self.parent is None:
            raise ValueError(f"candidate #{self.number} has no parent to inherit from; build it with `build`")
        return self.space.inherit(self.parent.arch.sample, parent_state, self.arch.sample, tuple(input_shape), num_classes)

    def report(self, step: int, value: float) -> bool:
        """Forward an intermediate value to the study; returns whether the pruner says stop."""
        self.trial.report(value, step)
        return self.trial.should_prune()

    def __repr__(self) -> str:
        return f"Candidate(#{self.number}, {self.arch})"


class Searcher:
    """Ask/tell search for users who run their own training loop.

    >>> searcher = nas.Searcher("macro_chain", "random", seed=0)
    >>> cand = searcher.ask()
    >>> model = cand.build((1, 8, 8), 10)        # train it your way
    >>> searcher.tell(cand, 0.97, metrics={"test_accuracy": 0.96})
    """

    def __init__(self, space: str | SearchSpace, strategy: str | Strategy | BaseSampler | Any = "random", *, seed: int | None = 0,
                 storage: str | None = None, study_name: str = "nas", pruner: optuna.pruners.BasePruner | None = None) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = get_space(space) if isinstance(space, str) else space
        spec = compose([f"strategy={strategy}"]).strategy if isinstance(strategy, str) else strategy
        self.strategy = make_strategy(spec, self.space, seed)
        sampler = self._sampler = StrategySampler(self.strategy)
        storage_obj = open_storage(storage, Path("."))[1] if storage else None
        self.study = optuna.create_study(storage=storage_obj, study_name=study_name, sampler=sampler, pruner=pruner or optuna.pruners.NopPruner(),
                                         direction="maximize", load_if_exists=True)

    def is_exhausted(self) -> bool:
        return self.strategy.is_exhausted(self.history())

    def history(self) -> list[TrialRecord]:
        from nas._records import history_of

        return history_of(self.study, self.space)

    def ask(self) -> Candidate:
        if self.is_exhausted():
            raise StopIteration(f"strategy '{self.strategy.name}' has no new candidate left")  # type: ignore[union-attr]
        trial = self.study.ask()
        number = getattr(self._sampler.proposal(trial._trial_id), "parent", None)  # a nas.Child names its parent
        arch = self.space.architecture(self.space.suggest(trial))
        for name, value in trial_attrs(self.space, arch, number).items():
            trial.set_user_attr(name, value)
        parent = None
        if number is not None:  # the parent's record alone, not the whole history
            trial_id = self.study._storage.get_trial_id_from_study_id_trial_number(self.study._study_id, int(number))
            parent = TrialRecord.from_trial(self.study._storage.get_trial(trial_id), self.space)
        return Candidate(trial, arch, self.space, parent)

    def tell(self, candidate: Candidate, score: float | None = None, *, metrics: Mapping[str, Any] | None = None,
             failed: str | None = None, pruned: bool = False) -> TrialRecord:
        """Record the outcome: a ``score`` (maximised), or ``failed="reason"``, or ``pruned=True``."""
        metrics = {"seconds": time.perf_counter() - candidate.started, **(metrics or {})}
        candidate.trial.set_user_attr(METRICS_ATTR, dict(metrics))
        if failed is not None or (score is None and not pruned):
            candidate.trial.set_user_attr(REASON_ATTR, failed or "no score given")
            self.study.tell(candidate.trial, state=TrialState.FAIL)
        elif pruned:
            self.study.tell(candidate.trial, state=TrialState.PRUNED)
        else:
            self.study.tell(candidate.trial, float(score))  # type: ignore[arg-type]
        return TrialRecord.from_trial(self.study._storage.get_trial(candidate.trial._trial_id), self.space)

    @property
    def best(self) -> TrialRecord | None:
        done = [r for r in self.history() if r.state == "complete" and r.value is not None]
        return max(done, key=lambda r: r.value) if done else None  # type: ignore[arg-type, return-value]
