"""What a picture of one architecture shows: labelled nodes and labelled edges, no drawing code.

A space describes an architecture with :meth:`SearchSpace.diagram`; :mod:`nas.engine.drawing`
renders it (TensorBoard's images of the top candidates).
"""

from __future__ import annotations

from dataclasses import dataclass

LAYOUTS = ("chain", "dag")


@dataclass(frozen=True)
class Diagram:
    """``nodes``: labels, in order. ``edges``: ``(source, target, label)`` between node indices.
    ``layout``: ``chain`` (nodes top to bottom, a layer per node) or ``dag`` (nodes left to right,
    edges as arcs, a cell). ``caption``: one line under the picture."""

    nodes: tuple[str, ...]
    edges: tuple[tuple[int, int, str], ...]
    layout: str = "chain"
    caption: str = ""

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"Diagram: `layout` must be one of {', '.join(LAYOUTS)}, but got {self.layout!r}.")
        for source, target, _ in self.edges:
            if not (0 <= source < len(self.nodes) and 0 <= target < len(self.nodes)):
                raise ValueError(f"Diagram: edge ({source}, {target}) must join two of the {len(self.nodes)} nodes.")

    @classmethod
    def chain(cls, nodes: list[str], caption: str = "") -> Diagram:
        """Nodes joined one after the other."""
        return cls(tuple(nodes), tuple((i, i + 1, "") for i in range(len(nodes) - 1)), "chain", caption)
