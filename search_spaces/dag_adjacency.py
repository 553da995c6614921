"""DAG cells as an adjacency matrix plus node labels: NAS-Bench-101's form of the DAG cell family.

``DagCellSpace(edges="chosen")`` (``edges: chosen`` in YAML) returns this class. The cell has
``V = cell_inputs + nodes`` vertices: vertex 0 the input, the last the output vertex (``output:
last``; it carries no op and joins its inputs), the ones between labelled by one op each. Every
``i -> j`` with ``i < j`` is a 0/1 dimension ``{cell}.e{i}_{j}`` (the matrix's upper triangle, row
by row), every labelled vertex a dimension ``{cell}.n{j}.op``. NAS-Bench-101
(``configs/space/cell_nb101.yaml``)::

    _target_: search_spaces.dag_cell.DagCellSpace
    cell_inputs: 1
    nodes: 6           # 5 labelled vertices and the output vertex: V = 7
    edges: chosen
    max_edges: 9
    ops: [conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3]
    output: last
    text: nb101        # ModelSpec(matrix=[[...]], ops=[...])
    network: nb101     # NAS-Bench-101's network; null = lookup-only (labels)

**Valid cells** are the benchmark's: the input must reach the output, and once the vertices off
every input-to-output path are pruned at most ``max_edges`` edges remain (NAS-Bench-101's
``is_valid``). The space is :attr:`~nas.SearchSpace.constrained`: random samples, mutations,
neighbours and grids hold valid cells only, and strategies drawing dimension by dimension redraw.

**Keys** are NAS-Bench-101's ``hash_spec``: the Weisfeiler-Lehman-style hash of the pruned spec, ops
labelled by their index in ``ops`` (:mod:`search_spaces._nb101_graph`), so isomorphic cells share a
key and keys equal the benchmark's own (list ``ops`` in its order, as above).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from nas.core import Categorical, InvalidSampleError
from nas.core.diagram import Diagram
from nas.core.dimensions import Dimension, Primitive
from nas.core.space import Sample
from search_spaces._nb101_graph import INPUT, OUTPUT, as_matrix, prune, spec_hash
from search_spaces.dag_cell import DagCellSpace

__all__ = ["AdjacencyCellSpace"]


class AdjacencyCellSpace(DagCellSpace):
    """See the module docstring; declared through :class:`~search_spaces.dag_cell.DagCellSpace`."""

    TEXTS = ("default", "nb101")
    NETWORKS = (None, "nb101")
    constrained = True

    def _form(self) -> str:
        return "a cell whose edges are chosen (`edges: chosen`)"

    def _declare_inputs(self, inputs_per_node: Any, edges: Any) -> dict[str, Dimension]:
        if self.cell_inputs != 1 or self.output != "last" or self.nodes < 1:
            raise self._fail("`edges: chosen` declares NAS-Bench-101's cell: one input vertex (cell_inputs 1) and an output vertex "
                             f"(output last), but got cell_inputs {self.cell_inputs} and output {self.output!r}.")
        self.vertices = 1 + self.nodes
        possible = self.vertices * (self.vertices - 1) // 2
        given = self._max_edges_given
        self.max_edges = possible if given is None else self._int("max_edges", given, 1)
        dims: dict[str, Dimension] = {}
        for cell in self.cells:
            dims.update({self._edge(cell, i, j): Categorical((0, 1)) for i in range(self.vertices) for j in range(i + 1, self.vertices)})
            dims.update({self._op(cell, j): Categorical(self.ops) for j in range(1, self.vertices - 1)})
        return dims

    def _check_network(self) -> None:
        if self.network != "nb101":
            return
        from search_spaces._nb101_modules import NB101_BUILT_OPS

        unknown = [op for op in self.ops if op not in NB101_BUILT_OPS and op not in self.builders]
        if unknown:
            raise self._fail(f"`network: nb101` builds NAS-Bench-101's operations ({', '.join(NB101_BUILT_OPS)}) or ops with a "
                             f"`_target_`, but {unknown} have neither.")
        if len(self.cells) != 1:
            raise self._fail(f"`network: nb101` stacks one cell type, but got cells {list(self.cells)}.")

    @staticmethod
    def _edge(cell: str, i: int, j: int) -> str:
        return f"{cell}.e{i}_{j}"

    @staticmethod
    def _op(cell: str, j: int) -> str:
        return f"{cell}.n{j}.op"

    # ---- the spec ------------------------------------------------------------------------------
    def spec(self, sample: Mapping[str, Primitive], cell: str | None = None) -> tuple[list[list[int]], list[str]]:
        """The (unpruned) adjacency matrix and op labels, ``input`` and ``output`` included."""
        cell = self.cells[0] if cell is None else cell
        v = self.vertices
        matrix = [[int(sample[self._edge(cell, i, j)]) if j > i else 0 for j in range(v)] for i in range(v)]  # type: ignore[arg-type]
        return matrix, [INPUT, *(str(sample[self._op(cell, j)]) for j in range(1, v - 1)), OUTPUT]

    def check(self, sample: Sample) -> None:
        for cell in self.cells:
            matrix, ops = self.spec(sample, cell)
            pruned = prune(matrix, ops)
            if pruned is None:
                raise InvalidSampleError(f"space '{self.name}': cell `{cell}` must connect its input (vertex 0) to its output "
                                         f"(vertex {self.vertices - 1}) through its edges, but no path does.")
            edges = sum(map(sum, pruned[0]))
            if edges > self.max_edges:
                raise InvalidSampleError(f"space '{self.name}': cell `{cell}` must keep at most max_edges={self.max_edges} edges "
                                         f"once pruned, but it keeps {edges}.")

    def grid(self) -> Iterator[Sample]:
        """Every valid cell with at most ``max_edges`` edges all on input-to-output paths, lazily, fewest edges
        first; each of its matrices with every labelling of the vertices it uses (the others keep the first op).

        That holds every key of the space once per way of writing it: pruning leaves such a cell (at most
        ``max_edges`` edges, every one on a path) with the same key, and cells with unused edges or vertices
        repeat a key already listed. Several cell types: the plain, filtered walk."""
        if len(self.cells) > 1:
            yield from super().grid()
            return
        cell = self.cells[0]
        pairs = [(i, j) for i in range(self.vertices) for j in range(i + 1, self.vertices)]
        op_names = [self._op(cell, j) for j in range(1, self.vertices - 1)]
        labels = self.dimensions()[op_names[0]].grid()
        for count in range(1, min(self.max_edges, len(pairs)) + 1):
            for chosen in itertools.combinations(pairs, count):
                edges = {self._edge(cell, i, j): int((i, j) in chosen) for i, j in pairs}
                used = {v for pair in chosen for v in pair}
                pruned = prune(*self.spec({**edges, **{name: labels[0] for name in op_names}}))
                if pruned is None or sum(map(sum, pruned[0])) != count:
                    continue  # the input misses the output, or an edge is off every path: pruning would drop it
                choices = [labels if j in used else labels[:1] for j in range(1, self.vertices - 1)]
                for ops in itertools.product(*choices):
                    yield {**edges, **dict(zip(op_names, ops))}

    def canonical(self, sample: Mapping[str, Primitive]) -> str:
        """NAS-Bench-101's ``hash_spec`` of the pruned spec (each cell type's, joined by ``,``)."""
        clean = self.validate(sample)
        if self._canonical_hook is not None:
            return str(self._canonical_hook(clean))
        return ",".join(str(spec_hash(*self.spec(clean, cell), vocabulary=self.ops)) for cell in self.cells)

    def pruned(self, sample: Mapping[str, Primitive]) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]]:
        """The spec the benchmark stores and builds: vertices off every input-to-output path removed."""
        pruned = prune(*self.spec(self.validate(sample)))
        assert pruned is not None  # validate refused it otherwise
        return pruned

    def diagram(self, sample: Mapping[str, Primitive]) -> Diagram:
        """The pruned cell: vertices labelled with their ops, an arc per edge."""
        matrix, ops = self.pruned(sample)
        edges = tuple((i, j, "") for i in range(len(ops)) for j in range(i + 1, len(ops)) if matrix[i][j])
        return Diagram(tuple(f"{j} {op}" for j, op in enumerate(ops)), edges, "dag", caption=f"{len(ops)} vertices, {len(edges)} edges")

    # ---- text form -----------------------------------------------------------------------------
    def format(self, sample: Mapping[str, Primitive]) -> str:
        """With ``text: nb101``, NAS-Bench-101's ``ModelSpec(matrix=[[...], ...], ops=[...])`` (unpruned)."""
        if self.text != "nb101":
            return super().format(sample)
        matrix, ops = self.spec(self.validate(sample))
        return f"ModelSpec(matrix={matrix}, ops={ops})"

    def parse(self, text: str) -> Sample:
        """Inverse of :meth:`format`: ``ModelSpec(matrix=..., ops=...)``, or a mapping ``{"matrix": ..., "ops": ...}``."""
        if self.text != "nb101":
            return super().parse(text)
        matrix, ops = _read_spec(self.name, text)
        v = self.vertices
        try:
            rows = as_matrix(matrix)
        except (TypeError, ValueError) as exc:
            raise InvalidSampleError(f"space '{self.name}': `matrix`: {exc}.") from None
        if len(rows) != v or len(ops) != v:
            raise InvalidSampleError(f"space '{self.name}': a spec must have {v} vertices ({v}x{v} matrix, {v} ops), but got a "
                                     f"{len(rows)}x{len(rows)} matrix and {len(ops)} ops.")
        if ops[0] != INPUT or ops[-1] != OUTPUT:
            raise InvalidSampleError(f"space '{self.name}': `ops` must begin with {INPUT!r} and end with {OUTPUT!r}, but got {ops!r}.")
        cell = self.cells[0]
        sample: dict[str, Primitive] = {self._edge(cell, i, j): rows[i][j] for i in range(v) for j in range(i + 1, v)}
        sample.update({self._op(cell, j): ops[j] for j in range(1, v - 1)})
        return self.validate(sample)

    # ---- the NAS-Bench-101 network ----------------------------------------------------------------
    def build(self, sample: Mapping[str, Primitive], input_shape: Sequence[int], num_classes: int) -> Any:
        """NAS-Bench-101's network (stem, ``stages`` stacks of ``cells_per_stage`` cells, max-pool and doubled
        channels between stacks) on the pruned spec, for ``(C, H, W)`` or ``(C, L)`` inputs."""
        shape = self._network_input(input_shape, num_classes)
        from search_spaces._nb101_modules import NB101Network

        matrix, ops = self.pruned(sample)
        return NB101Network(matrix, ops, in_channels=shape[0], dims=len(shape) - 1, num_classes=int(num_classes),
                            stem_channels=self.stem_channels, stacks=self.stages, cells_per_stack=self.cells_per_stage,
                            builders=self.builders)


def _read_spec(name: str, text: str) -> tuple[Any, list[str]]:
    """``matrix`` and ``ops`` from ``ModelSpec(matrix=..., ops=...)`` or a ``{"matrix": ..., "ops": ...}`` mapping."""
    bad = InvalidSampleError(f"space '{name}': an architecture must read `ModelSpec(matrix=[[0, 1, ...], ...], ops=['input', ..., "
                             f"'output'])`, but got {text!r}.")
    if not isinstance(text, str):
        raise bad
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise bad from None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "ModelSpec" and not node.args:
        fields = {k.arg: k.value for k in node.keywords}
    elif isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.keys):
        fields = {k.value: v for k, v in zip(node.keys, node.values)}  # type: ignore[union-attr]
    else:
        raise bad
    if set(fields) != {"matrix", "ops"}:
        raise bad
    try:
        matrix, ops = ast.literal_eval(fields["matrix"]), ast.literal_eval(fields["ops"])
    except ValueError:
        raise bad from None
    if not isinstance(ops, list) or not all(isinstance(op, str) for op in ops) or not isinstance(matrix, list):
        raise bad
    return matrix, ops
