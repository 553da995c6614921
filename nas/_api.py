"""The Python search API: ``nas.search(...)``, ``nas.Searcher`` (ask/tell) and config-driven runs."""

from __future__ import annotations

import functools
import json
import os
import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.samplers import BaseSampler

from nas.core.architecture import Architecture
from nas._final import auto_retrain_top_k, check_final, retrain_top
from nas._config import as_dict, compose, get_space, instantiate, space_from_config, target_of
from nas.core.errors import ConfigError
from nas.core.fronts import reference_from
from nas.core.objectives import parse_objectives
from nas.estimators.base import Estimator, Evaluation, ParentWeights
from nas.estimators.table import TableEstimator
from nas._results import SearchResult, leaderboard
from nas.core.space import Inherited, SearchSpace
from nas.core.strategy import Strategy, auto_population, auto_startup
from nas.inheritance.weights import check_weight_config, make_weight_store
from nas.core.records import TrialRecord, TrialState, ranked
from nas.datasets import DataSplits, as_splits
from nas.engine.callbacks import Callback
from nas.engine.loop import Budget, SearchLoop, TrialReporter, WarmStart, storable
from nas.engine.pool import LocalWorkers
from nas.engine.fronts import FrontCheckpoints, check_objectives, declare_objectives
from nas.engine.pareto_halving import ParetoHyperbandPruner, ParetoSuccessiveHalvingPruner
from nas.engine.progress import ProgressCallback
from nas.engine.resume import TrialCheckpoints, checkpoints_from_config
from nas.engine.rundir import RUN_FILE, SPACE_PICKLE, BestCheckpoint, RunSummary, TopCheckpoints, WeightRetention, atomic_write
from nas.engine.tensorboard import TensorBoardCallback
from nas.store import DEFAULT_STORAGE, Heartbeat, Outcome, RunningTrial, open_store
from nas.store.optuna_store import MEMORY
from nas.store.adapters import SamplerStrategy


def make_strategy(spec: Any, space: SearchSpace, seed: int | None, budget: int | None = None) -> Strategy:
    """A strategy from a config node, a partial, a class or an instance; Optuna samplers come wrapped
    in :class:`SamplerStrategy`, so every caller has one path for every strategy."""
    if isinstance(spec, Strategy):
        return spec
    if isinstance(spec, BaseSampler):
        return SamplerStrategy(space, spec, seed=seed)
    adapter: dict[str, Any] = {}
    note = None
    if isinstance(spec, (DictConfig, Mapping)):
        target = target_of(spec, kind="strategy")
        if isinstance(target, type) and issubclass(target, BaseSampler):  # keys of the adapter, not of the sampler
            node = as_dict(spec, kind="strategy")
            adapter = {k: node.pop(k) for k in ("skip_duplicates", "max_redraws") if k in node}
            if node.get("n_startup_trials") == "auto":  # Optuna's samplers take a number: chosen for the budget here
                node["n_startup_trials"] = auto_startup(budget)
                note = f"n_startup_trials=auto -> {node['n_startup_trials']} for {budget} trials" if budget is not None else None
            if node.get("population_size") == "auto":  # NSGA-II / III: generations enough for the budget
                node["population_size"] = auto_population(budget)
                note = f"population_size=auto -> {node['population_size']} for {budget} trials" if budget is not None else None
            spec = node
        spec = instantiate(spec, kind="strategy", space=space, seed=seed, budget=budget)
        if isinstance(spec, (Strategy, BaseSampler)):
            return make_strategy(spec, space, seed, budget)
    if callable(spec):
        target = getattr(spec, "func", spec)
        if isinstance(target, type) and issubclass(target, BaseSampler):
            wrapped = SamplerStrategy(space, spec, seed=seed, **adapter)
            wrapped.notes += [note] if note else []
            return wrapped
        made = spec(space=space, seed=seed)
        if isinstance(made, (Strategy, BaseSampler)):
            return make_strategy(made, space, seed)
    raise ConfigError(f"`strategy` must be a nas.Strategy, an optuna sampler, or a config/class making one, but got {type(spec).__name__}.")


def build_components(cfg: DictConfig, *, space: SearchSpace | None = None, strategy: Any = None,
                     estimator: Estimator | None = None, dataset: Any = None,
                     callback_metrics: Sequence[str] = ()) -> tuple[SearchSpace, Strategy, Estimator]:
    """Instantiate space, dataset, strategy and estimator from ``cfg``; objects given replace their config.
    ``callback_metrics``: what the search's callbacks add to each trial (objectives and constraints may name them).

    Everything is validated here, before any training starts.
    """
    seed = cfg.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"`seed` must be an integer or null, but got {seed!r}.")
    space = space if space is not None else space_from_config(cfg.space)
    # table estimators look results up: no data to load, and spaces with nothing to build are theirs
    needs_data = estimator.needs_data if estimator is not None else getattr(target_of(cfg.estimator, kind="estimator"), "needs_data", True)
    if space.lookup_only and needs_data:
        raise ConfigError(f"space '{space.name}' is lookup-only (it has no network to build), so the estimator must look "
                          "results up (estimator=table, or a nas.TableEstimator), but it trains or measures networks.")
    made_strategy = make_strategy(strategy if strategy is not None else cfg.strategy, space, seed,
                                  budget=(cfg.get("budget") or {}).get("trials"))
    if estimator is None:
        runtime: dict[str, Any] = {"space": space, "seed": seed}
        if needs_data:
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
    if isinstance(estimator, TableEstimator) and estimator.space is None:
        estimator.space = space  # rows keyed by the space's text form are found, as when the config builds it
    objectives = parse_objectives(as_plain(cfg.get("objectives")))
    costs, constraints = cfg.get("costs"), cfg.get("constraints")
    if costs is not None or constraints is not None or objectives:
        from nas.costs.screen import screen

        estimator = screen(estimator, space, as_plain(costs), as_plain(constraints), wanted=[o.metric for o in objectives],
                           callback_metrics=callback_metrics)
    check_objectives(objectives, estimator, made_strategy, callback_metrics)
    made_strategy.objectives = objectives if len(objectives) > 1 else ()
    return space, made_strategy, estimator


def pareto_pruner(node: Any, objectives: Sequence[Any], notes: list[str]) -> optuna.pruners.BasePruner:
    """The pruner of a search with several objectives: successive halving promotes by non-dominated rank
    (:class:`ParetoSuccessiveHalvingPruner`, MOASHA's rule), and so do Hyperband's brackets
    (:class:`ParetoHyperbandPruner`); no pruner stays none; a pruner that ranks by the one score is refused,
    naming the ones that work."""
    target = getattr(target_of(node, kind="pruner"), "__name__", "")
    if target == "NopPruner":
        return optuna.pruners.NopPruner()
    if target in ("SuccessiveHalvingPruner", "ParetoSuccessiveHalvingPruner"):
        keys = {k: v for k, v in as_dict(node, kind="pruner").items() if k in ("min_resource", "reduction_factor", "min_early_stopping_rate")}
        if keys.get("min_resource") == "auto":
            raise ConfigError("`pruner.min_resource` must be a number of epochs with several objectives (the rungs are fixed "
                              "before the first trial ends), but got 'auto'.")
        made = ParetoSuccessiveHalvingPruner([o.direction for o in objectives], **keys)
        notes.append(f"pruner 'successive_halving': {len(objectives)} objectives, so each rung promotes the top "
                     f"1/{made.reduction_factor} by non-dominated rank (MOASHA's rule), rungs at epochs "
                     f"{', '.join(str(s + 1) for s in made.rung_steps(10 ** 4)[:4])}, ...")
        return made
    if target in ("HyperbandPruner", "ParetoHyperbandPruner"):
        keys = {k: v for k, v in as_dict(node, kind="pruner").items() if k in ("min_resource", "max_resource", "reduction_factor")}
        hyperband = ParetoHyperbandPruner([o.direction for o in objectives], **keys)
        notes.append(f"pruner 'hyperband': {len(objectives)} objectives, so each bracket's rungs promote the top "
                     f"1/{hyperband.reduction_factor} of that bracket by non-dominated rank (MOASHA's rule)")
        return hyperband
    raise ConfigError(f"`pruner` ({target}) stops trials by the one score, which would cut cheap networks off the Pareto front; "
                      f"with several objectives use pruner=successive_halving or pruner=hyperband (they promote by "
                      f"non-dominated rank) or pruner=none.")


def check_pareto_pruner(pruner: optuna.pruners.BasePruner) -> None:
    """A pruner object given in Python for a search with several objectives: one that ranks by them, or none."""
    if not isinstance(pruner, (ParetoSuccessiveHalvingPruner, ParetoHyperbandPruner, optuna.pruners.NopPruner)):
        raise ConfigError(f"`pruner` ({type(pruner).__name__}) stops trials by the one score; with several objectives pass "
                          "nas.engine.pareto_halving.ParetoSuccessiveHalvingPruner(directions) or ParetoHyperbandPruner(directions), "
                          "or pruner='successive_halving' / 'hyperband'.")


def warm_starts(node: Any, space: SearchSpace, estimator: Estimator) -> list[WarmStart]:
    """``warm_start: {run: PARENT_RUN_DIR, top_k: 3, inherit: true}``: the parent run's best ``top_k`` architectures,
    evaluated before the strategy proposes any, each starting from its trained weights (``inherit``, for an
    estimator that inherits weights). The parent must have searched the same space."""
    if node is None:
        return []
    if not isinstance(node, dict) or "run" not in node:
        raise ConfigError(f"`warm_start` must be a mapping {{run: PARENT_RUN_DIR, top_k: 3, inherit: true}}, but got {node!r}.")
    unknown = sorted(set(node) - {"run", "top_k", "inherit"})
    if unknown:
        raise ConfigError(f"`warm_start.{unknown[0]}` is not a setting; the settings are run, top_k, inherit.")
    top_k, inherit = node.get("top_k", 3), node.get("inherit", True)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"`warm_start.top_k` must be an integer >= 1, but got {top_k!r}.")
    import torch

    from nas._results import load

    parent = load(node["run"])
    if parent.space.dimensions() != space.dimensions():
        raise ConfigError(f"`warm_start.run` must have searched this space ('{space.name}'), but {node['run']!r} searched "
                          f"'{parent.space.name}' with other dimensions.")
    out = []
    for record in ranked(parent.trials)[:top_k]:
        weights = None
        if inherit and estimator.inherits_weights:
            try:
                folder = parent.weights_folder(record.number)
            except (ValueError, FileNotFoundError):
                folder = None
            if folder is not None and (folder / "weights.pt").exists():
                state = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
                weights = ParentWeights(number=record.number, sample=dict(record.arch.sample), state=state)
        out.append(WarmStart(sample=dict(record.arch.sample), origin=f"{node['run']}#{record.number}", weights=weights))
    return out


def run_sanity_check(cfg: DictConfig, space: SearchSpace, estimator: Estimator) -> None:
    """``sanity_check=true`` (or a mapping of :func:`nas.model_audit.sanity.sanity_check`'s settings): the space's
    largest of a few architectures must overfit a small batch of the training data before the search starts."""
    node = as_plain(cfg.get("sanity_check", False))
    if node is False or node is None:
        return
    if node is not True and not isinstance(node, dict):
        raise ConfigError(f"`sanity_check` must be true, false or a mapping of its settings (examples, target, steps, architectures), "
                          f"but got {node!r}.")
    settings = {} if node is True else {k: v for k, v in node.items() if k != "enabled"}
    if isinstance(node, dict) and node.get("enabled") is False:
        return
    data = getattr(estimator, "data", None)
    if data is None:
        raise ConfigError(f"`sanity_check` trains networks of the space on the training data, but the estimator "
                          f"({type(estimator).__name__}) has none.")
    from nas.model_audit.sanity import sanity_check

    known = {"architectures", "examples", "target", "steps", "lr", "draws", "seed"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"`sanity_check.{unknown[0]}` is not a setting; the settings are {', '.join(sorted(known))}.")
    build_space = getattr(estimator, "build_space", space)
    sanity_check(build_space, data, device=str(getattr(estimator, "device", "cpu")), **settings)


def as_plain(node: Any) -> Any:
    """A config node as plain lists and dicts (what the cost and constraint parsers check)."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


#: The default storage of a run with several local workers: SQLite under concurrent writers is
#: Optuna's known "database is locked"; a journal file takes appends from every process.
WORKERS_STORAGE = "journal://{run_dir}/study.log"


def worker_count(cfg: DictConfig) -> int:
    count = cfg.get("workers", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConfigError(f"`workers` must be an integer >= 0 (processes of this machine searching one study; 0 = prepare the run "
                          f"directory and study for workers started elsewhere, `nas-worker RUN_DIR`), but got {count!r}.")
    return count


def run_from_config(cfg: DictConfig, run_dir: str | Path, *, pruner: optuna.pruners.BasePruner | None = None,
                    callbacks: Sequence[Callback] = (), attached: bool = False, index: int | None = None,
                    replaces: str | None = None, **objects: Any) -> SearchResult:
    """Run the search ``cfg`` describes (the resolved config of ``nas-search``) in ``run_dir``.

    ``objects`` (space, strategy, estimator, dataset) replace their config; ``pruner`` replaces ``cfg.pruner``;
    ``callbacks`` observe the search besides the built-in ones (progress, TensorBoard, run directory).
    ``cfg.workers`` > 1 starts that many worker processes on one study (:mod:`nas.engine.pool`) and
    waits for them; ``attached`` says this process is one more worker of a run directory's search
    (:func:`run_worker`: its lines tagged ``index``), ``replaces`` the dead worker (``host:pid``) it replaces.
    """
    count = worker_count(cfg)
    check_final(cfg)
    keep_models = cfg.get("keep_models", 3)
    if isinstance(keep_models, bool) or not isinstance(keep_models, int) or keep_models < 0:
        raise ConfigError(f"`keep_models` must be an integer >= 0 (the best trials whose trained networks are kept under top/<n>/, "
                          f"for nas-audit), but got {keep_models!r}.")
    coordinating = count != 1 and not attached  # 0: prepare only
    job = sweep_worker(cfg, count)  # one job of a sweep of workers: one process on the shared study, in its own run directory
    if coordinating and (objects or pruner is not None):
        raise ConfigError(f"`workers={count}` starts worker processes that build everything from the config; objects given in "
                          f"Python ({', '.join(sorted(objects)) or 'pruner'}) cannot be sent to them. Name them by config "
                          "(space=..., strategy=..., or a YAML file / _target_) or use workers=1.")
    measuring = [type(cb).__name__ for cb in callbacks if getattr(cb, "metrics", ())]
    if coordinating and measuring:
        raise ConfigError(f"`workers={count}` starts worker processes, which cannot run callbacks given in Python, but "
                          f"{', '.join(measuring)} measure each trial (`metrics`); use workers=1, or start each worker with "
                          "nas.search(..., storage=URL, callbacks=[...]) on one study.")
    audit_node = as_plain(cfg.get("trial_audit"))
    if audit_node is not None:  # built from the config, so every worker records the figures too
        from nas.model_audit.trial_audit import trial_audit_from_config

        callbacks = [*callbacks, trial_audit_from_config(audit_node)]  # type: ignore[list-item]
    if coordinating and cfg.get("storage") is None:
        cfg = OmegaConf.merge(cfg, {"storage": WORKERS_STORAGE})  # type: ignore[assignment]
    if attached or coordinating:
        cfg = _worker_threads(cfg, max(1, count))
        refuse_sqlite_for_workers(cfg.get("storage"), count)
    space, strategy, estimator = build_components(cfg, callback_metrics=[m for cb in callbacks for m in getattr(cb, "metrics", ())],
                                                  **objects)
    for cb in callbacks:
        check = getattr(cb, "check", None)
        if callable(check):
            check(estimator)  # e.g. TrialAudit: the validation split and its group array, before the run directory is made
    if not attached:
        run_sanity_check(cfg, space, estimator)
    warm = warm_starts(as_plain(cfg.get("warm_start")), space, estimator)
    budget_cfg = cfg.get("budget") or {}
    budget = Budget(trials=budget_cfg.get("trials"), timeout=budget_cfg.get("timeout"), max_infeasible=budget_cfg.get("max_infeasible"))
    pruner_notes: list[str] = []
    if pruner is None and cfg.get("pruner"):
        pruner = (pareto_pruner(cfg.pruner, strategy.objectives, pruner_notes) if strategy.objectives
                  else instantiate(cfg.pruner, kind="pruner"))
    elif pruner is not None and strategy.objectives:
        check_pareto_pruner(pruner)
    plan = getattr(pruner, "plan", None)  # a pruner that can say what it will do with this epoch budget (lce)
    if callable(plan):
        epochs = (cfg.get("estimator") or {}).get("epochs")
        note = plan(epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None)
        pruner_notes += [note] if note else []
    final_note = auto_retrain_top_k(cfg, pruner, (cfg.get("estimator") or {}).get("epochs"))
    pruner_notes += [final_note] if final_note else []
    run_dir = Path(run_dir)
    space_cfg = OmegaConf.to_container(cfg.space, resolve=True) if objects.get("space") is None else None
    weights_cfg = as_dict(cfg.weights, kind="weights") if cfg.get("weights") is not None else None
    check_weight_config(weights_cfg)  # before the run directory is made
    identity = search_identity(cfg, space, estimator, objects)
    resume_notes = [] if attached else check_resume(run_dir, identity, study_name=cfg.get("study_name", "nas"),
                                                    resume=cfg.get("resume", "auto"), description=estimator.describe())
    run_dir.mkdir(parents=True, exist_ok=True)
    shared = attached or count > 1
    storage = cfg.get("storage")
    single = not shared and (storage is None or storage in MEMORY)  # nobody else can write this study
    beats, requeue, checkpoints, patience = lost_trial_settings(cfg, run_dir)
    heartbeat = None if single else beats  # checked all the same
    template, store = open_store(storage, run_dir=run_dir, space=space, study_name=cfg.get("study_name", "nas"), pruner=pruner,
                                 heartbeat=heartbeat, patience=patience)
    weights = make_weight_store(weights_cfg, run_dir=run_dir,  # type: ignore[arg-type]
                                needed=strategy.inherits_weights and estimator.inherits_weights)
    if not attached:  # a worker joins the run as its coordinator wrote it
        write_run_file(run_dir, space=space, strategy=strategy, estimator=estimator, storage=template, study_name=store.study_name,
                       space_config=space_cfg, config=OmegaConf.to_container(cfg, resolve=True),  # type: ignore[arg-type]
                       weights=weights, identity=identity)
    if not attached:
        index = 0 if coordinating and count else job  # the coordinator is worker 0; a sweep's job is its index
    progress = ProgressCallback(enabled=bool(cfg.get("progress", True)), prefix="" if index is None else f"[w{index}] ", parallel=count)
    observers: list[Callback] = [progress]
    if cfg.get("tensorboard", True):
        observers.append(TensorBoardCallback(run_dir / "tb") if not shared else
                         TensorBoardCallback(run_dir / "tb", search_run=f"search_worker{os.getpid() if index is None else index}",
                                             summary=False))
    observers.append(BestCheckpoint(run_dir))
    if keep_models:
        observers.append(TopCheckpoints(run_dir, keep_models))
    if strategy.objectives:
        declare_objectives(store, strategy.objectives, reference_from(as_plain(cfg.get("reference")), strategy.objectives),
                           (*getattr(estimator, "constraints", ()), *estimator.constraints_after_training()))
        observers.append(FrontCheckpoints(run_dir, strategy.objectives))
    if weights is not None:
        observers.append(WeightRetention(weights))
    summary: list[Callback] = [RunSummary(run_dir, functools.partial(leaderboard, space, objectives=strategy.objectives))]
    if not coordinating:
        observers += summary
    observers += callbacks
    loop = SearchLoop(space=space, strategy=strategy, estimator=estimator, store=store, budget=budget, callbacks=observers,
                      weights=weights, run_dir=run_dir, recover_stale="own" if single else "shared", shared_run_dir=shared,
                      requeue=requeue, replaces=replaces, checkpoints=checkpoints, warm_start=warm)
    pruner_name = type(store.pruner).__name__.replace("Pruner", "").lower()
    limits = ([f"{budget.trials} trials"] if budget.trials is not None else []) + (
        [f"{budget.timeout:g}s"] if budget.timeout is not None else [])
    loop.say(f"nas: space '{space.name}' ({len(space.dimensions())} dims), strategy '{strategy.name}', "
             f"{estimator.describe()}, {' or '.join(limits)}" + ("" if pruner_name == "nop" else f", pruner '{pruner_name}'") +
             f" -> {run_dir}" + (f", {count} workers, storage {template}" if coordinating and count else ""))
    for line in strategy.budget_notes(budget.trials):
        loop.say(f"strategy '{strategy.name}': {line}")
    for line in pruner_notes:
        loop.say(line)
    for line in resume_notes:
        loop.say(line)
    if count == 0 and not attached:
        loop.say(f"nas: prepared {run_dir} (study '{store.study_name}' in {template}); attach workers with: nas-worker {run_dir}")
    elif not coordinating:
        loop.run()
        if not attached:
            retrain_top(cfg, space, run_dir, store.history(), loop.say, given=sorted(set(objects) & {"estimator", "dataset"}))
    else:
        pool = LocalWorkers(run_dir, count, say=loop.say)
        pool.start()
        try:
            loop.run(close=False)
            pool.wait()
        except KeyboardInterrupt:
            pool.interrupt()
            raise
        summary = [ProgressCallback(enabled=progress.enabled), *summary]
        summarise(loop, summary + ([TensorBoardCallback(run_dir / "tb")] if cfg.get("tensorboard", True) else []))
        loop.close()
        retrain_top(cfg, space, run_dir, store.history(), loop.say, workers=count)  # once the workers are done, on as many processes
    return SearchResult(store=store, space=space, run_dir=run_dir, input_shape=tuple(estimator.input_shape),
                        num_classes=estimator.num_classes, meta=json.loads((run_dir / RUN_FILE).read_text()))


def sweep_worker(cfg: DictConfig, count: int) -> int | None:
    """``cfg.worker``: this job's index in a sweep of workers (``nas-search -m worker=0,1,2,3`` with a
    Hydra launcher), each job one worker on the shared ``storage``; ``None`` outside such a sweep."""
    index = cfg.get("worker")
    if index is None:
        return None
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ConfigError(f"`worker` must be a job's index >= 0 in a sweep of workers (-m worker=0,1,2,3) or null, but got {index!r}.")
    if cfg.get("storage") is None:
        raise ConfigError(f"`worker={index}` (a sweep of workers, one Hydra job each) needs a `storage` every job shares, such as "
                          "storage='journal:///shared/folder/study.log' or a postgresql:// URL; with storage=null each job would "
                          "search a study of its own.")
    if count != 1:
        raise ConfigError(f"`worker={index}` makes this job one worker of a sweep: `workers` must be 1 (each job one process), "
                          f"but got workers={count}.")
    refuse_sqlite_for_workers(cfg.get("storage"), count, who=f"a sweep of workers (worker={index})")
    return index


def refuse_sqlite_for_workers(storage: Any, count: int, who: str | None = None) -> None:
    """Several workers on one SQLite file would meet Optuna's known "database is locked": refused, with what to use."""
    who = who or f"workers={count} or nas-worker"
    url = str(storage) if storage is not None else DEFAULT_STORAGE  # a worker's run of a single-process search: its study.db
    if url in MEMORY:
        raise ConfigError(f"`storage` must be shared by the processes of {who}, but {url!r} lives in one "
                          f"process's memory. Use storage=null (a journal file in the run directory) or an RDB URL.")
    if url.startswith("sqlite"):
        raise ConfigError(f"`storage` must take concurrent writers for {who}, but {url!r} is an SQLite file, "
                          f"which several processes writing at once lock (Optuna's known 'database is locked'). Use the journal "
                          f"file (storage=null with workers > 1 gives {WORKERS_STORAGE!r}) or an RDB server such as "
                          f"'postgresql://user:pass@host/db'. A single-process run's study.db stays one process's.")


def lost_trial_settings(cfg: DictConfig, run_dir: Path) -> tuple[Heartbeat, int, TrialCheckpoints | None, float]:
    """What keeps a worker's death from losing anything, from ``cfg``, each key checked: the
    ``heartbeat``, ``requeue`` (re-runs of a lost trial), ``checkpoints`` and ``storage_retry``
    (seconds an unreachable database is retried)."""
    node = cfg.get("heartbeat") or {}
    settings = as_dict(node, kind="heartbeat") if isinstance(node, DictConfig) else dict(node)
    unknown = sorted(set(settings) - {"interval", "grace"})
    if unknown:
        raise ConfigError(f"`heartbeat` takes `interval` and `grace` (seconds), but got unknown key(s) {', '.join(unknown)}.")
    requeue = cfg.get("requeue", 1)
    if isinstance(requeue, bool) or not isinstance(requeue, int) or requeue < 0:
        raise ConfigError(f"`requeue` must be an integer >= 0 (times a lost trial is run again), but got {requeue!r}.")
    patience = cfg.get("storage_retry", 600)
    if isinstance(patience, bool) or not isinstance(patience, (int, float)) or patience < 0:
        raise ConfigError(f"`storage_retry` must be a number of seconds >= 0 (how long an unreachable database is retried), "
                          f"but got {patience!r}.")
    node = cfg.get("checkpoints")
    checkpoints = checkpoints_from_config(as_dict(node, kind="checkpoints") if isinstance(node, DictConfig) else node, run_dir)
    return Heartbeat(**settings), requeue, checkpoints, float(patience)


def summarise(workers_loop: SearchLoop, callbacks: list[Callback]) -> None:
    """What a search's end writes for the whole study, once its workers are done: ``callbacks``
    (the leaderboard, TensorBoard's ``search`` run with every trial in order, the pictures of the
    best and the best's graph) see a start and an end on the same components, and no trials."""
    w = workers_loop
    loop = SearchLoop(space=w.space, strategy=w.strategy, estimator=w.estimator, store=w.store, budget=w.budget, callbacks=callbacks,
                      run_dir=w.run_dir)
    loop.open(announce=False)
    history = loop.store.history()
    for callback in callbacks:
        if isinstance(callback, TensorBoardCallback):
            callback.replay(history)
    loop.close()
    finished = sum(r.finished for r in history)
    loop.say(f"nas: the workers finished; the study holds {len(history)} trials ({finished} finished).")


def _worker_threads(cfg: DictConfig, count: int) -> DictConfig:
    """A worker's CPU threads: ``estimator.threads`` as set, or its share of the cores (``null``)."""
    node = cfg.get("estimator")
    if isinstance(node, DictConfig) and "threads" in node and node.get("threads") is None:
        from nas.estimators.training import available_cpus

        return OmegaConf.merge(cfg, {"estimator": {"threads": max(1, available_cpus() // count)}})  # type: ignore[return-value]
    return cfg


def run_worker(run_dir: str | Path, *, index: int | None = None, replaces: str | None = None) -> SearchResult:
    """One more worker on ``run_dir``'s study (``nas-worker RUN_DIR``): its resolved config.yaml, run
    beside the workers already there until the budget is spent."""
    run_dir = Path(run_dir)
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise ConfigError(f"nas-worker: `run_dir` must be a run directory holding config.yaml (written when a search starts), "
                          f"but {str(run_dir)!r} has none.")
    cfg = OmegaConf.load(config)
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"nas-worker: {config} must hold a mapping of config keys, but holds {type(cfg).__name__}.")
    return run_from_config(cfg, run_dir, attached=True, index=index, replaces=replaces)


#: Estimator settings that may differ on resume: where and how fast it runs, not what it measures.
_RUNTIME_KEYS = ("_partial_", "device", "threads", "eval_batch_size", "test_curve")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def search_identity(cfg: DictConfig, space: SearchSpace, estimator: Estimator, objects: Mapping[str, Any]) -> dict[str, Any]:
    """What defines a search (space, dataset, estimator and its fidelity, seed): a run directory's study
    is only continued by a config with the same. Budget, timeout, strategy, progress, logging and
    storage may change on resume. Objects given in Python are identified by what they describe."""
    identity: dict[str, Any] = {"seed": cfg.get("seed"), "fidelity": estimator.fidelity()}
    identity["space"] = (as_dict(cfg.space, kind="space") if objects.get("space") is None
                         else {"object": True, "name": space.name, "dimensions": sorted(space.dimensions())})
    if objects.get("estimator") is None:
        identity["estimator"] = {k: v for k, v in as_dict(cfg.estimator, kind="estimator").items() if k not in _RUNTIME_KEYS}
    else:
        identity["estimator"] = {"object": True, **{k: v for k, v in estimator.describe().items() if k not in _RUNTIME_KEYS}}
    objectives = parse_objectives(as_plain(cfg.get("objectives")))
    if len(objectives) > 1:  # a single-objective search's identity is as it always was
        identity["objectives"] = [str(o) for o in objectives]
    if estimator.needs_data:
        identity["dataset"] = as_dict(cfg.dataset, kind="dataset") if objects.get("dataset") is None else {"object": True}
    return _jsonable(identity)


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key, "(unset)"), new.get(key, "(unset)"), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def check_resume(run_dir: Path, identity: dict[str, Any], *, study_name: str, resume: str,
                 description: Mapping[str, Any] | None = None) -> list[str]:
    """Refuse, before anything is written, to continue a run directory's study with a config that
    defines another search; ``resume=force`` continues anyway, a new ``study_name`` starts a new study.
    Returns notes for the user: a resumed CPU search on another thread count (``description`` is the
    estimator's) may not give what one uninterrupted run would have."""
    if resume not in ("auto", "force"):
        raise ConfigError(f"`resume` must be auto (continue a study the config matches) or force, but got {resume!r}.")
    meta_file = run_dir / RUN_FILE
    if not meta_file.is_file():
        return []
    meta = json.loads(meta_file.read_text())
    notes = []
    before, now = (meta.get("estimator") or {}).get("threads"), (description or {}).get("threads")
    if before is not None and now is not None and before != now:
        notes.append(f"resume: this run directory's trials trained on {before} CPU thread(s), these train on {now}; CPU results "
                     "depend on the thread count, so new trials may differ from what one run would have given "
                     f"(estimator.threads={before} trains as before).")
    previous = meta.get("identity")
    if resume == "force" or previous is None or meta.get("study_name") != study_name:
        return notes  # forced, a run directory from before identities were kept, or another study in it
    diffs = _differences(previous, identity)
    if diffs:
        raise ConfigError(f"run_dir {str(run_dir)!r} holds study {study_name!r} of another search, which this config would "
                          "continue and corrupt: " + "; ".join(diffs) + ". Use a new run_dir (or study_name), or resume=force "
                          "to continue it anyway.")
    return notes


def write_run_file(run_dir: Path, *, space: SearchSpace, strategy: Strategy, estimator: Estimator, storage: str, study_name: str,
                   space_config: dict[str, Any] | None, config: dict[str, Any] | None, weights: Any,
                   identity: dict[str, Any] | None = None) -> None:
    """``run.json`` (what :func:`nas.load` needs, and what defines the search) and ``config.yaml`` (the resolved config)."""
    meta = {"space": space.name, "study_name": study_name, "storage": storage, "space_config": space_config,
            "input_shape": list(estimator.input_shape), "num_classes": estimator.num_classes, "estimator": estimator.describe(),
            "strategy": strategy.name, "weights_store": str(weights.root) if weights is not None else None, "identity": identity}
    if space_config is None:  # a space object: kept so that nas.load and nas-leaderboard can rebuild it
        meta["space_pickle"] = _pickle_space(run_dir, space)
    atomic_write(run_dir / RUN_FILE, json.dumps(meta, indent=2))
    if config is not None:
        atomic_write(run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(config)))


def _pickle_space(run_dir: Path, space: SearchSpace) -> str | None:
    """``space.pickle`` in ``run_dir``; ``None`` (and a warning) for a space pickle cannot store (a local class, a lambda)."""
    import pickle
    import warnings

    try:
        data = pickle.dumps(space)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        warnings.warn(f"space '{space.name}' cannot be pickled ({exc}), so nas.load needs it passed again: "
                      "nas.load(run_dir, space=...). Define its class at module level to have it kept.", stacklevel=3)
        return None
    atomic_write(run_dir / SPACE_PICKLE, data)
    return SPACE_PICKLE


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
    costs: Sequence[str | Mapping[str, Any]] | None = None,
    constraints: Mapping[str, str] | None = None,
    objectives: str | Mapping[str, str] | None = None,
    reference: Sequence[float] | Mapping[str, float] | None = None,
    overrides: Sequence[str] = (),
    progress: bool = True,
    tensorboard: bool = True,
    callbacks: Sequence[Callback] = (),
) -> SearchResult:
    """Run a search and return its :class:`SearchResult`.

    Strings name configs (``configs/<group>/<name>.yaml``) exactly as on the command line; objects
    (a space, a strategy or Optuna sampler, a dataset, an estimator) are used as they are.
    ``overrides`` takes any further Hydra override, e.g. ``["estimator.lr=0.01"]``. ``pruner`` names a
    ``configs/pruner`` entry (``"successive_halving"``, ``"hyperband"``, ``"median"``, ``"lce"``) or is an
    Optuna pruner object.
    ``callbacks`` (:class:`nas.Callback`) observe the search besides the built-in ones.
    ``timeout`` (seconds) stops the search: no trial starts after it, and the running one is cut at
    its next report and scored on what it has; with ``trials=None`` the time alone is the budget.
    Re-running with the same ``out_dir`` resumes the study.
    ``costs`` (``["params", "macs", "latency"]``, or ``{"latency": {"repeats": 50}}`` items) are measured for each
    candidate before training and recorded; ``constraints`` (``{"params": "<=50000"}``) refuse a candidate
    whose costs break one before it is trained (recorded as failed, marked ``infeasible``, outside the budget).
    ``objectives`` (``{"val_accuracy": "max", "latency_ms": "min"}``) makes it a search for the Pareto front of
    those metrics (``result.pareto``, ``result.hypervolume()``, ``result.best_model(trial=n)``); ``reference``
    fixes the hypervolume's reference point (one value per objective), else it is derived once and kept.
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
    elif timeout is not None:
        ov.append("budget.trials=null")  # a time-only budget
    if epochs is not None:
        ov.append(f"estimator.epochs={epochs}")
    if timeout is not None:
        ov.append(f"budget.timeout={timeout}")
    ov += [f"seed={'null' if seed is None else seed}", f"progress={progress}", f"tensorboard={tensorboard}", *overrides]
    if storage is not None:
        ov.append(f"storage='{storage}'")
    cfg = compose(ov)
    given = {"costs": list(costs) if costs is not None else None, "constraints": dict(constraints) if constraints is not None else None,
             "objectives": dict(objectives) if isinstance(objectives, Mapping) else objectives,
             "reference": (dict(reference) if isinstance(reference, Mapping) else list(reference)) if reference is not None else None}
    if any(v is not None for v in given.values()):
        cfg = OmegaConf.merge(cfg, {k: v for k, v in given.items() if v is not None})  # type: ignore[assignment]
    run_dir = Path(out_dir) if out_dir is not None else Path("runs") / f"{datetime.now():%Y-%m-%d_%H-%M-%S}-{os.getpid()}"
    objects = {k: v for k, v in objects.items() if v is not None}
    return run_from_config(cfg, run_dir, pruner=pruner if isinstance(pruner, optuna.pruners.BasePruner) else None,
                           callbacks=callbacks, **objects)


class _UserEvaluated(Estimator):
    """The estimator of the ask/tell interface: the user trains and tells the score."""

    def evaluate(self, arch: Architecture, report: Any) -> Evaluation:
        raise TypeError("nas.Searcher: candidates are evaluated by the caller, who tells the score with Searcher.tell")


class Candidate:
    """One asked architecture in the ask/tell interface."""

    def __init__(self, trial: RunningTrial, space: SearchSpace, parent: TrialRecord | None, report: Any) -> None:
        self.trial, self.arch, self.space = trial, trial.arch, space
        self.number = trial.number
        self.parent = parent  # the trial this candidate was bred from (a strategy that inherits weights), else None
        self.started = time.perf_counter()
        self._report = report

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
        """Record an intermediate value with the trial; returns whether the pruner says stop."""
        return bool(self._report(step, value))

    def __repr__(self) -> str:
        return f"Candidate(#{self.number}, {self.arch})"


class Searcher:
    """Ask/tell search for users who run their own training loop: the ask and tell halves of the
    same search loop :func:`nas.search` runs.

    >>> searcher = nas.Searcher("macro_chain", "random", seed=0)
    >>> cand = searcher.ask()
    >>> model = cand.build((1, 8, 8), 10)        # train it your way
    >>> searcher.tell(cand, 0.97, metrics={"test_accuracy": 0.96})

    ``storage`` is an Optuna storage URL (see :func:`nas.search`); ``None`` keeps the study in memory.
    """

    def __init__(self, space: str | SearchSpace, strategy: str | Strategy | BaseSampler | Any = "random", *, seed: int | None = 0,
                 storage: str | None = None, study_name: str = "nas", pruner: optuna.pruners.BasePruner | None = None,
                 callbacks: Sequence[Callback] = ()) -> None:
        self.space = get_space(space) if isinstance(space, str) else space
        spec = compose([f"strategy={strategy}"]).strategy if isinstance(strategy, str) else strategy
        self.strategy = make_strategy(spec, self.space, seed)
        _, self.store = open_store(storage or "memory", run_dir=Path("."), space=self.space, study_name=study_name, pruner=pruner)
        self._loop = SearchLoop(space=self.space, strategy=self.strategy, estimator=_UserEvaluated(), store=self.store,
                                callbacks=callbacks)
        self._loop.open()

    @property
    def study(self) -> optuna.Study:
        return self.store.study

    def is_exhausted(self) -> bool:
        return self.strategy.is_exhausted(self.history())

    def history(self) -> list[TrialRecord]:
        return self.store.history()

    def ask(self) -> Candidate:
        history = self.history()
        if self.strategy.is_exhausted(history):
            raise StopIteration(f"strategy '{self.strategy.name}' has no new candidate left")
        trial = self._loop.ask(history)
        parent = self.store.record(trial.parent) if trial.parent is not None else None  # the parent's record alone
        return Candidate(trial, self.space, parent, TrialReporter(self._loop, trial))

    def tell(self, candidate: Candidate, score: float | None = None, *, metrics: Mapping[str, Any] | None = None,
             failed: str | None = None, pruned: bool = False) -> TrialRecord:
        """Record the outcome: a ``score`` (maximised), or ``failed="reason"``, or ``pruned=True``."""
        metrics = {"seconds": time.perf_counter() - candidate.started, **(metrics or {})}
        state, value, reason = TrialState.COMPLETE, score, None
        if failed is not None or (score is None and not pruned):
            state, value, reason = TrialState.FAILED, None, failed or "no score given"
        elif pruned:
            state, value = TrialState.PRUNED, None
        elif not math.isfinite(float(score)):  # type: ignore[arg-type]
            state, value, reason = TrialState.FAILED, None, f"score is {score}"
        outcome = Outcome(state=state, value=float(value) if value is not None else None, curve=list(candidate.trial.curve),
                          cost=float(metrics["seconds"]), metrics={k: v for k, v in metrics.items() if storable(v)}, reason=reason)
        return self._loop.tell(candidate.trial, outcome)

    @property
    def best(self) -> TrialRecord | None:
        self.history()
        return self.store.best()

    def close(self) -> None:
        """End the search: the callbacks' ``on_search_end`` runs (once). ``with nas.Searcher(...) as s:`` calls it."""
        self._loop.close()

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
