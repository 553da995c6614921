"""The Optuna trial store: the one module of nas that touches Optuna's storages and their internals.

One search is one Optuna study. Trials are written through the storage interface every Optuna
storage implements (``create_new_trial`` with a template, ``set_trial_user_attr``,
``set_trial_state_values``, ``set_trial_intermediate_value``): a new trial costs one write, a
finished one two, where ``study.ask`` plus a ``suggest`` per dimension and ``study.tell`` cost a
dozen (24 ms against about 4 ms per trial on SQLite, measured). Pruners get the study and the
stored trial exactly as ``Trial.should_prune`` gives them.

Private Optuna calls, each isolated here and pinned by ``tests/test_store.py`` (run against the
pinned and the oldest supported Optuna):

- ``RDBStorage._get_trials(study_id, states, included_trial_ids, trial_id_greater_than)`` (Optuna
  4.1+; 4.0 has ``_get_trials(study_id, states, excluded_trial_ids)``, detected at import): the
  incremental read Optuna's own ``_CachedStorage`` uses. With it, reading the history costs one
  query for the trials that changed, not a read of the whole study per trial (on 4.0 the query still
  lists every trial id, then loads only the changed trials).
- ``RDBStorage._create_new_trial(study_id, template_trial)``: creates the trial and returns it with
  its number (the public ``create_new_trial`` returns the id only, and the number costs a query).
- ``FrozenTrial._trial_id``: the storage's id of a trial read back (to finish a stale one).
- :func:`discard_last_trial`: removes a just-asked trial from a private in-memory study
  (``InMemoryStorage`` layout), for :class:`nas.SamplerStrategy`.
- :func:`genetic_generation`: the system attribute a genetic sampler (NSGA-II, NSGA-III) keeps each trial's
  generation under, and its population size (``BaseGASampler._get_generation_key()`` from Optuna 4.2;
  the samplers' module constant ``_GENERATION_KEY`` before; ``_population_size`` in both).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, InMemoryStorage, RDBStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState as OptunaState

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.records import Inheritance, TrialRecord, TrialState
from nas.store.base import Heartbeat, Lost, Outcome, RunningTrial, TrialStore
from nas.store.locks import file_lock

# Two user attributes per trial keep what Optuna's params do not; each is one write (an attribute
# costs a query and a flush on an RDB storage, so one per field would double a trial's cost).
TRIAL_ATTR = "nas:trial"         # {key, text, worker, parent, retry_of}: written with the trial
RESULT_ATTR = "nas:result"       # {curve, cost, fidelity, inheritance, metrics, reason, weights}: written once at finish
BEAT_ATTR = "nas:beat"           # the worker's last heartbeat (its clock, seconds since the epoch), where the storage has none
#: The reason of a trial failed by Optuna's RDB heartbeat check (which leaves no room to write one).
LOST_REASON = "lost: its worker stopped beating before the trial finished (heartbeat)"
# Written by nas before the trial lifecycle was one module; still read, so old run directories load.
LEGACY_KEY_ATTR, LEGACY_PARENT_ATTR, LEGACY_WORKER_ATTR = "nas:key", "nas:parent", "nas:worker"
LEGACY_METRICS_ATTR, LEGACY_REASON_ATTR, LEGACY_WEIGHTS_ATTR = "nas:metrics", "nas:fail_reason", "nas:weights"
#: User attribute prefix of a trial's objective vector at one step (nas.engine.pareto_halving reads it).
OBJECTIVE_VECTOR = "nas:objectives@"


def vector_attr(step: int) -> str:
    """The user attribute of a trial's objective vector at ``step``."""
    return f"{OBJECTIVE_VECTOR}{int(step)}"

DB_FILE = "study.db"
DEFAULT_STORAGE = "sqlite:///{run_dir}/" + DB_FILE
MEMORY = ("memory", ":memory:")
_SCHEMA_RACE_RETRIES = 5
_MAX_NAMED_IDS = 1000  # trial ids a read may name explicitly (running ones, and ones not yet read)


def _rdb_read_kind() -> str:
    """Which incremental read this Optuna's RDBStorage has: ``since`` (4.1+: ids above the last finished
    one plus the unfinished ones named) or ``excluding`` (4.0: all but the finished ids given)."""
    import inspect

    params = inspect.signature(RDBStorage._get_trials).parameters
    if "included_trial_ids" in params and "trial_id_greater_than" in params:
        return "since"
    if "excluded_trial_ids" in params:
        return "excluding"
    raise ImportError(f"nas.store: this Optuna ({optuna.__version__}) has no incremental RDB read nas knows "
                      f"(RDBStorage._get_trials{inspect.signature(RDBStorage._get_trials)}); use Optuna 4.0 to 5.0.")


_RDB_READ = _rdb_read_kind()

#: What a storage raises on a write to a finished trial (Optuna 4.0: a plain RuntimeError, "has already finished").
_FINISHED_ERROR: type[Exception] = getattr(optuna.exceptions, "UpdateFinishedTrialError", RuntimeError)

_TO_OPTUNA = {TrialState.COMPLETE: OptunaState.COMPLETE, TrialState.PRUNED: OptunaState.PRUNED, TrialState.FAILED: OptunaState.FAIL,
              TrialState.RUNNING: OptunaState.RUNNING, TrialState.WAITING: OptunaState.WAITING}
_FROM_OPTUNA = {v: k for k, v in _TO_OPTUNA.items()}
_LEGACY_INHERITANCE = ("parent", "inherited_fraction", "preservation_error", "morphism", "function_preserving",
                       "preservation_violated", "inheritance")


# ---- an unreachable database: retried with backoff ------------------------------------------------
#: Seconds between attempts while an RDB server is unreachable: doubling from half a second, at most 30.
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 30.0


#: A file storage (a journal) whose disk is full, over its quota or over the file size limit: it may have room again.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes (Optuna wraps a failed commit in StorageInternalError), each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def full(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was caused by, a write refused for want of room (:data:`FULL_ERRNOS`)."""
    return any(isinstance(e, OSError) and e.errno in FULL_ERRNOS for e in _chain(exc))


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached (a server gone, a dropped connection, a
    locked SQLite file) or had no room (a journal file on a full disk: :func:`full`, cut back to whole
    lines by :class:`nas.store.journal_file.JournalFile`), not that the request was wrong: SQLAlchemy's
    OperationalError or InterfaceError, or a DBAPI error that invalidated the connection, anywhere in
    its chain (Optuna wraps a failed commit in StorageInternalError)."""
    from sqlalchemy import exc as sa

    return full(exc) or any(isinstance(e, (sa.OperationalError, sa.InterfaceError))
                            or (isinstance(e, sa.DBAPIError) and e.connection_invalidated) for e in _chain(exc))


def release_lock(connection: Any, statement: Any, params: Mapping[str, Any]) -> None:
    """Give a server lock back on its own connection, and close that. A server that went away dropped the lock
    with the connection, so its errors are no failure here: neither the release's nor the close's (closing rolls
    back, which a dead connection cannot; it is invalidated instead). Any other error is raised."""
    try:
        connection.execute(statement, params)
    except Exception as exc:
        if not transient(exc):
            raise
    finally:
        try:
            connection.close()
        except Exception as exc:
            if not transient(exc):
                raise
            with contextlib.suppress(Exception):
                connection.invalidate()


def retried(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a store method again, with backoff, while its database is unreachable (:func:`transient`),
    saying so through the store's ``notify``; after the store's ``patience`` seconds the error is raised.
    A write is only ever repeated whole, so no partial or wrong result is recorded: a finish whose first
    attempt did reach the database reads back as the trial it finished, and a start whose first attempt
    did finds the trial it created (by the token it carries)."""
    import functools

    @functools.wraps(method)
    def wrapper(self: OptunaStore, *args: Any, **kwargs: Any) -> Any:
        if getattr(self._retrying, "on", False):  # an inner call of a retried method (this thread's): the outer one retries
            return method(self, *args, **kwargs)
        start, delay, trouble = time.monotonic(), _BACKOFF_FIRST, "unreachable"
        self._retrying.on = True
        try:
            while True:
                try:
                    result = method(self, *args, **kwargs)
                except Exception as exc:
                    waited = time.monotonic() - start
                    if not transient(exc) or waited + delay > self.patience:
                        raise
                    first = (str(exc.__cause__ or exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                    trouble = "full" if full(exc) else "unreachable"
                    self.notify(f"WARNING storage {self.description} {trouble} ({first}); retrying in {delay:g} s "
                                f"(waited {waited:.0f} s of {self.patience:g})")
                    time.sleep(delay)
                    delay = min(2 * delay, _BACKOFF_MAX)
                    continue
                if time.monotonic() - start > _BACKOFF_FIRST and delay > _BACKOFF_FIRST:
                    again = "writable" if trouble == "full" else "reachable"
                    self.notify(f"storage {self.description} {again} again after {time.monotonic() - start:.0f} s")
                return result
        finally:
            self._retrying.on = False

    return wrapper


# ---- opening a storage ------------------------------------------------------------------------
def lock_file_of(url: str | BaseStorage | None, run_dir: Path) -> str | None:
    """Where a file storage's budget lock is held (``<file>.start.lock``; for Optuna's gRPC proxy, which
    has no lock, the run directory's ``.start.lock``); ``None`` for an RDB server or memory."""
    if url is not None and not isinstance(url, str):
        return None
    resolved = (url or DEFAULT_STORAGE).replace("{run_dir}", str(run_dir.resolve()))
    for prefix in ("journal://", "sqlite:///"):
        if resolved.startswith(prefix) and resolved[len(prefix):] not in ("", ":memory:"):
            return resolved[len(prefix):] + ".start.lock"
    if resolved.startswith("grpc://"):  # the proxy holds no lock: exact among the workers of one run directory
        return str(run_dir.resolve() / ".start.lock")
    return None


#: How each database says that another process created the same table or version row first: SQLite's
#: "UNIQUE constraint failed", PostgreSQL's "duplicate key value violates unique constraint" and
#: "relation ... already exists", MySQL's and MariaDB's "Duplicate entry ... for key" (error 1062) and
#: "Table ... already exists" (1050).
_SCHEMA_RACE_WORDS = ("unique constraint", "already exists", "duplicate entry", "duplicate key")


def _lost_schema_race(text: str) -> bool:
    return any(words in text.lower() for words in _SCHEMA_RACE_WORDS)


def open_storage(url: str | BaseStorage | None, run_dir: Path, heartbeat: Heartbeat | None = None) -> tuple[str, BaseStorage]:
    """Resolve ``storage=`` to (the URL as recorded in run.json, the storage).

    ``None`` is an SQLite file in the run directory; ``"memory"`` Optuna's in-memory storage (nothing
    kept); ``journal:///path/file.log`` a journal file (several workers on one machine or a shared
    filesystem); ``grpc://host:port`` Optuna's gRPC storage proxy; any other ``dialect://...`` an RDB
    URL (PostgreSQL, MySQL, SQLite). ``{run_dir}`` in
    a URL is replaced by the run directory. A storage object is used as it is. With ``heartbeat`` an
    RDB storage beats through Optuna's own heartbeat (its stale trials collected by ``heartbeat``)."""
    if isinstance(url, BaseStorage):
        return type(url).__name__, url
    template = url or DEFAULT_STORAGE
    if template in MEMORY:
        return "memory", InMemoryStorage()
    resolved = template.replace("{run_dir}", str(run_dir.resolve()))
    if resolved.startswith("journal://"):
        return template, _journal(url, resolved[len("journal://"):])
    if resolved.startswith("grpc://"):
        return template, _grpc(url, resolved[len("grpc://"):])
    if "://" not in resolved:
        raise ConfigError(f"`storage` must be an Optuna storage URL such as 'sqlite:///path/study.db', 'journal:///path/study.log', "
                          f"'postgresql://user:pass@host/db' or 'memory', but got {url!r}.")
    for attempt in range(_SCHEMA_RACE_RETRIES + 1):
        try:
            storage = _rdb(resolved, heartbeat)
            if resolved.startswith("sqlite"):
                _fast_sqlite(storage)
            return template, storage
        except Exception as exc:  # SQLAlchemy raises many types for a bad URL or an unreachable server
            text = str(exc)
            # Workers started together on a new database race to create its tables: the loser retries and finds them made.
            if attempt < _SCHEMA_RACE_RETRIES and _lost_schema_race(text):
                time.sleep(0.2 * (attempt + 1))
                continue
            first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
            raise ConfigError(f"`storage` must be a reachable Optuna storage URL, but {url!r} failed: {first}") from exc
    raise AssertionError("unreachable")


def _rdb(url: str, heartbeat: Heartbeat | None) -> RDBStorage:
    # Connections of the pool are checked before use: after a database restart a stale one is replaced, not failed.
    engine = {"pool_pre_ping": True}
    if heartbeat is None:
        return optuna.storages.RDBStorage(url, heartbeat_interval=None, engine_kwargs=engine)
    import inspect
    import warnings

    # Optuna 4.0 names the stale-trial callback `failed_trial_callback`; 4.9+ `heartbeat_stale_trial_callback`.
    params = inspect.signature(RDBStorage.__init__).parameters
    callback = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in params else "failed_trial_callback"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat.interval, grace_period=heartbeat.grace, engine_kwargs=engine,
                                          **{callback: heartbeat.collect})  # type: ignore[arg-type]


def _journal(url: str | None, path: str) -> BaseStorage:
    from optuna.storages import JournalStorage

    from nas.store.journal_file import JournalFile

    if not path or path.endswith("/"):
        raise ConfigError(f"`storage` 'journal://' must name a file, as in 'journal:///path/to/study.log', but got {url!r}.")
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFile(path))
    except OSError as exc:
        raise ConfigError(f"`storage` must be a journal file that can be created and written, but {url!r} failed: {exc}") from exc


def _grpc(url: str | None, address: str) -> BaseStorage:
    """Optuna's gRPC storage proxy (``optuna.storages.run_grpc_proxy_server`` in front of any storage,
    run by the user), checked reachable now: a wrong address fails here, not in the first trial."""
    proxy = getattr(optuna.storages, "GrpcStorageProxy", None)
    if proxy is None:
        raise ConfigError(f"`storage` {url!r} needs Optuna's gRPC storage proxy (Optuna >= 4.2), but this is Optuna {optuna.__version__}.")
    host, _, port = address.rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"`storage` 'grpc://' must name a host and port, as in 'grpc://localhost:13000', but got {url!r}.")
    try:
        storage = proxy(host=host, port=int(port))
        storage.get_all_studies()
    except Exception as exc:  # grpc raises its own error types for a refused or unknown address
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"`storage` must be a reachable gRPC storage proxy, but {url!r} failed: {first}") from exc
    return storage


def _fast_sqlite(storage: RDBStorage) -> None:
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


def distribution(dim: Any) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution a dimension's values are stored under (the core knows no Optuna)."""
    from nas.core.dimensions import Categorical, Float, Integer

    if isinstance(dim, Categorical):
        return optuna.distributions.CategoricalDistribution(dim.choices)
    if isinstance(dim, Integer):
        return optuna.distributions.IntDistribution(dim.low, dim.high, log=dim.log, step=dim.step)
    if isinstance(dim, Float):
        return optuna.distributions.FloatDistribution(dim.low, dim.high, log=dim.log)
    raise TypeError(f"a dimension must be a nas.Categorical, Integer or Float, but got {type(dim).__name__}.")


# ---- the store --------------------------------------------------------------------------------
class OptunaStore(TrialStore):
    """A :class:`TrialStore` over one Optuna study (``study``, for pruners and for users)."""

    def __init__(self, storage: BaseStorage, *, space: Any, study_name: str = "nas", pruner: optuna.pruners.BasePruner | None = None,
                 description: str | None = None, create: bool = True, heartbeat: Heartbeat | None = None,
                 lock_file: str | None = None, patience: float = 600) -> None:
        super().__init__()
        if not create:
            try:
                storage.get_study_id_from_name(study_name)
            except KeyError:
                names = sorted(s.study_name for s in storage.get_all_studies())
                raise ConfigError(f"`study_name` must name a study in {description or type(storage).__name__}, but {study_name!r} is not "
                                  f"there (it holds: {', '.join(names) or 'none'}).") from None
        self.storage, self.space, self.heartbeat = storage, space, heartbeat
        self.lock_file = lock_file  # the file the budget lock is held on, for file storages (journal, SQLite)
        self.patience = float(patience)  # seconds an unreachable database is retried before its error is raised
        self._retrying = threading.local()  # whether this thread is inside a retried method
        self.description = description or type(storage).__name__
        self.pruner = pruner or optuna.pruners.NopPruner()
        self.prunes = not isinstance(self.pruner, optuna.pruners.NopPruner)
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress lines replace Optuna's
        try:
            self.study = _create_study(storage, study_name, self.pruner)
        finally:
            optuna.logging.set_verbosity(verbosity)
        self.study_name = study_name
        self.study_id = storage.get_study_id_from_name(study_name)
        self._ids: dict[int, int] = {}          # trial number -> storage trial id
        self._unfinished: set[int] = set()      # storage ids of trials read as unfinished
        self._last_finished = -1                # highest storage id read as finished
        self._beats: dict[int, float] = {}      # running trials whose worker beats -> their last beat (or start; journal)
        self._beat_seen: dict[int, float] = {}  # trial number -> when this process saw its beat change (its own clock)
        self._max_seen = -1                     # highest storage id created or read
        self._own_reads = False                 # whether this store's own finished trials are read back
        self._own_running: set[int] = set()     # numbers of this store's trials that it has not finished
        self._finished_ids: set[int] = set()    # storage ids of trials known finished (Optuna 4.0's read excludes them)
        self._dims = space.dimensions()

    # ---- writing ----------------------------------------------------------------------------
    def start(self, arch: Architecture, *, text: str, parent: int | None, worker: str | None) -> RunningTrial:
        info: dict[str, Any] = {"key": arch.key, "text": text, "worker": worker}
        if self.heartbeat is not None:
            info["beats"] = True  # its worker beats: it is waited for, or found lost
        if parent is not None:
            info["parent"] = int(parent)
        info["start"] = uuid.uuid4().hex[:16]  # names this start: a retried one finds the trial its first attempt created
        return self._start(arch, info, parent, worker, tried=[])

    @retried
    def _start(self, arch: Architecture, info: dict[str, Any], parent: int | None, worker: str | None, tried: list[bool]) -> RunningTrial:
        # Retried after an unreachable database: the first attempt's commit may have landed all the same
        # (the connection dropped before its answer). Then that trial is this one, not an orphan left RUNNING.
        landed = self._started_with(info["start"]) if tried else None
        tried.append(True)
        if landed is not None:
            trial_id, number = landed
        elif isinstance(self.storage, RDBStorage):  # the new trial's number with it: one query less (private; module docstring)
            created = self.storage._create_new_trial(self.study_id, template_trial=self._template(arch, info))
            trial_id, number = created._trial_id, created.number
        else:
            trial_id = self.storage.create_new_trial(self.study_id, template_trial=self._template(arch, info))
            number = self.storage.get_trial_number_from_id(trial_id)
        self._ids[number] = trial_id
        # Ids between the last one seen and ours are other workers' (or other studies') trials this
        # store has not read: named in the next read, so that ours need never be read back.
        gap = range(self._max_seen + 1, trial_id)
        if len(self._unfinished) + len(gap) <= _MAX_NAMED_IDS:
            self._unfinished.update(gap)
        else:
            self._own_reads = True  # too many to name in a query: read our own trials back instead
        self._unfinished.add(trial_id)
        self._own_running.add(number)
        self._max_seen = max(self._max_seen, trial_id)
        self._put(TrialRecord(number=number, arch=arch, state=TrialState.RUNNING, parent=parent, worker=worker))
        return RunningTrial(number=number, arch=arch, parent=parent, worker=worker, ref=trial_id)

    def _template(self, arch: Architecture, info: dict[str, Any]) -> FrozenTrial:
        return optuna.trial.create_trial(state=OptunaState.RUNNING, params=dict(arch.sample), user_attrs={TRIAL_ATTR: info},
                                         distributions={name: distribution(self._dims[name]) for name in arch.sample})

    def _started_with(self, token: str) -> tuple[int, int] | None:
        """(storage id, number) of the running trial whose start was named ``token``, if there is one."""
        for trial in self.storage.get_all_trials(self.study_id, deepcopy=False, states=(OptunaState.RUNNING,)):
            if _trial_info(trial.user_attrs).get("start") == token:
                return trial._trial_id, trial.number
        return None

    @retried
    def report(self, trial: RunningTrial, step: int, value: float, vector: Sequence[float | None] | None = None) -> bool:
        if not self.prunes and self.heartbeat is None:
            return False  # no pruner, one process: the curve is stored once, at finish, not one write per epoch
        if vector is not None and self.prunes:  # several objectives: what a Pareto pruner ranks the rung by
            self.storage.set_trial_user_attr(trial.ref, vector_attr(step), list(vector))
        self.storage.set_trial_intermediate_value(trial.ref, step, value)  # a lost trial keeps its curve
        if not self.prunes:
            return False
        # what Trial.should_prune hands the pruner: the study and the stored trial
        return bool(self.pruner.prune(self.study, self.storage.get_trial(trial.ref)))

    def accepted(self, trial: RunningTrial) -> float | None:
        check = getattr(self.pruner, "accepted", None)  # a pruner that can accept (nas.contrib.lce_scheduler)
        value = check(trial.number) if callable(check) else None
        return float(value) if isinstance(value, (int, float)) else None

    @retried
    def finish(self, trial: RunningTrial, outcome: Outcome) -> TrialRecord:
        bundle: dict[str, Any] = {"curve": list(outcome.curve), "metrics": dict(outcome.metrics)}
        for name in ("cost", "reason", "weights"):
            if getattr(outcome, name) is not None:
                bundle[name] = getattr(outcome, name)
        if outcome.fidelity:
            bundle["fidelity"] = dict(outcome.fidelity)
        if outcome.inheritance is not None:
            bundle["inheritance"] = outcome.inheritance.to_dict()
        complete = outcome.state is TrialState.COMPLETE
        try:
            self.storage.set_trial_user_attr(trial.ref, RESULT_ATTR, bundle)
            self.storage.set_trial_state_values(trial.ref, _TO_OPTUNA[outcome.state], [float(outcome.value)] if complete else None)  # type: ignore[arg-type]
        except _FINISHED_ERROR:  # another worker found it lost (a grace shorter than a pause) first
            return self._lost_meanwhile(trial)
        record = TrialRecord(number=trial.number, arch=trial.arch, state=outcome.state, value=outcome.value if complete else None,
                             metrics=dict(outcome.metrics), cost=outcome.cost, parent=trial.parent, reason=outcome.reason,
                             weights=outcome.weights, worker=trial.worker, curve=tuple(outcome.curve), fidelity=dict(outcome.fidelity),
                             inheritance=outcome.inheritance, retry_of=trial.retry_of)
        self._put(record)
        self._own_running.discard(trial.number)
        self._finished_ids.add(trial.ref)
        if not self._own_reads:  # every id up to ours is read or named in the next read (see start)
            self._unfinished.discard(trial.ref)
            self._last_finished = max(self._last_finished, trial.ref)
        return record

    def _lost_meanwhile(self, trial: RunningTrial) -> TrialRecord:
        """The stored record of our trial that another worker failed as lost while it ran (its retry runs it again)."""
        self._own_running.discard(trial.number)
        self._unfinished.add(trial.ref)
        self._refresh()
        record = self._records[trial.number]
        assert record is not None
        return record

    @retried
    def beat(self, trial: RunningTrial) -> None:
        if self.heartbeat is None:
            return
        if isinstance(self.storage, RDBStorage):
            self.storage.record_heartbeat(trial.ref)  # Optuna's heartbeat, on the database's clock
        else:
            self.storage.set_trial_user_attr(trial.ref, BEAT_ATTR, time.time())

    @retried
    def fail_running(self, lost: Callable[[TrialRecord], bool], reason: str, *, requeue: int) -> list[Lost]:
        found = []
        for record in self.history():
            if record.state is TrialState.RUNNING and record.number not in self._own_running and lost(record):
                found += self._lose(record.number, reason, requeue)
        return found

    @retried
    def fail_silent(self, *, requeue: int) -> list[Lost]:
        if self.heartbeat is None:
            return []
        if isinstance(self.storage, RDBStorage):  # Optuna's own check: fails them, and hands each to our callback
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)
            failed, self.heartbeat.found[:] = list(self.heartbeat.found), []
            for trial in failed:
                self._unfinished.add(trial._trial_id)  # read it back as failed
            return [self._requeue(trial.number, LOST_REASON, requeue) for trial in failed]
        found, now = [], time.time()
        for record in self.history():
            beat = self._beats.get(record.number)
            if record.state is TrialState.RUNNING and record.number not in self._own_running and beat is not None:  # it beats
                silent = now - beat
                # Silent by the beat's own time stamp and unchanged for the grace on this process's clock: a skewed
                # clock, or a storage that stalled every worker at once, does not make a live worker look dead.
                unchanged = time.monotonic() - self._beat_seen.get(record.number, time.monotonic())
                if silent > self.heartbeat.grace and unchanged > self.heartbeat.grace:
                    found += self._lose(record.number, f"lost: its worker {record.worker} stopped beating ({silent:.0f}s without a "
                                                         f"heartbeat)", requeue)
        return found

    def _lose(self, number: int, reason: str, requeue: int) -> list[Lost]:
        """Fail the lost trial ``number`` and re-queue it: ``[]`` when another process failed it first."""
        return [self._requeue(number, reason, requeue)] if self._fail(number, reason) else []

    def _fail(self, number: int, reason: str) -> bool:
        """Fail a lost trial, keeping its curve so far; whether this process did (not another first)."""
        trial_id = self._ids[number]
        trial = self.storage.get_trial(trial_id)
        if trial.state.is_finished():
            return False
        curve = [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]
        try:
            self.storage.set_trial_user_attr(trial_id, RESULT_ATTR, {"reason": reason, "curve": curve, "metrics": {}})
            done = self.storage.set_trial_state_values(trial_id, OptunaState.FAIL)
        except _FINISHED_ERROR:  # another worker failed it, or its own worker finished it, first
            done = False
        self._unfinished.add(trial_id)  # read it back as failed
        return done is not False

    @retried
    def requeue(self, number: int, reason: str, *, requeue: int) -> Lost:
        return self._requeue(number, reason, requeue)

    def _requeue(self, number: int, reason: str, requeue: int) -> Lost:
        """Queue the lost trial ``number`` to run again (same architecture), unless it has been ``requeue`` times."""
        trial = self.storage.get_trial(self._ids[number])
        info = dict(_trial_info(trial.user_attrs))
        if int(info.get("attempt", 1)) > requeue:
            self._refresh()
            return Lost(number=number, reason=reason)
        retry: dict[str, Any] = {k: info[k] for k in ("key", "text", "parent") if k in info}
        retry.update(retry_of=number, attempt=int(info.get("attempt", 1)) + 1, worker=None, beats=True)
        template = optuna.trial.create_trial(state=OptunaState.WAITING, params=dict(trial.params), distributions=dict(trial.distributions),
                                             user_attrs={TRIAL_ATTR: retry})
        trial_id = self.storage.create_new_trial(self.study_id, template_trial=template)
        self._unfinished.add(trial_id)
        self._refresh()
        return Lost(number=number, reason=reason, retry=self.storage.get_trial_number_from_id(trial_id))

    @retried
    def claim_waiting(self, worker: str | None) -> RunningTrial | None:
        for number in sorted(self._waiting):
            trial_id = self._ids[number]
            if not self.storage.set_trial_state_values(trial_id, OptunaState.RUNNING):  # another worker took it first
                self._unfinished.add(trial_id)
                continue
            trial = self.storage.get_trial(trial_id)
            info = {**_trial_info(trial.user_attrs), "worker": worker}
            self.storage.set_trial_user_attr(trial_id, TRIAL_ATTR, info)
            record = record_from_trial(trial, self.space)
            self._own_running.add(number)
            self._unfinished.add(trial_id)
            self._put(TrialRecord(number=number, arch=record.arch, state=TrialState.RUNNING, parent=record.parent, worker=worker,
                                  retry_of=record.retry_of))
            return RunningTrial(number=number, arch=record.arch, parent=record.parent, worker=worker, ref=trial_id,
                                retry_of=record.retry_of)
        return None

    # ---- reading ----------------------------------------------------------------------------
    @retried
    def _refresh(self) -> None:
        for trial in self._changed_trials():
            trial_id = trial._trial_id
            self._ids[trial.number] = trial_id
            self._max_seen = max(self._max_seen, trial_id)
            if trial.state.is_finished():
                self._unfinished.discard(trial_id)
                self._finished_ids.add(trial_id)
                self._last_finished = max(self._last_finished, trial_id)
            else:
                self._unfinished.add(trial_id)
            self._note_beat(trial)
            self._put(record_from_trial(trial, self.space))

    def _changed_trials(self) -> list[FrozenTrial]:
        if isinstance(self.storage, RDBStorage):  # one query for what changed (private; see the module docstring)
            read: Any = self.storage._get_trials  # its keywords depend on the Optuna version: checked at import, not by mypy
            if _RDB_READ == "since":  # Optuna >= 4.1: the unfinished ones named, and everything after the last finished
                included = {i for i in self._unfinished if i <= self._last_finished}
                return read(self.study_id, states=None, included_trial_ids=included, trial_id_greater_than=self._last_finished)
            # Optuna 4.0: everything but the finished ones already read (their ids are still listed by the query)
            return read(self.study_id, states=None, excluded_trial_ids=self._finished_ids)
        # Journal and in-memory storages: the trials not yet read (past the settled prefix, and new
        # numbers) and the running ones of other workers, each looked up by number; O(changed).
        changed = []
        number = self._settled
        while True:
            kept = self._records[number] if number < len(self._records) else None
            if kept is not None and (kept.finished or number in self._own_running):
                number += 1
                continue
            try:
                trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
            except KeyError:  # no such trial yet: everything after it is new too, so nothing more
                break
            trial = self.storage.get_trial(trial_id)
            if kept is None or trial.state is not OptunaState.RUNNING or kept.state is not TrialState.RUNNING:
                changed.append(trial)
            else:
                self._note_beat(trial)
            number += 1
        return changed

    def _note_beat(self, trial: FrozenTrial) -> None:
        """Keep which running trials beat, and their last beat (or start), for :meth:`fail_silent` and
        :meth:`others_running`. Trials of a worker that does not beat (an older nas, plain Optuna) are left alone."""
        if trial.state is OptunaState.RUNNING and _trial_info(trial.user_attrs).get("beats"):
            beat = trial.user_attrs.get(BEAT_ATTR)
            start = trial.datetime_start.timestamp() if trial.datetime_start is not None else None
            last = float(beat) if isinstance(beat, (int, float)) else (start if start is not None else time.time())
            if self._beats.get(trial.number) != last:
                self._beat_seen[trial.number] = time.monotonic()  # when this process saw it change
            self._beats[trial.number] = last
        else:
            self._beats.pop(trial.number, None)
            self._beat_seen.pop(trial.number, None)

    def others_running(self) -> list[int]:
        return sorted(n for n in self._beats if n not in self._own_running)

    @contextlib.contextmanager
    def budget_lock(self) -> Iterator[None]:
        """Held while a worker checks the budget and starts a trial, by every worker of the study on
        any host: a PostgreSQL advisory lock (MySQL: a named lock) on a connection of its own, which the
        server drops with the connection when the worker dies; a file lock next to a journal or SQLite
        file (the processes of one machine, or a file system that honours ``flock``)."""
        dialect = self.storage.engine.dialect.name if isinstance(self.storage, RDBStorage) else None
        if dialect in ("postgresql", "mysql"):
            from sqlalchemy import text

            assert isinstance(self.storage, RDBStorage)
            key = int.from_bytes(hashlib.sha1(f"nas:{self.study_name}".encode()).digest()[:8], "big", signed=True)
            # MySQL takes a negative timeout as "for ever", MariaDB refuses it (NULL, and only a warning): a year for both.
            take, give = (("SELECT pg_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)") if dialect == "postgresql" else
                          ("SELECT GET_LOCK(:name, 31536000)", "SELECT RELEASE_LOCK(:name)"))
            connection = self._take_budget_lock(text(take), {"key": key, "name": f"nas:{key}"})
            try:
                yield
            finally:
                release_lock(connection, text(give), {"key": key, "name": f"nas:{key}"})
        elif self.lock_file is not None:
            with file_lock(self.lock_file):
                yield
        else:  # in-memory: one process
            yield

    @retried
    def _take_budget_lock(self, statement: Any, params: Mapping[str, Any]) -> Any:
        assert isinstance(self.storage, RDBStorage)
        connection = self.storage.engine.connect()
        try:
            taken = connection.execute(statement, params).scalar()
            if connection.dialect.name == "mysql" and taken != 1:  # GET_LOCK: 1 taken, 0 timed out, NULL an error
                raise RuntimeError(f"the study's budget lock was not taken on {connection.dialect.name}: GET_LOCK gave {taken!r}")
        except BaseException:
            connection.close()
            raise
        return connection

    @retried
    def study_attrs(self) -> dict[str, Any]:
        return dict(self.storage.get_study_user_attrs(self.study_id))

    @retried
    def set_study_attr(self, key: str, value: Any) -> None:
        self.storage.set_study_user_attr(self.study_id, key, value)

    def close(self) -> None:
        if isinstance(self.storage, RDBStorage):
            self.storage.engine.dispose()


def _create_study(storage: BaseStorage, study_name: str, pruner: optuna.pruners.BasePruner) -> optuna.Study:
    for attempt in range(_SCHEMA_RACE_RETRIES + 1):
        try:
            return optuna.create_study(storage=storage, study_name=study_name, sampler=optuna.samplers.RandomSampler(seed=0),
                                       pruner=pruner, direction="maximize", load_if_exists=True)
        except optuna.exceptions.DuplicatedStudyError:  # another worker created it between the check and the insert
            if attempt == _SCHEMA_RACE_RETRIES:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def record_from_trial(trial: FrozenTrial, space: Any) -> TrialRecord:
    """The :class:`TrialRecord` of a stored trial (the current layout, or the one before it)."""
    dims = space.dimensions()
    sample = {name: trial.params[name] for name in dims if name in trial.params}
    attrs = trial.user_attrs
    info = _trial_info(attrs)
    arch = Architecture(space=space.name, sample=sample, key=info.get("key", ""))
    state = _FROM_OPTUNA.get(trial.state, TrialState.FAILED)
    bundle = attrs.get(RESULT_ATTR)
    if bundle is None and LEGACY_METRICS_ATTR in attrs:
        bundle = _legacy_bundle(attrs)
    bundle = bundle or {}
    cost = bundle.get("cost")
    if cost is None and trial.datetime_start and trial.datetime_complete:
        cost = (trial.datetime_complete - trial.datetime_start).total_seconds()
    curve = bundle.get("curve") or [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]
    inheritance = bundle.get("inheritance")
    reason = bundle.get("reason") or (LOST_REASON if state is TrialState.FAILED and not bundle else None)
    return TrialRecord(
        number=trial.number, arch=arch, state=state, value=trial.value if state is TrialState.COMPLETE else None,
        metrics=dict(bundle.get("metrics", {})), cost=cost, parent=info.get("parent"), reason=reason,
        weights=bundle.get("weights"), worker=info.get("worker"), curve=tuple(float(v) for v in curve),
        fidelity=dict(bundle.get("fidelity") or {}), inheritance=Inheritance.from_dict(inheritance) if inheritance else None,
        retry_of=info.get("retry_of"))


def _trial_info(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """What a trial was started with (key, text, worker, parent, retry_of, attempt, start), in either layout."""
    info = attrs.get(TRIAL_ATTR)
    if info is not None:
        return info
    return {"key": attrs.get(LEGACY_KEY_ATTR, ""), "worker": attrs.get(LEGACY_WORKER_ATTR), "parent": attrs.get(LEGACY_PARENT_ATTR)}


def _legacy_bundle(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Run directories written before one lifecycle kept a flat ``nas:metrics`` dict with magic keys."""
    metrics = dict(attrs.get(LEGACY_METRICS_ATTR, {}))
    bundle: dict[str, Any] = {"curve": metrics.pop("curve", []), "cost": metrics.pop("seconds", None),
                              "fidelity": metrics.pop("fidelity", {}), "reason": attrs.get(LEGACY_REASON_ATTR),
                              "weights": attrs.get(LEGACY_WEIGHTS_ATTR)}
    legacy = {k: metrics.pop(k) for k in _LEGACY_INHERITANCE if k in metrics}
    parent = legacy.get("parent", attrs.get(LEGACY_PARENT_ATTR))
    if parent is not None:
        bundle["inheritance"] = {"parent": parent, "morphism": legacy.get("morphism") if legacy.get("function_preserving") else None,
                                 "fraction": legacy.get("inherited_fraction"), "preservation_error": legacy.get("preservation_error"),
                                 "violated": bool(legacy.get("preservation_violated")), "note": legacy.get("inheritance")}
    bundle["metrics"] = metrics
    return bundle


def discard_last_trial(study: optuna.Study) -> bool:
    """Remove the trial just asked from a private in-memory study, leaving the storage exactly as
    before the ask (a RUNNING leftover would change what TPE proposes next). Uses the layout of
    Optuna's InMemoryStorage; returns False if that layout is absent (the caller then rebuilds)."""
    storage = study._storage
    try:
        info = storage._studies[study._study_id]  # type: ignore[attr-defined]
        trial = info.trials.pop()
        del storage._trial_id_to_study_id_and_number[trial._trial_id]  # type: ignore[attr-defined]
        storage._max_trial_id -= 1  # type: ignore[attr-defined]
    except (AttributeError, KeyError, IndexError):
        return False
    study._thread_local.cached_all_trials = None
    return True


def genetic_generation(sampler: Any) -> tuple[str, int] | None:
    """``(attribute, population size)`` of a genetic sampler (NSGA-II, NSGA-III): each trial's generation is kept
    in its system attributes under that name; ``None`` for any other sampler. Private (module docstring)."""
    key_of = getattr(type(sampler), "_get_generation_key", None)
    key = key_of() if callable(key_of) else getattr(sys.modules.get(type(sampler).__module__), "_GENERATION_KEY", None)
    size = getattr(sampler, "_population_size", None)
    if not isinstance(key, str) or isinstance(size, bool) or not isinstance(size, int):
        return None
    return key, size
