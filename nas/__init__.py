"""nas: neural architecture search for PyTorch.

Spaces are declared in YAML, explored by interchangeable strategies, scored by estimators, and
stored in an Optuna study. Start with :func:`search`, :class:`Searcher` or :func:`get_space`.
"""

from __future__ import annotations

from nas._api import Candidate, Searcher, run_from_config, search
from nas._architecture import Architecture
from nas._config import available, get_space
from nas._dimensions import Categorical, Float, Integer
from nas._errors import ConfigError, InvalidSampleError, NASError, TrialFailed
from nas._estimator import Estimator, Evaluation
from nas._lce_pruner import LearningCurvePruner
from nas._optuna_adapters import SamplerStrategy, StrategySampler
from nas._records import TrialRecord
from nas._results import SearchResult, load
from nas._space import Inherited, Morph, SearchSpace
from nas._strategy import Child, Strategy
from nas._table import TableEstimator
from nas._training import TrainingEstimator
from nas.datasets import DataSplits, Preprocessing
from nas.zero_cost import ZeroCostEstimator

__all__ = [
    "Architecture", "Candidate", "Categorical", "Child", "ConfigError", "DataSplits", "Estimator", "Evaluation", "Float",
    "Integer", "Inherited", "InvalidSampleError", "LearningCurvePruner", "Morph", "NASError", "Preprocessing", "SamplerStrategy", "SearchResult", "SearchSpace", "Searcher",
    "Strategy", "StrategySampler", "TableEstimator", "TrainingEstimator", "TrialFailed", "TrialRecord", "ZeroCostEstimator", "available", "get_space",
    "load", "run_from_config", "search",
]
__version__ = "0.1.0"
