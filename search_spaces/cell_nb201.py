"""NAS-Bench-201's cell space under its original Python parameters; YAML declares it through the DAG family.

``configs/space/cell_nb201.yaml`` declares the space as a :class:`~search_spaces.dag_cell.DagCellSpace`
with ``edges: all`` (an :class:`~search_spaces.dag_edges.EdgeCellSpace`). :class:`CellSpace` is the same
space for Python callers who count ``nodes`` with the input node (4 for the benchmark) and name a
sparse topology with ``edges`` (``None``: every edge): the dimensions, keys, text form and network are
those of the family, so both give identical samples, keys and numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from search_spaces.dag_edges import NB201_OPS, EdgeCellSpace

__all__ = ["CellSpace", "NB201_OPS"]


class CellSpace(EdgeCellSpace):
    """NAS-Bench-201-style cell: ``nodes`` states (node 0 the input, the last the output), one op per edge.

    ``edges=None`` declares the full DAG (every ``i -> j`` with ``i < j``); a list of ``[i, j]`` pairs
    declares a sparser topology, which must still connect the input node to the output.
    """

    def __init__(self, *, name: str = "cell_nb201", ops: Sequence[str] = NB201_OPS, nodes: int = 4,
                 edges: Sequence[Sequence[int]] | None = None, cells_per_stage: int = 5, stem_channels: int = 16,
                 stages: int = 3) -> None:
        self.name = str(name)
        if isinstance(ops, str) or not isinstance(ops, Sequence):
            raise self._fail(f"`ops` must be a list of operation names, but got {ops!r}.")
        total = self._int("nodes", nodes, 2)
        super().__init__(name=name, cells=("cell",), cell_inputs=1, nodes=total - 1, edges="all" if edges is None else edges,
                         ops=list(ops), output="last", text="nb201", network="nb201", cells_per_stage=cells_per_stage,
                         stem_channels=stem_channels, stages=stages)
