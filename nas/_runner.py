"""The search loop: ask the strategy through an Optuna study, evaluate, record, log, repeat."""

from __future__ import annotations

import json
import math
import os
import time
import traceback
from pathlib import Path
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

from nas._architecture import Architecture
from nas._errors import ConfigError
from nas._estimator import Estimator, ParentWeights
from nas._lineage import lineage_text
from nas._optuna_adapters import SamplerStrategy, StrategySampler
from nas._progress import Progress
from nas._records import METRICS_ATTR, PROCESS_ATTR, REASON_ATTR, WORKER_ATTR, TrialRecord, history_of, trial_attrs, worker_is_gone
from nas._results import BEST_DIR, RUN_FILE, SearchResult
from nas._space import SearchSpace
from nas._strategy import Strategy
from nas._tensorboard import SearchLog, TrialLog, arch_text
from nas._weights import make_weight_store

DB_FILE = "study.db"
DEFAULT_STORAGE = "sqlite:///{run_dir}/" + DB_FILE
_SCHEMA_RACE_RETRIES = 5


def open_storage(url: str | None, run_dir: Path) -> tuple[str, Any]:
    """Resolve ``storage=`` (None = SQLite file in the run directory) to (template, storage object)."""
    template = url or DEFAULT_STORAGE
    resolved = template.replace("{run_dir}", str(run_dir.resolve()))
    if "://" not in resolved:
        raise ConfigError(f"`storage` must be an Optuna storage URL such as 'sqlite:///path/study.db' or "
                          f"'postgresql://user:pass@host/db', but got {url!r}.")
    for attempt in range(_SCHEMA_RACE_RETRIES + 1):
        try:
            storage = optuna.storages.RDBStorage(resolved, heartbeat_interval=None)
            if resolved.startswith("sqlite"):
                _fast_sqlite(storage)
            return template, storage
        except Exception as exc:  # SQLAlchemy raises many types for a bad URL or an unreachable server
            text = str(exc)
            # Workers started together on a new database race to create its tables: the loser retries
            # and finds them made.
            if attempt < _SCHEMA_RACE_RETRIES and ("UNIQUE constraint" in text or "already exists" in text):
                time.sleep(0.2 * (attempt + 1))
                continue
            first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
            raise ConfigError(f"`storage` must be a reachable Optuna storage URL, but {url!r} failed: {first}") from exc
    raise AssertionError("unreachable")


def _fast_sqlite(storage: optuna.storages.RDBStorage) -> None:
    """WAL journal, fsync at checkpoints only: a commit costs well under a millisecond instead of
    several, and a crashed process still loses nothing it committed (only a power cut could)."""
    from sqlalchemy import event

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", on_connect)
    storage.engine.dispose()  # reconnect so every pooled connection gets the pragmas


class SearchRunner:
    """Runs one search: one Optuna study, one run directory. See :func:`nas.search` for the user API."""

    def __init__(self, *, space: SearchSpace, strategy: Strategy | BaseSampler, estimator: Estimator, run_dir: str | Path,
                 trials: int, storage: str | None = None, study_name: str = "nas", pruner: optuna.pruners.BasePruner | None = None,
                 timeout: float | None = None, progress: bool = True, tensorboard: bool = True,
                 space_config: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
                 weights: dict[str, Any] | None = None) -> None:
        if trials < 1:
            raise ConfigError(f"`budget.trials >= 1` must hold, but got trials={trials}.")
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress lines replace Optuna's
        self.space, self.strategy, self.estimator = space, strategy, estimator
        self.trials, self.timeout = trials, timeout
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.storage_template, storage_obj = open_storage(storage, self.run_dir)
        # One path for every strategy: an Optuna sampler instance runs through the Strategy contract.
        self.strategy = strategy = strategy if isinstance(strategy, Strategy) else SamplerStrategy(space, strategy)
        self.sampler = StrategySampler(strategy)
        # Trained weights are kept (Optuna's artifact store) when children will inherit them, or on request.
        self.weights = make_weight_store(weights, run_dir=self.run_dir, needed=strategy.inherits_weights and estimator.inherits_weights)
        self.study = optuna.create_study(storage=storage_obj, study_name=study_name, sampler=self.sampler, pruner=pruner or optuna.pruners.NopPruner(),
                                         direction="maximize", load_if_exists=True)
        self.progress = Progress(trials, enabled=progress)
        self.tb_root = self.run_dir / "tb"
        self.search_log = SearchLog(self.tb_root) if tensorboard else None
        self.tensorboard = tensorboard
        self._write_run_file(study_name, space_config, config)
        self._best_value = self._saved_best_value()
        self._best: TrialRecord | None = None
        self._finished_count = 0

    # ---- run directory -------------------------------------------------------------------------
    def _write_run_file(self, study_name: str, space_config: dict[str, Any] | None, config: dict[str, Any] | None) -> None:
        meta = {"space": self.space.name, "study_name": study_name, "storage": self.storage_template,
                "space_config": space_config, "input_shape": list(self.estimator.input_shape),
                "num_classes": self.estimator.num_classes, "estimator": self.estimator.describe(),
                "strategy": getattr(self.strategy, "name", type(self.strategy).__name__),
                "weights_store": str(self.weights.root) if self.weights is not None else None}
        _atomic_write(self.run_dir / RUN_FILE, json.dumps(meta, indent=2))
        if config is not None:
            from omegaconf import OmegaConf

            _atomic_write(self.run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(config)))

    def _saved_best_value(self) -> float:
        arch_file = self.run_dir / BEST_DIR / "arch.json"
        if arch_file.exists():
            return float(json.loads(arch_file.read_text()).get("score", -math.inf))
        return -math.inf

    def _save_best(self, record: TrialRecord, model: Any) -> None:
        import torch

        best_dir = self.run_dir / BEST_DIR
        best_dir.mkdir(exist_ok=True)
        from nas.datasets import save_preprocessing

        save_preprocessing(self.estimator, best_dir)  # raw inputs -> network input, for best_model() and predict()
        tmp = best_dir / "weights.pt.tmp"
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
        os.replace(tmp, best_dir / "weights.pt")
        info = {"trial": record.number, "score": record.value, "space": self.space.name, "key": record.arch.key,
                "sample": dict(record.arch.sample), "text": self.space.format(record.arch.sample),
                "metrics": dict(record.metrics), "fidelity": self.estimator.fidelity(), "input_shape": list(self.estimator.input_shape),
                "num_classes": self.estimator.num_classes}
        _atomic_write(best_dir / "arch.json", json.dumps(info, indent=2))

    def result(self) -> SearchResult:
        meta = json.loads((self.run_dir / RUN_FILE).read_text())
        return SearchResult(study=self.study, space=self.space, run_dir=self.run_dir, input_shape=tuple(self.estimator.input_shape),
                            num_classes=self.estimator.num_classes, meta=meta)

    # ---- the loop ------------------------------------------------------------------------------
    def _recover_stale(self) -> None:
        """Trials left RUNNING by a killed worker are marked failed: all of them in this run's own
        SQLite file; in a shared storage, those whose worker was a process of this machine that is gone
        (the others may belong to live workers)."""
        own = self.storage_template == DEFAULT_STORAGE
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if not own and not worker_is_gone(t.user_attrs.get(WORKER_ATTR), t.user_attrs.get(PROCESS_ATTR)):
                continue
            self.study._storage.set_trial_user_attr(t._trial_id, REASON_ATTR, "interrupted: the worker stopped before the trial finished")
            self.study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)

    def _finished(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)))

    def run(self) -> SearchResult:
        self._recover_stale()
        already = self._finished_count = self._finished()
        self._best = self._study_best()
        if already:
            self.progress.say(f"Resuming study '{self.study.study_name}' in {self.run_dir}: {already} trials already finished.")
        start = time.perf_counter()
        try:
            while True:
                history = history_of(self.study, self.space)
                if self.weights is not None:  # on the history the loop reads anyway: no extra storage round trip
                    self.weights.retain(history, self.strategy.alive(history))
                # running trials count too: with many workers, start no more than the budget
                if sum(r.state != "waiting" for r in history) >= self.trials:
                    break
                if self.timeout is not None and time.perf_counter() - start > self.timeout:
                    self.progress.say(f"Time budget of {self.timeout:.0f}s spent; stopping.")
                    break
                if self.strategy.is_exhausted(history):
                    self.progress.say(f"Strategy '{self.strategy.name}' has no new candidate left (space exhausted); stopping cleanly.")
                    break
                self._run_one(history)
        finally:
            self._close()
        return self.result()

    def _start_trial(self, history: list[TrialRecord]) -> tuple[optuna.Trial, Architecture, int | None]:
        """Create the next trial: the strategy is asked directly and the trial is written with its
        params, key and text form in one storage transaction (``study.ask`` plus a ``suggest`` per
        dimension would cost a transaction each)."""
        proposal = self.strategy.ask(history)
        parent = getattr(proposal, "parent", None)  # a nas.Child names the trial it was bred from
        arch = self.space.architecture(proposal)
        dims = self.space.dimensions()
        attrs = trial_attrs(self.space, arch, parent)
        template = optuna.trial.create_trial(
            state=TrialState.RUNNING, params=dict(arch.sample),
            distributions={name: dims[name].distribution() for name in arch.sample}, user_attrs=attrs,
        )
        trial_id = self.study._storage.create_new_trial(self.study._study_id, template_trial=template)
        self.sampler.preset(trial_id, dict(arch.sample))
        trial = optuna.Trial(self.study, trial_id)
        self.sampler.forget(trial_id)  # the params are stored; nothing will ask the sampler again
        return trial, arch, parent

    def _parent_weights(self, history: list[TrialRecord], parent: int | None) -> tuple[ParentWeights | None, str | None]:
        """The parent's trained weights for an estimator that inherits them, or why there are none."""
        if parent is None or self.weights is None or not self.estimator.inherits_weights:
            return None, None
        record = next((r for r in history if r.number == parent), None)
        state = self.weights.load(record) if record is not None else None
        if record is None or state is None:
            return None, f"parent #{parent} has no kept weights: trained from scratch"
        return ParentWeights(number=record.number, sample=dict(record.arch.sample), state=state), None

    def _run_one(self, history: list[TrialRecord]) -> None:
        trial, arch, parent = self._start_trial(history)
        log = TrialLog(self.tb_root, trial.number) if self.tensorboard else None
        parent_weights, no_inheritance = self._parent_weights(history, parent)

        curve: list[float] = []
        prunes = not isinstance(self.study.pruner, optuna.pruners.NopPruner)

        def report(step: int, value: float, **scalars: float) -> bool:
            curve.append(float(value))
            if log is not None:
                log.scalars(step, {"val/accuracy": value, **{f"train/{k}" if "loss" in k else k: v for k, v in scalars.items()}})
            if not prunes:
                return False  # no pruner: the curve is stored once with the metrics, not one write per epoch
            trial.report(value, step)
            return trial.should_prune()

        model, state, reason, metrics, value = None, TrialState.COMPLETE, None, {}, None
        try:
            evaluation = (self.estimator.evaluate(arch, report, parent=parent_weights) if parent_weights is not None  # type: ignore[call-arg]
                          else self.estimator.evaluate(arch, report))
            value, metrics, model = float(evaluation.score), {**evaluation.metrics, "curve": curve}, evaluation.model
            if no_inheritance:
                metrics["inheritance"] = no_inheritance
            if not math.isfinite(value):
                state, reason, value = TrialState.FAIL, f"score is {value}", None
        except optuna.TrialPruned as exc:
            state, reason = TrialState.PRUNED, str(exc) or "pruned"
            metrics = {**getattr(exc, "metrics", {}), "curve": curve}
        except KeyboardInterrupt:
            self._tell(trial, TrialState.FAIL, None, {}, "interrupted by the user (Ctrl-C)", log)
            raise
        except Exception as exc:  # a failing trial is recorded and the search goes on
            state, reason = TrialState.FAIL, f"{type(exc).__name__}: {exc}"
            metrics = {"traceback": traceback.format_exc(limit=-3)}
        record = self._tell(trial, state, value, metrics, reason, log, model=model)
        if record.value is not None and record.value > self._best_value and model is not None:
            self._best_value = record.value
            self._save_best(record, model)

    def _tell(self, trial: optuna.Trial, state: TrialState, value: float | None, metrics: dict[str, Any],
              reason: str | None, log: TrialLog | None, model: Any = None) -> TrialRecord:
        stored = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool, list))}
        fidelity = self.estimator.fidelity()
        if fidelity and state != TrialState.FAIL:
            stored["fidelity"] = fidelity
        if self.weights is not None and state == TrialState.COMPLETE and model is not None:
            try:
                self.weights.save(trial, model)  # while the trial runs: a finished trial takes no artifact record
            except OSError as exc:  # a full or unreachable store costs the children their head start, not the search
                stored["weights_error"] = f"weights not kept: {exc}"
        trial.set_user_attr(METRICS_ATTR, stored)
        if reason:
            trial.set_user_attr(REASON_ATTR, reason)
        # the strategy is told below; one storage write instead of study.tell's checks and re-reads
        self.study._storage.set_trial_state_values(trial._trial_id, state, [value] if state == TrialState.COMPLETE else None)
        record = TrialRecord.from_trial(self.study._storage.get_trial(trial._trial_id), self.space)
        self._finished_count += 1
        self.strategy.tell(record)
        if stored.get("preservation_violated"):
            self.progress.say(f"WARNING trial #{record.number}: the morphism {stored.get('morphism')!r} from #{record.parent} was expected "
                              f"to preserve the parent's function, but the outputs differ by {stored.get('preservation_error'):.2e} "
                              f"(relative) on the probe batch.")
        if record.value is not None and (self._best is None or record.value > self._best.value):  # type: ignore[operator]
            self._best = record
        if log is not None:
            log.finish(self.space, record, arch_text(self.space, record.arch, record))
        if self.search_log is not None:
            self.search_log.trial(record, self._best)
        self.progress.trial(record, self._finished_count, self._best)
        return record

    def _study_best(self) -> TrialRecord | None:
        try:
            best = self.study.best_trial
        except ValueError:
            return None
        return TrialRecord.from_trial(best, self.space)

    def _close(self) -> None:
        history = history_of(self.study, self.space)
        lineage = lineage_text(history) if any(r.parent is not None for r in history) else None
        if lineage is not None:
            _atomic_write(self.run_dir / "lineage.md", lineage + "\n")
        if self.search_log is not None:
            if lineage is not None:
                self.search_log.lineage(lineage)
            self.search_log.close()
        result = self.result()
        _atomic_write(self.run_dir / "leaderboard.md", result.leaderboard() + "\n")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
