"""Trial stores: the only part of nas that persists trials (and the only one that touches Optuna's storages).

:func:`open_store` turns a ``storage=`` setting into a store; :class:`TrialStore` is the contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from nas.store.base import Heartbeat, Lost, Outcome, RunningTrial, TrialStore
from nas.store.memory import MemoryStore
from nas.store.optuna_store import DEFAULT_STORAGE, OptunaStore, lock_file_of, open_storage, record_from_trial


def open_store(storage: str | optuna.storages.BaseStorage | None, *, run_dir: Path, space: Any, study_name: str = "nas",
               pruner: optuna.pruners.BasePruner | None = None, create: bool = True,
               heartbeat: Heartbeat | None = None, patience: float = 600) -> tuple[str, OptunaStore]:
    """The study named ``study_name`` in ``storage`` (see :func:`open_storage`), created if absent
    (``create``; else a missing study is an error); returns (the storage URL as recorded in run.json, the store)."""
    template, backend = open_storage(storage, run_dir, heartbeat)
    return template, OptunaStore(backend, space=space, study_name=study_name, pruner=pruner, description=template, create=create,
                                 heartbeat=heartbeat, lock_file=lock_file_of(storage, run_dir), patience=patience)


__all__ = ["DEFAULT_STORAGE", "Heartbeat", "Lost", "MemoryStore", "OptunaStore", "Outcome", "RunningTrial", "TrialStore", "open_store", "open_storage",
           "record_from_trial"]
