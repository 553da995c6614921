"""The micro cell search space in NAS-Bench-201 form: one operation per edge of a small DAG cell.

A cell has ``nodes`` nodes; node 0 is the cell's input, the last node its output, and node ``j``
sums ``op(node i)`` over its incoming edges ``i -> j``. The network stacks that one cell
``cells_per_stage`` times per stage. With the defaults this is exactly the NAS-Bench-201 /
NATS-Bench topology space (4 nodes, 6 edges, 5 operations, 15,625 cells), so samples format to
and parse from the benchmark's architecture strings and keys follow its isomorphism classes.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import Any

from nas.core import Categorical, ConfigError, InvalidSampleError, Morph, SearchSpace
from nas.core.diagram import Diagram
from nas.core.dimensions import Dimension, Primitive
from nas.core.errors import unknown_name_message
from nas.core.space import Sample

__all__ = ["CellSpace", "NB201_OPS"]

#: The benchmark's operations, in its order; the builder knows these and no others.
NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

Edge = tuple[int, int]


class CellSpace(SearchSpace):
    """NAS-Bench-201-style cell space; every edge is one always-active categorical dimension.

    ``edges=None`` declares the full DAG (every ``i -> j`` with ``i < j``); a list of ``[i, j]``
    pairs declares a sparser topology, which must still connect the input node to the output.
    """

    def __init__(
        self,
        *,
        name: str = "cell_nb201",
        ops: Sequence[str] = NB201_OPS,
        nodes: int = 4,
        edges: Sequence[Sequence[int]] | None = None,
        cells_per_stage: int = 5,
        stem_channels: int = 16,
        stages: int = 3,
    ) -> None:
        self.name = str(name)
        self.ops = self._check_ops(ops)
        self.nodes = self._check_int("nodes", nodes, low=2)
        self.cells_per_stage = self._check_int("cells_per_stage", cells_per_stage, low=1)
        self.stem_channels = self._check_int("stem_channels", stem_channels, low=1)
        self.stages = self._check_int("stages", stages, low=1)
        self.edges: tuple[Edge, ...] = self._check_edges(edges)
        self._sources: dict[int, tuple[int, ...]] = {j: tuple(i for i, jj in self.edges if jj == j) for j in range(1, self.nodes)}
        # Nodes fed by the input; edges out of any other node carry nothing and are dead.
        self._fed = self._reachable_from_input()
        self._dims: dict[str, Dimension] = {_dim(i, j): Categorical(self.ops) for i, j in self.edges}

    # ---- declaration checks --------------------------------------------------------------------
    def _fail(self, message: str) -> ConfigError:
        return ConfigError(f"space {self.name!r}: {message}")

    def _check_int(self, key: str, value: Any, *, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self._fail(f"`{key}` must be an integer >= {low}, but got {value!r}.")
        return value

    def _check_ops(self, ops: Any) -> tuple[str, ...]:
        if isinstance(ops, str) or not isinstance(ops, Sequence):
            raise self._fail(f"`ops` must be a list of operation names, but got {ops!r}.")
        if len(ops) == 0:
            raise self._fail(f"`ops` must name at least one operation, but got an empty list. Valid names: {', '.join(NB201_OPS)}.")
        for op in ops:
            if op not in NB201_OPS:
                raise self._fail("`ops` must name known operations. " + unknown_name_message("operation", op, NB201_OPS))
        if len(set(ops)) != len(ops):
            raise self._fail(f"`ops` must not repeat a name, but got {list(ops)!r}.")
        return tuple(ops)

    def _check_edges(self, edges: Any) -> tuple[Edge, ...]:
        n = self.nodes
        if edges is None:
            return tuple((i, j) for j in range(1, n) for i in range(j))
        if isinstance(edges, str) or not isinstance(edges, Sequence) or not edges:
            raise self._fail(f"`edges` must be null (the full DAG) or a non-empty list of [i, j] pairs, but got {edges!r}.")
        pairs: list[Edge] = []
        for pair in edges:
            ok = not isinstance(pair, str) and isinstance(pair, Sequence) and len(pair) == 2
            ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
            if not ok or not 0 <= pair[0] < pair[1] < n:
                raise self._fail(f"each of `edges` must be a pair [i, j] with 0 <= i < j < nodes={n}, but got {_plain(pair)!r}.")
            pairs.append((int(pair[0]), int(pair[1])))
        if len(set(pairs)) != len(pairs):
            raise self._fail(f"`edges` must not repeat an edge, but got {_plain(edges)!r}.")
        reached = {0}
        for i, j in sorted(pairs, key=lambda e: e[1]):
            if i in reached:
                reached.add(j)
        if n - 1 not in reached:
            raise self._fail(f"`edges` must connect input node 0 to output node {n - 1}, but got {_plain(edges)!r}.")
        # NB201 order: node by node, and within a node by source.
        return tuple(sorted(pairs, key=lambda e: (e[1], e[0])))

    def _reachable_from_input(self) -> frozenset[int]:
        fed = {0}
        for i, j in self.edges:  # sorted by target, so sources are settled first
            if i in fed:
                fed.add(j)
        return frozenset(fed)

    # ---- contract ------------------------------------------------------------------------------
    def dimensions(self) -> dict[str, Dimension]:
        return dict(self._dims)

    def canonical(self, sample: Mapping[str, Primitive]) -> str:
        """The NAS-Bench-201 ``to_unique_str(consider_zero=True)`` expression of the output node.

        Each node is written as the sorted ``+``-join of its incoming terms: ``(x)@op`` for a
        parametric or pooling op on node expression ``x``; ``x`` itself for ``skip_connect`` (so
        the source's terms join the sum as one ``+``-joined piece); ``#`` (zero) for ``none`` or
        for a source that is exactly ``#``. Node 0 is ``0``. Only the output's expression is kept,
        so dead edges vanish, and sorting makes the order of a sum irrelevant.

        This mirrors the benchmark on purpose, quirks included, so that keys split the 15,625
        cells into exactly its 6,466 classes: a ``#`` term still counts in a sum (``#+0`` and
        ``0`` differ), a node whose inputs are all zero is ``#+#`` and not ``#`` (so ops applied
        to it are kept), and a skip's source joins as one sorted piece rather than term by term.
        Each of these makes the key finer than functional equivalence, never coarser: two cells
        with one key always compute the same function. Edges out of nodes that no declared edge
        feeds from the input (only possible with a sparse ``edges``) are dropped entirely.
        """
        clean = self.validate(sample)
        expr = {0: "0"}
        for j in range(1, self.nodes):
            terms = []
            for i in self._sources[j]:
                if i not in self._fed:
                    continue
                op, source = clean[_dim(i, j)], expr[i]
                if op == "none" or source == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(source)
                else:
                    terms.append(f"({source})@{op}")
            expr[j] = "+".join(sorted(terms))
        return expr[self.nodes - 1]

    def format(self, sample: Mapping[str, Primitive]) -> str:
        """The benchmark's string, ``|op~0|+|op~0|op~1|+...``: one ``|...|`` group per node 1..n-1."""
        clean = self.validate(sample)
        return "+".join("|" + "|".join(f"{clean[_dim(i, j)]}~{i}" for i in self._sources[j]) + "|" for j in range(1, self.nodes))

    def diagram(self, sample: Mapping[str, Primitive]) -> Diagram:
        """The cell: nodes left to right, an arc per edge labelled with its op (``none`` edges left out)."""
        clean = self.validate(sample)
        labels = [f"{j}" + (" (in)" if j == 0 else " (out)" if j == self.nodes - 1 else "") for j in range(self.nodes)]
        edges = tuple((i, j, str(clean[_dim(i, j)])) for i, j in self.edges if clean[_dim(i, j)] != "none")
        return Diagram(tuple(labels), edges, "dag", caption=self.format(clean))

    def parse(self, text: str) -> Sample:
        """Inverse of :meth:`format`; errors name the offending node group or token."""
        if not isinstance(text, str):
            raise InvalidSampleError(f"A '{self.name}' architecture string must be a str, but got {type(text).__name__}.")
        groups = text.strip().split("+")
        if len(groups) != self.nodes - 1:
            raise InvalidSampleError(
                f"A '{self.name}' architecture string must hold {self.nodes - 1} node groups joined by '+', but got {len(groups)} in {text!r}."
            )
        sample: dict[str, Primitive] = {}
        for j, group in enumerate(groups, start=1):
            if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
                raise InvalidSampleError(f"Node {j} of {text!r} must read `|op~i|...|`, but got {group!r}.")
            tokens = group[1:-1].split("|") if len(group) > 2 else []
            sources = []
            for token in tokens:
                op, sep, source = token.partition("~")
                if not sep or not (source.isascii() and source.isdigit()):
                    raise InvalidSampleError(f"Each token of {text!r} must read `op~i` with a node index i, but got {token!r}.")
                if op not in self.ops:
                    raise InvalidSampleError(f"Token {token!r} of {text!r}: " + unknown_name_message("operation", op, self.ops))
                sources.append(int(source))
                sample[_dim(int(source), j)] = op
            if tuple(sources) != self._sources[j]:
                raise InvalidSampleError(
                    f"Node {j} of {text!r} must take inputs from nodes {list(self._sources[j])} in that order, but got {group!r}."
                )
        return self.validate(sample)

    def live(self, sample: Mapping[str, Primitive]) -> list[tuple[int, tuple[int, ...]]]:
        """The computation a built cell performs: ``(node, sources)`` in order, output node last.

        Keeps the nodes fed from the input that reach the output, and of their incoming edges
        those that are not ``none``. A node left with no sources is zero.
        """
        clean = self.validate(sample)
        reaches = {self.nodes - 1}
        for i, j in reversed(self.edges):
            if j in reaches:
                reaches.add(i)
        keep = [j for j in range(1, self.nodes) if j in reaches and j in self._fed]
        return [(j, tuple(i for i in self._sources[j] if i in self._fed and clean[_dim(i, j)] != "none")) for j in keep]

    def paths(self, sample: Mapping[str, Primitive]) -> list[tuple[str, ...]]:
        """Every route from the input node to the output node, as the sequence of ops along it.

        Routes through a ``none`` edge carry nothing and are dropped; two routes with the same ops
        both appear. This is the path encoding of BANANAS (White et al. 2021) before counting: e.g.
        the all-``nor_conv_3x3`` default cell has the 4 routes 0-3, 0-1-3, 0-2-3 and 0-1-2-3.
        """
        clean = self.validate(sample)
        routes: dict[int, list[tuple[str, ...]]] = {0: [()]}
        for j in range(1, self.nodes):
            routes[j] = [route + (str(clean[_dim(i, j)]),) for i in self._sources[j] if clean[_dim(i, j)] != "none" for route in routes[i]]
        return routes[self.nodes - 1]

    # ---- morphisms ----------------------------------------------------------------------------
    def morphs(self, sample: Mapping[str, Primitive]) -> list[Morph]:
        """Turn a ``none`` edge into a convolution whose output starts at zero (its batch norm's scale
        and shift are zero), and widen a ``nor_conv_1x1`` edge to ``nor_conv_3x3`` (the kernel
        zero-padded); every cell of the network changes alike, since they share one sample."""
        clean = self.validate(sample)
        convs = [op for op in self.ops if op.startswith("nor_conv_")]
        out = []
        for i, j in self.edges:
            name = _dim(i, j)
            if clean[name] == "none":
                out += [Morph(self.validate({**clean, name: op}), "add_op", f"{name}:{op}") for op in convs]
            elif clean[name] == "nor_conv_1x1" and "nor_conv_3x3" in self.ops:
                out.append(Morph(self.validate({**clean, name: "nor_conv_3x3"}), "widen_kernel", name))
        return out

    def _apply_morph(self, morph: Morph, parent: Sample, parent_state: Mapping[str, Any], model: Any, generator: Any) -> float:
        from nas.inheritance.morphisms import pad_kernel, parameter_fraction, zero_output_
        from search_spaces._cell_modules import Cell
        from search_spaces._morph import put, transplant

        edge = "e" + morph.where.partition(":")[0].removeprefix("cell.e")
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

    def _reduced(self, width: float, depth: float) -> CellSpace:
        """Fewer stem channels (every stage scales with them) and fewer cells per stage; same cells."""
        small = copy.copy(self)
        small.stem_channels = max(1, round(self.stem_channels * width))
        small.cells_per_stage = max(1, round(self.cells_per_stage * depth))
        return small

    def build(self, sample: Mapping[str, Primitive], input_shape: Sequence[int], num_classes: int) -> Any:
        """The NAS-Bench-201 network for ``(C, H, W)`` inputs, or its 1-D twin for ``(C, L)``."""
        shape = tuple(int(s) if isinstance(s, Integral) and not isinstance(s, bool) else s for s in input_shape)
        if len(shape) not in (2, 3) or not all(isinstance(s, int) and s >= 1 for s in shape):
            raise ConfigError(f"space {self.name!r}: `input_shape` must be (C, L) or (C, H, W) of positive integers, but got {shape!r}.")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"space {self.name!r}: `num_classes` must be an integer >= 1, but got {num_classes!r}.")
        clean = self.validate(sample)
        from search_spaces._cell_modules import CellNetwork  # torch only when a model is built

        return CellNetwork(
            {(i, j): str(clean[_dim(i, j)]) for i, j in self.edges},
            self.live(clean),
            in_channels=shape[0],
            dims=len(shape) - 1,
            num_classes=num_classes,
            stem_channels=self.stem_channels,
            cells_per_stage=self.cells_per_stage,
            stages=self.stages,
        )


def _dim(i: int, j: int) -> str:
    return f"cell.e{i}_{j}"


def _plain(value: Any) -> Any:
    """Lists of lists as plain Python (OmegaConf containers print noisily in messages)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value
