"""Search strategies. They see only a space's dimensions and flat samples, never candidate models."""

from strategies.bo import ArchitectureBO
from strategies.evolution import RegularizedEvolution
from strategies.grid import GridSearch
from strategies.local import LocalSearch
from strategies.nash import MorphismHillClimbing
from strategies.random import RandomSearch
from strategies.rl import ReinforceController
from strategies.sequence import SequenceStrategy

__all__ = ["ArchitectureBO", "GridSearch", "LocalSearch", "MorphismHillClimbing", "RandomSearch", "RegularizedEvolution", "ReinforceController",
           "SequenceStrategy"]
