"""DAG cells with one op on each of fixed edges: NAS-Bench-201's form of the DAG cell family.

``DagCellSpace(edges=...)`` (or ``edges:`` in YAML) returns this class. States ``0 ..
cell_inputs - 1`` are the cell's inputs, the next ``nodes`` its nodes; ``edges: all`` connects
every state to every later node, a list of ``[i, j]`` pairs declares a sparser cell. Each edge is
one categorical dimension ``{cell}.e{i}_{j}`` over the vocabulary, in the benchmark's order (node by
node, and within a node by source); node ``j`` sums ``op(state i)`` over its edges. NAS-Bench-201
(``configs/space/cell_nb201.yaml``)::

    _target_: search_spaces.dag_cell.DagCellSpace
    cell_inputs: 1
    nodes: 3
    edges: all
    ops: [none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3]
    output: last
    text: nb201       # |op~0|+|op~0|op~1|+...
    network: nb201    # NAS-Bench-201's network; null = lookup-only (labels)

**Keys** are each output's expression, NAS-Bench-201's ``to_unique_str(consider_zero=True)``: an op
named ``none`` is zero, ``skip_connect`` the identity, the terms of a sum are sorted and edges that
reach no output vanish. With ``edges: all`` on 4 states that splits the 15,625 cells into exactly
the benchmark's 6,466 classes. ``canonical: {_target_: fn}`` replaces it with the benchmark's own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from nas.core import Categorical, InvalidSampleError, Morph
from nas.core.diagram import Diagram
from nas.core.dimensions import Dimension, Primitive
from nas.core.errors import unknown_name_message
from nas.core.space import Sample
from search_spaces.dag_cell import DagCellSpace

__all__ = ["NB201_OPS", "EdgeCellSpace"]

#: NAS-Bench-201's operations, in its order; ``network: nb201`` builds these and no others.
NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

Edge = tuple[int, int]


class EdgeCellSpace(DagCellSpace):
    """See the module docstring; declared through :class:`~search_spaces.dag_cell.DagCellSpace`."""

    TEXTS = ("default", "nb201")
    NETWORKS = (None, "nb201")

    def _form(self) -> str:
        return "a cell with declared `edges`"

    def _declare_inputs(self, inputs_per_node: Any, edges: Any) -> dict[str, Dimension]:
        self.edges: tuple[Edge, ...] = self._check_edges(edges)
        self._sources: dict[int, tuple[int, ...]] = {j: tuple(i for i, jj in self.edges if jj == j) for j in self._node_ids()}
        self._fed = self._reachable_from_inputs()  # edges out of any other node carry nothing and are dead
        return {self._dim(cell, i, j): Categorical(self.ops) for cell in self.cells for i, j in self.edges}

    def _check_edges(self, edges: Any) -> tuple[Edge, ...]:
        first, total = self.cell_inputs, self.cell_inputs + self.nodes
        if edges == "all":
            return tuple((i, j) for j in range(first, total) for i in range(j))
        if isinstance(edges, str) or not isinstance(edges, Sequence) or not edges:
            raise self._fail(f"`edges` must be `all`, `chosen` (an adjacency matrix) or a non-empty list of [i, j] pairs, "
                             f"but got {_plain(edges)!r}.")
        pairs: list[Edge] = []
        for pair in edges:
            ok = not isinstance(pair, str) and isinstance(pair, Sequence) and len(pair) == 2
            ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
            if not ok or not (0 <= pair[0] < pair[1] < total and pair[1] >= first):
                inputs = "state 0 is the cell's input" if first == 1 else f"states 0 .. {first - 1} are the cell's inputs"
                raise self._fail(f"each of `edges` must be a pair [i, j] of states with 0 <= i < j < {total} and j >= {first} "
                                 f"({inputs}), but got {_plain(pair)!r}.")
            pairs.append((int(pair[0]), int(pair[1])))
        if len(set(pairs)) != len(pairs):
            raise self._fail(f"`edges` must not repeat an edge, but got {_plain(edges)!r}.")
        reached = set(range(first))
        for i, j in sorted(pairs, key=lambda e: e[1]):
            if i in reached:
                reached.add(j)
        outputs = [total - 1] if self.output == "last" else list(range(first, total))
        if not reached.intersection(outputs):
            start = "input node 0" if first == 1 else f"an input node (0 .. {first - 1})"
            end = f"output node {total - 1}" if self.output == "last" else "a node"
            raise self._fail(f"`edges` must connect {start} to {end}, but got {_plain(edges)!r}.")
        return tuple(sorted(pairs, key=lambda e: (e[1], e[0])))  # node by node, and within a node by source

    def _reachable_from_inputs(self) -> frozenset[int]:
        fed = set(range(self.cell_inputs))
        for i, j in self.edges:  # sorted by target, so sources are settled first
            if i in fed:
                fed.add(j)
        return frozenset(fed)

    def _check_text(self) -> None:
        if self.text == "nb201" and (len(self.cells) != 1 or self.cell_inputs != 1):
            raise self._fail(f"`text: nb201` writes one cell with one input (NAS-Bench-201's strings), but got cells "
                             f"{list(self.cells)} and cell_inputs {self.cell_inputs}.")

    def _check_network(self) -> None:
        if self.network != "nb201":
            return
        if len(self.cells) != 1 or self.cell_inputs != 1 or self.output != "last":
            raise self._fail("`network: nb201` stacks one cell type with one input whose last node is its output, so it needs "
                             f"one of `cells`, cell_inputs 1 and output last, but got cells {list(self.cells)}, cell_inputs "
                             f"{self.cell_inputs}, output {self.output!r}.")
        if self.builders:
            raise self._fail(f"`network: nb201` builds NAS-Bench-201's own operations, so `ops` takes no `_target_`, but "
                             f"{sorted(self.builders)} have one.")
        for op in self.ops:
            if op not in NB201_OPS:
                raise self._fail("`network: nb201` builds NAS-Bench-201's operations: `ops` must name known operations. "
                                 + unknown_name_message("operation", op, NB201_OPS))

    def _dim(self, cell: str, i: int, j: int) -> str:
        return f"{cell}.e{i}_{j}"

    # ---- structure -----------------------------------------------------------------------------
    def pairs(self, sample: Mapping[str, Primitive], cell: str) -> list[tuple[str, int]]:
        """The cell's ``(op, input)`` pairs, node by node: one per declared edge."""
        return [(str(sample[self._dim(cell, i, j)]), i) for i, j in self.edges]

    def outputs(self, sample: Mapping[str, Primitive], cell: str) -> list[int]:
        if self.output == "last":
            return [self._node_ids()[-1]]
        if self.output == "concat":
            return list(self._node_ids())
        read = {i for i, _ in self.edges}
        return [j for j in self._node_ids() if j not in read]

    def canonical(self, sample: Mapping[str, Primitive]) -> str:
        """Each output's NAS-Bench-201 ``to_unique_str(consider_zero=True)`` expression.

        Each node is written as the sorted ``+``-join of its incoming terms: ``(x)@op`` for an op on
        state expression ``x``; ``x`` itself for ``skip_connect`` (so the source's terms join the sum as
        one ``+``-joined piece); ``#`` (zero) for ``none`` or for a source that is exactly ``#``. Inputs
        are ``0``, ``1``, ... Only the outputs' expressions are kept, so dead edges vanish, and sorting
        makes the order of a sum irrelevant.

        This mirrors the benchmark on purpose, quirks included, so that keys split the 15,625 cells
        into exactly its 6,466 classes: a ``#`` term still counts in a sum (``#+0`` and ``0`` differ), a
        node whose inputs are all zero is ``#+#`` and not ``#`` (so ops applied to it are kept), and a
        skip's source joins as one sorted piece rather than term by term. Each of these makes the key
        finer than functional equivalence, never coarser. Edges out of nodes that no declared edge feeds
        from an input (only possible with a sparse ``edges``) are dropped entirely. One cell type with
        ``output: last`` gives the expression itself (NAS-Bench-201's string); otherwise JSON.
        """
        clean = self.validate(sample)
        if self._canonical_hook is not None:
            return str(self._canonical_hook(clean))
        keys: dict[str, Any] = {}
        for cell in self.cells:
            expr = self._expressions(clean, cell)
            outs = [expr[j] for j in self.outputs(clean, cell)]
            keys[cell] = outs[0] if self.output == "last" else "+".join(sorted(outs)) if self.output == "sum_leaves" else outs
        if len(self.cells) == 1 and self.output == "last":
            return str(keys[self.cells[0]])
        return json.dumps(keys, separators=(",", ":"))

    def _expressions(self, clean: Sample, cell: str) -> dict[int, str]:
        expr = {i: str(i) for i in range(self.cell_inputs)}
        for j in self._node_ids():
            terms = []
            for i in self._sources[j]:
                if i not in self._fed:
                    continue
                op, source = clean[self._dim(cell, i, j)], expr[i]
                if op == "none" or source == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(source)
                else:
                    terms.append(f"({source})@{op}")
            expr[j] = "+".join(sorted(terms))
        return expr

    def live(self, sample: Mapping[str, Primitive]) -> list[tuple[int, tuple[int, ...]]]:
        """The computation a built (one-input, one-type) cell performs: ``(node, sources)`` in order, output last.

        Keeps the nodes fed from the input that reach the output, and of their incoming edges those
        that are not ``none``. A node left with no sources is zero.
        """
        clean = self.validate(sample)
        cell, last = self.cells[0], self._node_ids()[-1]
        reaches = {last}
        for i, j in reversed(self.edges):
            if j in reaches:
                reaches.add(i)
        keep = [j for j in self._node_ids() if j in reaches and j in self._fed]
        return [(j, tuple(i for i in self._sources[j] if i in self._fed and clean[self._dim(cell, i, j)] != "none")) for j in keep]

    def paths(self, sample: Mapping[str, Primitive]) -> list[tuple[str, ...]]:
        """Every route from an input to an output, as the sequence of ops along it (every cell type's, together).

        Routes through a ``none`` edge carry nothing and are dropped; two routes with the same ops both
        appear. This is the path encoding of BANANAS (White et al. 2021) before counting: e.g. the
        all-``nor_conv_3x3`` NAS-Bench-201 cell has the 4 routes 0-3, 0-1-3, 0-2-3 and 0-1-2-3.
        """
        clean = self.validate(sample)
        out: list[tuple[str, ...]] = []
        for cell in self.cells:
            routes: dict[int, list[tuple[str, ...]]] = {i: [()] for i in range(self.cell_inputs)}
            for j in self._node_ids():
                ops = {i: str(clean[self._dim(cell, i, j)]) for i in self._sources[j]}
                routes[j] = [route + (ops[i],) for i in self._sources[j] if ops[i] != "none" for route in routes[i]]
            out += [route for j in self.outputs(clean, cell) for route in routes[j]]
        return out

    # ---- text form -----------------------------------------------------------------------------
    def format(self, sample: Mapping[str, Primitive]) -> str:
        """With ``text: nb201`` the benchmark's string, ``|op~0|+|op~0|op~1|+...``: one ``|...|`` group per node."""
        if self.text != "nb201":
            return super().format(sample)
        clean, cell = self.validate(sample), self.cells[0]
        return "+".join("|" + "|".join(f"{clean[self._dim(cell, i, j)]}~{i}" for i in self._sources[j]) + "|"
                        for j in self._node_ids())

    def parse(self, text: str) -> Sample:
        """Inverse of :meth:`format`; errors name the offending node group or token."""
        if self.text != "nb201":
            return super().parse(text)
        if not isinstance(text, str):
            raise InvalidSampleError(f"A '{self.name}' architecture string must be a str, but got {type(text).__name__}.")
        groups, cell = text.strip().split("+"), self.cells[0]
        if len(groups) != self.nodes:
            raise InvalidSampleError(f"A '{self.name}' architecture string must hold {self.nodes} node groups joined by '+', "
                                     f"but got {len(groups)} in {text!r}.")
        sample: dict[str, Primitive] = {}
        for j, group in zip(self._node_ids(), groups):
            if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
                raise InvalidSampleError(f"Node {j} of {text!r} must read `|op~i|...|`, but got {group!r}.")
            sources = []
            for token in group[1:-1].split("|") if len(group) > 2 else []:
                op, sep, source = token.partition("~")
                if not sep or not (source.isascii() and source.isdigit()):
                    raise InvalidSampleError(f"Each token of {text!r} must read `op~i` with a node index i, but got {token!r}.")
                if op not in self.ops:
                    raise InvalidSampleError(f"Token {token!r} of {text!r}: " + unknown_name_message("operation", op, self.ops))
                sources.append(int(source))
                sample[self._dim(cell, int(source), j)] = op
            if tuple(sources) != self._sources[j]:
                raise InvalidSampleError(f"Node {j} of {text!r} must take inputs from nodes {list(self._sources[j])} in that "
                                         f"order, but got {group!r}.")
        return self.validate(sample)

    def diagram(self, sample: Mapping[str, Primitive]) -> Diagram:
        """The (first type's) cell: states left to right, an arc per edge labelled with its op (``none`` edges left out)."""
        clean, cell = self.validate(sample), self.cells[0]
        total, outs = self.cell_inputs + self.nodes, set(self.outputs(clean, cell))
        labels = [f"{j}" + (" (in)" if j < self.cell_inputs else " (out)" if j in outs and self.output == "last" else "")
                  for j in range(total)]
        edges = tuple((i, j, str(clean[self._dim(cell, i, j)])) for i, j in self.edges if clean[self._dim(cell, i, j)] != "none")
        return Diagram(tuple(labels), edges, "dag", caption=self.format(clean))

    # ---- the NAS-Bench-201 network --------------------------------------------------------------
    def build(self, sample: Mapping[str, Primitive], input_shape: Sequence[int], num_classes: int) -> Any:
        """NAS-Bench-201's network for ``(C, H, W)`` inputs, or its 1-D twin for ``(C, L)``."""
        shape = self._network_input(input_shape, num_classes)
        clean, cell = self.validate(sample), self.cells[0]
        from search_spaces._cell_modules import CellNetwork  # torch only when a model is built

        return CellNetwork({(i, j): str(clean[self._dim(cell, i, j)]) for i, j in self.edges}, self.live(clean),
                           in_channels=shape[0], dims=len(shape) - 1, num_classes=num_classes, stem_channels=self.stem_channels,
                           cells_per_stage=self.cells_per_stage, stages=self.stages)

    def morphs(self, sample: Mapping[str, Primitive]) -> list[Morph]:
        """With ``network: nb201``: turn a ``none`` edge into a convolution whose output starts at zero (its
        batch norm's scale and shift are zero), and widen a ``nor_conv_1x1`` edge to ``nor_conv_3x3`` (the
        kernel zero-padded); every cell of the network changes alike, since they share one sample."""
        clean = self.validate(sample)
        if self.network != "nb201":
            return []
        convs = [op for op in self.ops if op.startswith("nor_conv_")]
        out = []
        for i, j in self.edges:
            name = self._dim(self.cells[0], i, j)
            if clean[name] == "none":
                out += [Morph(self.validate({**clean, name: op}), "add_op", f"{name}:{op}") for op in convs]
            elif clean[name] == "nor_conv_1x1" and "nor_conv_3x3" in self.ops:
                out.append(Morph(self.validate({**clean, name: "nor_conv_3x3"}), "widen_kernel", name))
        return out

    def _apply_morph(self, morph: Morph, parent: Sample, parent_state: Mapping[str, Any], model: Any, generator: Any) -> float:
        from nas.inheritance.morphisms import pad_kernel, parameter_fraction, zero_output_
        from search_spaces._cell_modules import Cell
        from search_spaces._morph import put, transplant

        edge = morph.where.partition(":")[0].rpartition(".")[2]  # cell.e0_1:nor_conv_3x3 -> e0_1
        filled = transplant(model, parent_state)
        for cell_name, cell in model.named_modules():
            if not isinstance(cell, Cell):
                continue
            if morph.kind == "add_op":
                zero_output_(cell.edges[edge])
            else:
                name = f"{cell_name}.edges.{edge}.1.weight"  # ReLU, Conv, BN: the conv's weight
                filled |= put(model, {name: pad_kernel(parent_state[name], 3)})
        return parameter_fraction(model, filled)


def _plain(value: Any) -> Any:
    """Lists of lists as plain Python (OmegaConf containers print noisily in messages)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value
