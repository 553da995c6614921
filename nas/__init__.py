"""nas: neural architecture search for PyTorch.

Spaces are declared in YAML, explored by interchangeable strategies, scored by estimators, and
stored in an Optuna study. Start with :func:`search`, :class:`Searcher` or :func:`get_space`.
"""

from __future__ import annotations

from nas._native_memory import bound_native_caches

bound_native_caches()  # before torch runs its first convolution: see nas/_native_memory.py

from nas._api import Candidate, Searcher, run_from_config, search
from nas.core.architecture import Architecture
from nas._config import available, get_space
from nas.core.dimensions import Categorical, Float, Integer
from nas.core.errors import ConfigError, InvalidSampleError, NASError, TrialFailed
from nas.estimators.base import Estimator, Evaluation
from nas._results import SearchResult, load
from nas.core.space import Inherited, Morph, SearchSpace
from nas.core.strategy import Strategy
from nas.core.records import Child, Inheritance, Proposal, TrialRecord, TrialState
from nas.engine.callbacks import Callback
from nas.store.adapters import SamplerStrategy, StrategySampler
from nas.estimators.table import TableEstimator
from nas.estimators.training import TrainingEstimator
from nas.datasets import DataSplits, Preprocessing
from nas.estimators.zero_cost import ZeroCostEstimator

__all__ = [
    "Architecture", "Callback", "Candidate", "Categorical", "Child", "ConfigError", "DataSplits", "Estimator", "Evaluation", "Float",
    "Inheritance", "Integer", "Inherited", "InvalidSampleError", "LearningCurvePruner", "LearningCurveScheduler", "Morph", "NASError", "Preprocessing", "Proposal", "SamplerStrategy",
    "SearchResult", "SearchSpace", "Searcher", "Strategy", "StrategySampler", "TableEstimator", "TrainingEstimator", "TrialFailed",
    "TrialRecord", "TrialState", "ZeroCostEstimator", "audit", "available", "monitor", "get_space", "load", "run_from_config", "search",
]
__version__ = "0.1.0"


def audit(result: object, **settings: object) -> object:
    """Audit the top candidates of a search against baselines: see :func:`nas.model_audit.run.audit`."""
    from nas.model_audit.run import audit as run_audit

    return run_audit(result, **settings)  # type: ignore[arg-type]


def monitor(result: object, stream: object, **settings: object) -> object:
    """Replay a stream through the deployed model and run drift detectors: see :func:`nas.model_audit.monitor.monitor`."""
    from nas.model_audit.monitor import monitor as run_monitor

    return run_monitor(result, stream, **settings)  # type: ignore[arg-type]


def __getattr__(name: str) -> object:
    """``nas.LearningCurvePruner`` and ``nas.LearningCurveScheduler`` (``pruner=lce``) live in :mod:`nas.contrib`, which
    ``import nas`` does not load."""
    if name == "LearningCurvePruner":
        from nas.contrib.lce_pruner import LearningCurvePruner

        return LearningCurvePruner
    if name == "LearningCurveScheduler":
        from nas.contrib.lce_scheduler import LearningCurveScheduler

        return LearningCurveScheduler
    raise AttributeError(f"module 'nas' has no attribute {name!r}")
