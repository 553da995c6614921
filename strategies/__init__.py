"""Search strategies. They see only a space's dimensions and flat samples, never torch modules."""

from strategies.grid import GridSearch
from strategies.random import RandomSearch
from strategies.sequence import SequenceStrategy

__all__ = ["GridSearch", "RandomSearch", "SequenceStrategy"]
