"""The one search loop: ask -> start -> evaluate (report goes to the trial) -> finish -> tell -> callbacks.

Every way of running a search goes through :class:`SearchLoop`: :func:`nas.search` and
``nas-search`` (:meth:`SearchLoop.run`), the ask/tell :class:`nas.Searcher` (:meth:`SearchLoop.ask`
and :meth:`SearchLoop.tell`), the NAS-Bench-201 benchmark and ``nas.testing`` (on a
:class:`~nas.store.MemoryStore`), and the fidelity check (:meth:`SearchLoop.step`). Read top to
bottom, like Optuna's ``_run_trial``: ask, call, classify the outcome, tell.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from nas._native_memory import give_back_freed_heap
from nas.core.errors import ConfigError, Infeasible
from nas.core.fronts import SCORE
from nas.core.objectives import judged_after_training
from nas.estimators.base import Estimator, Evaluation, ParentWeights
from nas.core.space import SearchSpace
from nas.core.strategy import Strategy
from nas.core.records import Inheritance, Proposal, TrialRecord, TrialState, as_proposal
from nas.core.workers import this_worker
from nas.engine.callbacks import Callback, CallbackList
from nas.engine.resume import StateFactory, TrialCheckpoints
from nas.store.base import Lost, Outcome, RunningTrial, TrialStore

INTERRUPTED = "interrupted by the user (Ctrl-C)"


@dataclass(frozen=True)
class WarmStart:
    """An architecture of another run to evaluate before the strategy proposes any (``origin``: ``"RUN_DIR#n"``),
    with its trained weights for an estimator that inherits them (``None``: trained from scratch)."""

    sample: Mapping[str, Any]
    origin: str
    weights: ParentWeights | None = None


@dataclass(frozen=True)
class Budget:
    """When a search stops: after ``trials`` trials in the study (running ones count, so many workers
    start no more than the budget; a resumed study counts those already finished), or ``timeout``
    seconds after this process started searching: no trial starts after it, and the running one is
    cut at the first report after it and scored on what it has (the training estimator: the epochs
    it trained, as ``max_seconds`` does). Either may be ``None``; not both."""

    trials: int | None = None
    timeout: float | None = None
    #: Candidates refused before training (a constraint broken) after which the search ends, saying the
    #: constraints leave too little of the space; ``None``: ten times ``trials``, at least 100.
    max_infeasible: int | None = None

    def __post_init__(self) -> None:
        if self.max_infeasible is not None and (isinstance(self.max_infeasible, bool) or not isinstance(self.max_infeasible, int)
                                                or self.max_infeasible < 1):
            raise ConfigError(f"`budget.max_infeasible` must be an integer >= 1 (or null: ten times the trials, at least 100), "
                              f"but got {self.max_infeasible!r}.")
        if self.trials is not None and (isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1):
            raise ConfigError(f"`budget.trials` must be an integer >= 1 (or null with a timeout), but got {self.trials!r}.")
        if self.timeout is not None and (isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float))
                                         or not self.timeout > 0):
            raise ConfigError(f"`budget.timeout` must be a number of seconds > 0 (or null), but got {self.timeout!r}.")
        if self.trials is None and self.timeout is None:
            raise ConfigError("`budget` must set `trials` or `timeout` (or both), but both are null: the search would never stop.")

    def infeasible_cap(self) -> int:
        """:attr:`max_infeasible`, or its default: ten times the trials, at least 100 (1000 with a time budget alone)."""
        if self.max_infeasible is not None:
            return self.max_infeasible
        return max(100, 10 * self.trials) if self.trials is not None else 1000


class TrialReporter:
    """The ``report`` an estimator gets for one trial: keeps the curve, tells the callbacks and the
    store (pruner), and says stop when the pruner does or the search's deadline has passed. With
    checkpoints (:mod:`nas.engine.resume`) it also saves the estimator's training state
    (:meth:`checkpoint`) and hands a re-run of a lost trial the state the lost one saved (:meth:`resume`)."""

    def __init__(self, loop: SearchLoop, trial: RunningTrial) -> None:
        self.loop, self.trial = loop, trial
        self._deadline_hit = False
        self._accepted: float | None = None
        self._steps: list[int] = []
        self._save_failed = False
        self._costs: dict[str, float] = {}

    def __call__(self, step: int, value: float, **scalars: float) -> bool:
        self.trial.curve.append(float(value))
        self._steps.append(int(step))
        self.loop.callbacks.on_report(self.trial, step, float(value), scalars)
        vector = self._vector(float(value), scalars) if self.loop.store.prunes else None  # only a pruner reads it
        if self.loop.store.report(self.trial, step, float(value), vector=vector):
            self._accepted = self.loop.store.accepted(self.trial)
            return True
        if self.loop.deadline is not None and time.perf_counter() >= self.loop.deadline:
            self._deadline_hit = True
            return True
        return False

    def deadline_passed(self) -> bool:
        return self._deadline_hit

    def accepted(self) -> float | None:
        """The value the pruner accepted the trial with when it said stop (``pruner=lce``), else ``None``."""
        return self._accepted

    def measured(self, costs: Mapping[str, float]) -> None:
        """The costs measured before training (a screened estimator says them): part of every objective vector."""
        self._costs = dict(costs)

    def _vector(self, value: float, scalars: Mapping[str, float]) -> list[float | None] | None:
        """With several objectives, each one's value at this report: the score, a reported scalar, or a cost."""
        objectives = self.loop.strategy.objectives if self.loop.strategy is not None else ()
        if len(objectives) < 2:
            return None
        score = getattr(self.loop.estimator, "score_metric", None)
        found = {**self._costs, **{k: float(v) for k, v in scalars.items() if isinstance(v, (int, float))}}
        return [value if o.metric in (SCORE, score) else found.get(o.metric) for o in objectives]

    def checkpoint(self, step: int, state: StateFactory) -> None:
        """Save ``state()`` (the estimator's training state after report ``step``) when a checkpoint is
        due. A save that fails (a full disk) costs a re-run its head start, not the trial: said once."""
        saver = self.loop.checkpoints
        if saver is None or not saver.due(self.trial.number):
            return
        try:
            saver.save(self.trial.number, {"estimator": state(), "curve": list(self.trial.curve), "steps": list(self._steps),
                                           "step": int(step)})
        except OSError as exc:
            if not self._save_failed:
                self.loop.say(f"WARNING trial #{self.trial.number}: checkpoint not saved ({exc}); a re-run would start from scratch")
            self._save_failed = True

    def resume(self) -> Mapping[str, Any] | None:
        """For a re-run of a lost trial: the estimator's state the lost trial (or the one it re-ran) saved
        last, its curve so far restored to this trial; ``None`` when there is none (start from scratch)."""
        saver = self.loop.checkpoints
        if saver is None:
            return None
        for number in self.loop.rerun_of(self.trial):
            saved = saver.load(number)
            if saved is not None and "estimator" in saved:
                curve, steps = [float(v) for v in saved.get("curve", [])], [int(s) for s in saved.get("steps", [])]
                self.trial.curve[:] = curve
                self._steps[:] = steps
                for step, value in zip(steps, curve):  # the pruner of a shared study sees the whole curve
                    self.loop.store.report(self.trial, step, value)
                self.trial.resumed = {"resumed_from": number, "resumed_steps": len(curve)}
                return saved["estimator"]
        return None


class SearchLoop:
    """Runs one search over ``store``. See the module docstring for who calls which method.

    ``strategy`` may be ``None`` when every trial is given its architecture (``step(proposal=...)``,
    as the fidelity check does)."""

    def __init__(self, *, space: SearchSpace, strategy: Strategy | None, estimator: Estimator, store: TrialStore,
                 budget: Budget | None = None, callbacks: Iterable[Callback] = (), weights: Any = None,
                 run_dir: Path | None = None, recover_stale: str | None = None, shared_run_dir: bool = False,
                 requeue: int = 1, replaces: str | None = None, checkpoints: TrialCheckpoints | None = None,
                 warm_start: Sequence[WarmStart] = ()) -> None:
        self.space, self.strategy, self.estimator, self.store = space, strategy, estimator, store
        store.notify = self.say  # the store's warnings (a database retried) go where ours go
        self.shared_run_dir = shared_run_dir  # other local workers search in run_dir too (workers=N, nas-worker)
        self.budget = budget
        self.callbacks = CallbackList(callbacks)
        self.weights, self.run_dir = weights, run_dir
        self.recover_stale = recover_stale  # None | "own" (every running trial is ours) | "shared"
        self.requeue = requeue  # times a lost trial (its worker died) is run again
        self.replaces = replaces  # the dead worker ("host:pid") this process replaces: its running trials are lost
        self._checked_lost = -math.inf
        self.checkpoints = checkpoints  # training state of running trials, for re-runs of lost ones
        self.worker = this_worker()
        self.started_at: float | None = None
        self.deadline: float | None = None
        self.stop_reason: str | None = None
        self._open = False
        self._in_flight: RunningTrial | None = None  # started in the store and not yet finished there
        self._in_flight_since = 0.0
        self.warm_start = list(warm_start)  # another run's architectures, evaluated first (their weights inherited)
        self._warm: dict[int, WarmStart] = {}  # trial number -> the warm start it runs

    # ---- the whole search -----------------------------------------------------------------
    def run(self, *, close: bool = True) -> list[TrialRecord]:
        """Trials until the budget is spent or the strategy has nothing new; returns the history.
        ``close=False`` leaves ``on_search_end`` to a later :meth:`close` (unless the loop raises)."""
        if self.budget is None:
            raise ConfigError("SearchLoop.run needs a `budget` (trials and/or timeout).")
        self.open()
        try:
            with self._failing_the_trial_in_flight():
                self._run_trials()
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return self.store.history()

    def _run_trials(self) -> None:
        """:meth:`run`'s loop: trials until the budget is spent or the strategy has nothing new."""
        waiting = False
        while True:
            with self.start_lock():  # workers sharing the study: one checks the budget and starts at a time
                self.check_lost()
                history = self.store.history()
                self.stop_reason, expected = self._stop_reason(history)
                trial: RunningTrial | None = None
                if self.stop_reason is None:
                    trial = self.ask(history)
                elif expected:  # a re-queued trial is inside the budget spent: still run
                    trial = self._claim()
            if trial is None and expected and self._wait_for_others(waiting):
                waiting = True
                continue
            if trial is None:
                if not expected:  # the trial budget spent is the expected end: no line for it
                    self.say(self.stop_reason or "")
                break
            self._evaluate_and_tell(trial)

    @contextlib.contextmanager
    def _failing_the_trial_in_flight(self) -> Any:
        """Ctrl-C anywhere in a trial (asked, started, training, being told): the trial the store holds RUNNING
        is failed as interrupted and queued to run again, so re-running the search resumes it."""
        try:
            yield
        except KeyboardInterrupt:
            if self._in_flight is not None:
                trial = self._in_flight
                self.tell(trial, Outcome(state=TrialState.FAILED, reason=INTERRUPTED, curve=list(trial.curve),
                                         cost=time.perf_counter() - self._in_flight_since), None, rerun=True)
            raise

    def _wait_for_others(self, said: bool) -> bool:
        """With the trial budget spent, whether to wait for other workers' running trials (each ends,
        or is found lost and re-queued for whoever is left); sleeps a poll when so."""
        others = self.store.others_running()  # empty without a heartbeat
        if not others:
            return False
        if not said:
            self.say(f"Trial budget spent; waiting for trial(s) {', '.join(f'#{n}' for n in others)} of other workers to finish "
                     "(or be found lost and run again).")
        time.sleep(1.0)
        return True

    def start_lock(self) -> Any:
        """Held while the budget is checked and a trial started, when other workers share the study
        (``shared_run_dir``, or a heartbeat): the store's budget lock, so they never start more than
        the budget between them (:meth:`TrialStore.budget_lock`); else nothing."""
        if self.shared_run_dir or self.store.heartbeat is not None:
            return self.store.budget_lock()
        return contextlib.nullcontext()

    def open(self, announce: bool = True) -> None:
        """Recover stale trials, start the clock, and call ``on_search_start``; ``announce`` says when
        the study is resumed."""
        if self._open:
            return
        self._open = True
        if self.recover_stale == "own":  # one process on its own study: whatever was left running is lost
            self._announce_lost(self.store.fail_running(lambda record: True, "interrupted: the worker stopped before the trial finished",
                                                        requeue=self.requeue))
        if self.replaces is not None:
            dead = self.replaces
            self._announce_lost(self.store.fail_running(lambda record: record.worker == dead, f"lost: its worker {dead} died",
                                                        requeue=self.requeue))
        if self.recover_stale is not None:
            self.check_lost(force=True)
        already = sum(r.finished for r in self.store.history())
        if already and self.run_dir is not None and announce:
            self.say(f"Resuming study '{getattr(self.store, 'study_name', 'nas')}' in {self.run_dir}: {already} trials already finished.")
        self.started_at = time.perf_counter()
        if self.budget is not None and self.budget.timeout is not None:
            self.deadline = self.started_at + float(self.budget.timeout)
        self.callbacks.on_search_start(self)

    def check_lost(self, force: bool = False) -> None:
        """Fail (and re-queue) the trials whose worker stopped beating: at most once a heartbeat interval."""
        heartbeat = self.store.heartbeat
        if heartbeat is None or (not force and time.monotonic() - self._checked_lost < heartbeat.interval):
            return
        self._checked_lost = time.monotonic()
        self._announce_lost(self.store.fail_silent(requeue=self.requeue))

    def rerun_of(self, trial: RunningTrial) -> list[int]:
        """The lost trials ``trial`` runs again, nearest first (a re-run of a re-run names both)."""
        numbers: list[int] = []
        number = trial.retry_of
        while number is not None and number not in numbers and number != trial.number:
            numbers.append(number)
            record = self.store.record(number)
            number = record.retry_of if record is not None else None
        return numbers

    def _announce_lost(self, lost: list[Lost]) -> None:
        for trial in lost:
            if trial.retry is None and self.checkpoints is not None:
                self.checkpoints.remove(trial.number)  # nobody will resume it
            again = f"; re-queued as #{trial.retry}" if trial.retry is not None else "; not re-queued (its retries are spent)"
            self.say(f"Trial #{trial.number} failed ({trial.reason}){again}.")

    def close(self) -> None:
        """Call ``on_search_end`` (once)."""
        if not self._open:
            return
        self._open = False
        self.callbacks.on_search_end(self.store.history())

    def _stop_reason(self, history: Sequence[TrialRecord]) -> tuple[str | None, bool]:
        """Why the search stops now (``None``: it goes on), and whether that is the expected end."""
        assert self.budget is not None
        started = self.store.in_budget()
        if self.budget.trials is not None and started >= self.budget.trials:
            return f"Trial budget of {self.budget.trials} spent.", True
        refused, cap = self.store.infeasible_count(), self.budget.infeasible_cap()
        if refused >= cap:
            return (f"{refused} candidates broke the constraints before training (the cap, budget.max_infeasible, is {cap}); "
                    "they leave too little of the space: loosen them, or raise the cap. Stopping."), False
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            return f"Time budget of {self.budget.timeout:g}s spent; stopping.", False
        if self.strategy is not None and self.strategy.is_exhausted(history):
            return f"Strategy '{self.strategy.name}' has no new candidate left (space exhausted); stopping cleanly.", False
        return None, False

    def say(self, text: str) -> None:
        self.callbacks.on_message(text)

    # ---- one trial --------------------------------------------------------------------------
    def step(self, history: Sequence[TrialRecord] | None = None, *, proposal: Proposal | None = None) -> TrialRecord:
        """Ask (or take ``proposal``), evaluate and tell one trial."""
        with self._failing_the_trial_in_flight():
            return self._evaluate_and_tell(self.ask(history, proposal=proposal))

    def _evaluate_and_tell(self, trial: RunningTrial) -> TrialRecord:
        with self._beating(trial):
            evaluation, outcome = self.evaluate(trial)
        return self.tell(trial, outcome, evaluation)

    @contextlib.contextmanager
    def _beating(self, trial: RunningTrial) -> Any:
        """A thread that beats for ``trial`` every heartbeat interval while it is evaluated (with a heartbeat)."""
        heartbeat = self.store.heartbeat
        if heartbeat is None:
            yield
            return
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(heartbeat.interval):
                try:
                    self.store.beat(trial)
                except Exception as exc:  # a storage hiccup costs a beat, not the trial; the grace spans several
                    self.say(f"WARNING trial #{trial.number}: heartbeat not recorded ({type(exc).__name__}: {exc})")

        thread = threading.Thread(target=beat, name=f"nas-heartbeat-{trial.number}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def ask(self, history: Sequence[TrialRecord] | None = None, *, proposal: Proposal | None = None) -> RunningTrial:
        """Take a re-queued trial, else ask the strategy (unless ``proposal`` is given), and create the
        trial in the store (RUNNING)."""
        if proposal is None and (claimed := self._claim()) is not None:
            return claimed
        warm = None
        if proposal is None:
            history = self.store.history() if history is None else history
            warm = self._next_warm_start(history)
            if warm is not None:
                proposal = Proposal(warm.sample)
            elif self.strategy is None:
                raise ValueError("SearchLoop.ask: a loop without a strategy must be given each trial's `proposal`.")
            else:
                proposal = as_proposal(self.strategy.ask(history))
        arch = self.space.architecture(proposal.sample)
        trial = self.store.start(arch, text=self.space.format(arch.sample), parent=proposal.parent, worker=self.worker)
        if warm is not None:
            self._warm[trial.number] = warm
        self._in_flight, self._in_flight_since = trial, time.perf_counter()
        self.store.beat(trial)  # at once: a trial without a beat is never found lost by Optuna's RDB check
        self.callbacks.on_trial_start(trial)
        return trial

    def _next_warm_start(self, history: Sequence[TrialRecord]) -> WarmStart | None:
        """The first warm start whose architecture the study has not tried (a resumed search skips those it ran)."""
        tried = {r.arch.key for r in history}
        while self.warm_start:
            warm = self.warm_start.pop(0)
            if self.space.key(warm.sample) not in tried:
                return warm
        return None

    def _claim(self) -> RunningTrial | None:
        """A re-queued trial (a lost one to run again), taken for this worker, or ``None``."""
        claimed = self.store.claim_waiting(self.worker)
        if claimed is not None:
            self._in_flight, self._in_flight_since = claimed, time.perf_counter()
            self.store.beat(claimed)
            self.callbacks.on_trial_start(claimed)
        return claimed

    def evaluate(self, trial: RunningTrial) -> tuple[Evaluation | None, Outcome]:
        """Run the estimator on ``trial`` and classify how it ended. Ctrl-C is raised: :meth:`run` and
        :meth:`step` fail the trial as interrupted (nothing is left RUNNING)."""
        parent, note = self._parent_weights(trial)
        report = TrialReporter(self, trial)
        start = time.perf_counter()
        try:
            evaluation = (self.estimator.evaluate(trial.arch, report, parent=parent) if parent is not None  # type: ignore[call-arg]
                          else self.estimator.evaluate(trial.arch, report))
        except optuna.TrialPruned as exc:
            metrics = dict(getattr(exc, "metrics", {}) or {})
            reason = str(exc) or "pruned"
            if report.deadline_passed():
                reason = f"stopped at the search's time budget ({reason})"
            return None, self._outcome(trial, TrialState.PRUNED, None, metrics, start, reason=reason,
                                       inheritance=getattr(exc, "inheritance", None), note=note)
        except Infeasible as exc:  # its costs broke a constraint: never trained, kept with what was measured
            return None, self._outcome(trial, TrialState.FAILED, None, {**exc.metrics, "seconds": exc.metrics.get("cost_seconds")},
                                       start, reason=str(exc), note=note)
        except Exception as exc:  # a failing trial is recorded and the search goes on
            return None, self._outcome(trial, TrialState.FAILED, None, {"traceback": traceback.format_exc(limit=-3)}, start,
                                       reason=f"{type(exc).__name__}: {exc}", note=note)
        value = float(evaluation.score)
        accepted = report.accepted()
        if accepted is not None:  # stopped early and accepted: the pruner's value is its score (module lce_scheduler)
            value = accepted
            evaluation.metrics.update(accepted_at_epoch=len(trial.curve), accepted_value=value)
        if not math.isfinite(value):
            return evaluation, self._outcome(trial, TrialState.FAILED, None, evaluation.metrics, start, reason=f"score is {value}",
                                             inheritance=evaluation.inheritance, note=note)
        metrics = dict(evaluation.metrics)
        try:  # the callbacks' figures of the trained network, then the constraints only training could judge
            metrics.update(self.callbacks.measure(trial, evaluation))
        except Exception as exc:  # noqa: BLE001 - the trial fails with the reason; the search goes on
            return evaluation, self._outcome(trial, TrialState.FAILED, None, {**metrics, "traceback": traceback.format_exc(limit=-3)},
                                             start, reason=f"callback measure: {type(exc).__name__}: {exc}", note=note)
        metrics.update(judged_after_training(self.estimator.constraints_after_training(), {SCORE: value, **metrics}))
        return evaluation, self._outcome(trial, TrialState.COMPLETE, value, metrics, start,
                                         inheritance=evaluation.inheritance, note=note)

    def _outcome(self, trial: RunningTrial, state: TrialState, value: float | None, metrics: Mapping[str, Any], start: float, *,
                 reason: str | None = None, inheritance: Inheritance | None = None, note: str | None = None) -> Outcome:
        extras = {k: v for k, v in {**metrics, **trial.resumed}.items() if k != "curve" and storable(v)}
        warm = self._warm.get(trial.number)
        if warm is not None:
            extras["warm_start"] = warm.origin  # the run and trial it came from
        cost = metrics.get("seconds")
        if inheritance is None and note is not None and trial.parent is not None:
            inheritance = Inheritance(parent=trial.parent, note=note)
        return Outcome(state=state, value=value, curve=list(trial.curve),
                       cost=float(cost) if isinstance(cost, (int, float)) else time.perf_counter() - start,
                       fidelity=self.estimator.fidelity(), inheritance=inheritance, metrics=extras, reason=reason)

    def tell(self, trial: RunningTrial, outcome: Outcome, evaluation: Evaluation | None = None, *, rerun: bool = False) -> TrialRecord:
        """Finish ``trial`` in the store, tell the strategy, then the callbacks. ``rerun``: queue it to
        run again (up to :attr:`requeue` times, as a lost trial), its checkpoints kept for the re-run."""
        model = evaluation.model if evaluation is not None else None
        if self.weights is not None and outcome.state is TrialState.COMPLETE and model is not None:
            outcome = self._keep_weights(trial, outcome, model)
        record = self.store.finish(trial, outcome)
        if self._in_flight is not None and self._in_flight.number == trial.number:
            self._in_flight = None
        retry = self.store.requeue(trial.number, outcome.reason or "", requeue=self.requeue).retry if rerun else None
        if retry is not None:
            self.say(f"Trial #{trial.number} {outcome.reason}: queued to run again as #{retry} when the search is resumed.")
        elif self.checkpoints is not None:
            self.checkpoints.remove(trial.number, *self.rerun_of(trial))  # it and what it re-ran: nobody resumes them now
        if self.strategy is not None:
            self.strategy.tell(record)
        if record.inheritance is not None and record.inheritance.violated:
            self.say(f"WARNING trial #{record.number}: the morphism {record.inheritance.morphism!r} from #{record.parent} was expected "
                     f"to preserve the parent's function, but the outputs differ by {record.inheritance.preservation_error:.2e} "
                     f"(relative) on the probe batch.")
        self.callbacks.on_trial_end(record, evaluation)
        give_back_freed_heap()  # what the trial freed, to the system (at most every 10 s: nas/_native_memory.py)
        return record

    # ---- weights ----------------------------------------------------------------------------
    def _keep_weights(self, trial: RunningTrial, outcome: Outcome, model: Any) -> Outcome:
        from dataclasses import replace

        try:
            return replace(outcome, weights=self.weights.save(trial.number, model))
        except OSError as exc:  # a full or unreachable store costs the children their head start, not the search
            return replace(outcome, metrics={**outcome.metrics, "weights_error": f"weights not kept: {exc}"})

    def _parent_weights(self, trial: RunningTrial) -> tuple[ParentWeights | None, str | None]:
        """The parent's trained weights for an estimator that inherits them, or why there are none."""
        warm = self._warm.get(trial.number)
        if warm is not None and warm.weights is not None and self.estimator.inherits_weights:
            return warm.weights, None
        if trial.parent is None or self.weights is None or not self.estimator.inherits_weights:
            return None, None
        record = self.store.record(trial.parent)
        state = self.weights.load(record) if record is not None else None
        if record is None or state is None:
            return None, f"parent #{trial.parent} has no kept weights: trained from scratch"
        return ParentWeights(number=record.number, sample=dict(record.arch.sample), state=state), None


def storable(value: Any) -> bool:
    """Metrics kept with a trial are numbers, text, flags and lists of them (tensors, models and
    nested tables stay out of the stored JSON)."""
    if isinstance(value, (int, float, str, bool)):
        return True
    return isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, str, bool)) for v in value)


def run_in_memory(strategy: Strategy, estimator: Estimator, evaluations: int,
                  history: list[TrialRecord] | None = None) -> list[TrialRecord]:
    """Ask, evaluate and tell ``evaluations`` more times on a :class:`~nas.store.MemoryStore`: the same
    search loop as :func:`nas.search`, without a study, for table estimators where a storage round
    trip would cost more than the lookup (benchmarks of strategies over many seeds).

    Continues ``history`` when given. Failed lookups are recorded as failed trials; stops early if
    the strategy is exhausted.
    """
    from nas.store.memory import MemoryStore

    history = list(history or [])
    if evaluations < 1:
        return history
    loop = SearchLoop(space=strategy.space, strategy=strategy, estimator=estimator, store=MemoryStore(history),
                      budget=Budget(trials=len(history) + evaluations))
    return loop.run()
