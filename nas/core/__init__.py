"""The core contracts: no torch, no Optuna, nothing of nas outside ``nas.core`` (see DESIGN.md).

Strategies see only this package: dimensions and flat samples, the space contract, the strategy
contract and the typed trial records.
"""

from __future__ import annotations

from nas.core.architecture import Architecture
from nas.core.diagram import Diagram
from nas.core.dimensions import Categorical, Dimension, Float, Integer, Primitive
from nas.core.errors import ConfigError, InvalidSampleError, NASError, TrialFailed, unknown_name_message
from nas.core.records import Child, Inheritance, Proposal, TrialRecord, TrialState, as_proposal, best_of, better
from nas.core.space import Inherited, Morph, Sample, SearchSpace
from nas.core.strategy import Strategy

__all__ = ["Architecture", "Categorical", "Child", "ConfigError", "Diagram", "Dimension", "Float", "Inheritance", "Inherited", "Integer",
           "InvalidSampleError", "Morph", "NASError", "Primitive", "Proposal", "Sample", "SearchSpace", "Strategy", "TrialFailed",
           "TrialRecord", "TrialState", "as_proposal", "best_of", "better", "unknown_name_message"]
