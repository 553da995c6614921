"""The DAG cell family: one ``_target_`` declares DARTS / NAS-Bench-301, a GNN benchmark's cell, NAS-Bench-201
and NAS-Bench-101 in YAML alone. How a node gets its inputs picks the form (and the class returned):

- ``inputs_per_node: k`` (the default, this module): each node chooses ``k`` earlier states, each through
  one op (DARTS, the GNN cell);
- ``edges: all`` or ``[[i, j], ...]``: one op on each fixed edge, nodes sum them (NAS-Bench-201,
  :mod:`search_spaces.dag_edges`);
- ``edges: chosen``: an adjacency matrix plus one op label per node, with ``max_edges``
  (NAS-Bench-101, :mod:`search_spaces.dag_adjacency`).

A cell type (``cells``: ``[normal, reduce]`` for DARTS) has ``cell_inputs`` input states (0 ..
``cell_inputs - 1``) and ``nodes`` intermediate nodes; node ``j`` (state ``cell_inputs + k``) picks
``inputs_per_node`` inputs among the states before it, each through one op of the vocabulary, and
sums them. The cell's output is the concatenation of every intermediate node (``output: concat``,
DARTS), or of the leaves, the nodes no other node reads (``concat_leaves``, ``sum_leaves``: the GNN
benchmark's form). Dimensions, per cell type and node: ``{cell}.n{j}.in{a}`` (the input, a choice
among ``0 .. j - 1``: the domain grows with the node) and ``{cell}.n{j}.op{a}``.

Declared in YAML alone (``configs/space/cell_darts.yaml``)::

    _target_: search_spaces.dag_cell.DagCellSpace
    cells: [normal, reduce]
    cell_inputs: 2
    nodes: 4
    inputs_per_node: 2
    ops: [max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5]
    output: concat
    text: darts          # format/parse the DARTS Genotype(...) text
    network: darts       # build the DARTS evaluation network; null = lookup-only (labels)

``ops`` is a list of names, or a mapping of names to ``null`` (a label) or ``{_target_: fn}``, a
function ``(channels, stride, dims) -> nn.Module`` building that op; with ``network: darts`` names
without a builder must be DARTS operations.

**Keys.** ``canonical: {_target_: fn}`` names a function of the sample giving the benchmark's own key.
Without one, architectures that compute the same function up to a permutation of channels share a key:
the inputs of a node are summed, so their order is merged, and intermediate nodes that can be renumbered
without breaking the order of the DAG are (the key is the least renumbering's text). The cell's
concatenation then permutes channels, which the next cell's 1x1 preprocessing and the classifier absorb.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import Any, cast

from nas.core import Categorical, ConfigError, InvalidSampleError, SearchSpace
from nas.core.dimensions import Dimension, Primitive
from nas.core.space import Sample
from search_spaces import _args

OUTPUTS = ("concat", "concat_leaves", "sum_leaves", "last")


class DagCellSpace(SearchSpace):
    """See the module docstring; every argument is keyword-only, as declared in YAML.

    ``DagCellSpace(edges=...)`` returns an :class:`~search_spaces.dag_edges.EdgeCellSpace` (ops on
    fixed edges), as ``pathlib.Path`` returns a ``PosixPath``: one ``_target_`` declares either form."""

    #: Text forms and networks this form of cell knows (``default`` is ``name=value`` tokens).
    TEXTS: tuple[str, ...] = ("default", "darts")
    NETWORKS: tuple[str | None, ...] = (None, "darts")

    def __new__(cls, *args: Any, **kwargs: Any) -> DagCellSpace:
        if cls is DagCellSpace and kwargs.get("edges") is not None:
            if kwargs["edges"] == "chosen":
                from search_spaces.dag_adjacency import AdjacencyCellSpace

                cls = AdjacencyCellSpace
            else:
                from search_spaces.dag_edges import EdgeCellSpace

                cls = EdgeCellSpace
        return super().__new__(cls)

    def __init__(self, *, name: str = "dag_cell", cells: Sequence[str] = ("cell",), cell_inputs: int = 1, nodes: int = 4,
                 inputs_per_node: int | None = None, edges: Any = None, ops: Any = ("a", "b"), output: str = "concat",
                 text: str = "default", network: str | None = None, channels: int = 36, layers: int = 20,
                 stem_multiplier: int = 3, cells_per_stage: int = 1, stem_channels: int = 8, stages: int = 3,
                 max_edges: int | None = None, canonical: Mapping[str, Any] | None = None) -> None:
        self.name = str(name)
        if inputs_per_node is not None and edges is not None:
            raise self._fail(f"`inputs_per_node` chooses a fixed number of inputs per node, which `edges` declares otherwise: give "
                             f"one of them, but got inputs_per_node={inputs_per_node!r} and edges={edges!r}.")
        if max_edges is not None and edges != "chosen":
            raise self._fail(f"`max_edges` limits a cell whose edges are chosen (`edges: chosen`), but this cell's are "
                             f"{'fixed' if edges is not None else 'chosen by its nodes (`inputs_per_node`)'}; got max_edges={max_edges!r}.")
        self._max_edges_given = max_edges
        if isinstance(cells, str) or not isinstance(cells, Sequence) or not cells or len(set(cells)) != len(cells) \
                or not all(isinstance(c, str) and c.isidentifier() for c in cells):
            raise self._fail(f"`cells` must be a list of distinct names (e.g. [normal, reduce]), but got {cells!r}.")
        self.cells = tuple(cells)
        self.cell_inputs = self._int("cell_inputs", cell_inputs, 1)
        self.nodes = self._int("nodes", nodes, 1)
        self.ops, self.builders = self._vocabulary(ops)
        if output not in OUTPUTS:
            raise self._fail(f"`output` must be one of {', '.join(OUTPUTS)}, but got {output!r}.")
        self.output = output
        self._dims: dict[str, Dimension] = self._declare_inputs(inputs_per_node, edges)
        if text not in self.TEXTS:
            raise self._fail(f"`text` must be one of {', '.join(self.TEXTS)} for {self._form()}, but got {text!r}.")
        self.text = text
        self._check_text()
        if network not in self.NETWORKS:
            known = ", ".join(str(n) for n in self.NETWORKS if n) + " or null (lookup-only)"
            raise self._fail(f"`network` must be {known} for {self._form()}, but got {network!r}.")
        self.network = network
        self.lookup_only = network is None
        self._check_network()
        self.channels = self._int("channels", channels, 1)
        self.layers = self._int("layers", layers, 1 if len(self.cells) == 1 else 3)
        self.stem_multiplier = self._int("stem_multiplier", stem_multiplier, 1)
        self.cells_per_stage = self._int("cells_per_stage", cells_per_stage, 1)
        self.stem_channels = self._int("stem_channels", stem_channels, 1)
        self.stages = self._int("stages", stages, 1)
        self._canonical_hook, _ = _args.function_target(self.name, "canonical", canonical, "(sample) -> str")

    def _form(self) -> str:
        return "a cell whose nodes choose their inputs"

    def _declare_inputs(self, inputs_per_node: Any, edges: Any) -> dict[str, Dimension]:
        """The dimensions: per cell type and node, ``inputs_per_node`` (input, op) pairs."""
        if edges is not None:
            raise self._fail(f"`edges` declares fixed edges, which {type(self).__name__} does not take, but got {edges!r}.")
        self.inputs_per_node = self._int("inputs_per_node", 1 if inputs_per_node is None else inputs_per_node, 1)
        dims: dict[str, Dimension] = {}
        for cell in self.cells:
            for j in self._node_ids():
                for a in range(self.inputs_per_node):
                    dims[f"{cell}.n{j}.in{a}"] = Categorical(tuple(range(j)))
                    dims[f"{cell}.n{j}.op{a}"] = Categorical(self.ops)
        return dims

    def _check_text(self) -> None:
        if self.text == "darts" and (self.cells != ("normal", "reduce") or self.cell_inputs != 2 or self.output != "concat"):
            raise self._fail("`text: darts` needs cells [normal, reduce], cell_inputs 2 and output concat (the DARTS cell), "
                             f"but got cells {list(self.cells)}, cell_inputs {self.cell_inputs}, output {self.output!r}.")

    def _check_network(self) -> None:
        if self.network == "darts":
            self._check_darts_network()

    # ---- declaration ---------------------------------------------------------------------------
    def _fail(self, message: str) -> ConfigError:
        return ConfigError(f"space {self.name!r}: {message}")

    def _int(self, key: str, value: Any, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self._fail(f"`{key}` must be an integer >= {low}, but got {value!r}.")
        return value

    def _vocabulary(self, ops: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
        from nas._config import target_of

        if isinstance(ops, Mapping):
            names, builders = list(ops), {}
            for op, spec in ops.items():
                if spec is None:
                    continue
                if not isinstance(spec, Mapping) or "_target_" not in spec:
                    raise self._fail(f"`ops.{op}` must be null (a label) or a mapping with `_target_` naming a function "
                                     f"(channels, stride, dims) -> nn.Module, but got {spec!r}.")
                builders[str(op)] = target_of(spec, kind=f"space '{self.name}': ops.{op}")
        elif isinstance(ops, Sequence) and not isinstance(ops, str):
            names, builders = list(ops), {}
        else:
            raise self._fail(f"`ops` must be a list of operation names or a mapping of names to builders, but got {ops!r}.")
        if not names or not all(isinstance(n, str) and n for n in names):
            raise self._fail(f"`ops` must name at least one operation, each a non-empty name, but got {names!r}.")
        if len(set(names)) != len(names):
            raise self._fail(f"`ops` must not repeat a name, but got {names!r}.")
        return tuple(str(n) for n in names), builders

    def _check_darts_network(self) -> None:
        from search_spaces._darts_modules import DARTS_OPS

        unknown = [op for op in self.ops if op not in DARTS_OPS and op not in self.builders]
        if unknown:
            raise self._fail(f"`network: darts` builds DARTS operations ({', '.join(DARTS_OPS)}) or ops with a `_target_`, "
                             f"but {unknown} have neither.")
        if self.cell_inputs != 2:
            raise self._fail(f"`network: darts` feeds each cell the two previous cells' outputs, so `cell_inputs` must be 2, "
                             f"but got {self.cell_inputs}.")
        if self.output not in ("concat", "concat_leaves"):
            raise self._fail("`network: darts` concatenates the cell's output states, so `output` must be concat or "
                             f"concat_leaves, but got {self.output}.")

    def _node_ids(self) -> range:
        return range(self.cell_inputs, self.cell_inputs + self.nodes)

    # ---- contract ------------------------------------------------------------------------------
    def dimensions(self) -> dict[str, Dimension]:
        return dict(self._dims)

    def pairs(self, sample: Mapping[str, Primitive], cell: str) -> list[tuple[str, int]]:
        """The cell's ``(op, input)`` pairs, node by node (the DARTS genotype's list)."""
        return [(str(sample[f"{cell}.n{j}.op{a}"]), int(sample[f"{cell}.n{j}.in{a}"]))  # type: ignore[arg-type]
                for j in self._node_ids() for a in range(self.inputs_per_node)]

    def outputs(self, sample: Mapping[str, Primitive], cell: str) -> list[int]:
        """The states the cell's output joins: every intermediate node, or the leaves."""
        if self.output == "concat":
            return list(self._node_ids())
        if self.output == "last":
            return [self._node_ids()[-1]]
        used = {source for _, source in self.pairs(sample, cell)}
        return [j for j in self._node_ids() if j not in used]

    def canonical(self, sample: Mapping[str, Primitive]) -> str:
        clean = self.validate(sample)
        if self._canonical_hook is not None:  # the benchmark's own key, named in YAML
            return str(self._canonical_hook(clean))
        return json.dumps({cell: self._canonical_cell(self.pairs(clean, cell)) for cell in self.cells}, separators=(",", ":"))

    def _canonical_cell(self, pairs: list[tuple[str, int]]) -> list[Any]:
        k, first = self.inputs_per_node, self.cell_inputs
        nodes = [sorted(pairs[i * k:(i + 1) * k], key=lambda p: (p[1], p[0])) for i in range(self.nodes)]
        best: list[Any] | None = None
        for order in itertools.permutations(range(self.nodes)):  # order[new] = old intermediate node index
            if self.output == "last" and order[-1] != self.nodes - 1:
                continue  # the output node keeps its place
            new_of = {first + old: first + new for new, old in enumerate(order)}
            relabelled = []
            for new, old in enumerate(order):
                ins = [(op, new_of.get(source, source)) for op, source in nodes[old]]
                if any(source >= first + new for _, source in ins):
                    break  # not a valid order: a node would read a later one
                relabelled.append(sorted(ins, key=lambda p: (p[1], p[0])))
            else:
                key = [[list(p) for p in node] for node in relabelled]
                if best is None or key < best:
                    best = key
        assert best is not None  # the identity order is always valid
        return best

    def format(self, sample: Mapping[str, Primitive]) -> str:
        if self.text != "darts":
            return super().format(sample)
        from search_spaces._darts_genotype import format_genotype

        clean = self.validate(sample)
        return format_genotype(self.pairs(clean, "normal"), self.outputs(clean, "normal"), self.pairs(clean, "reduce"),
                               self.outputs(clean, "reduce"))

    def parse(self, text: str) -> Sample:
        if self.text != "darts":
            return super().parse(text)
        from search_spaces._darts_genotype import parse_genotype

        try:
            genotype = parse_genotype(text)
        except ValueError as exc:
            raise InvalidSampleError(f"space '{self.name}': {exc}.") from None
        sample: dict[str, Primitive] = {}
        for cell in self.cells:
            pairs = cast(list[tuple[str, int]], genotype[cell])
            if len(pairs) != self.nodes * self.inputs_per_node:
                raise InvalidSampleError(f"space '{self.name}': `{cell}` must hold {self.nodes * self.inputs_per_node} (op, input) "
                                         f"pairs ({self.inputs_per_node} per node), but got {len(pairs)}.")
            for index, (op, source) in enumerate(pairs):
                j, a = self.cell_inputs + index // self.inputs_per_node, index % self.inputs_per_node
                sample[f"{cell}.n{j}.op{a}"], sample[f"{cell}.n{j}.in{a}"] = op, source
            if tuple(genotype[f"{cell}_concat"]) != tuple(self._node_ids()):
                raise InvalidSampleError(f"space '{self.name}': `{cell}_concat` must list every intermediate node "
                                         f"{list(self._node_ids())}, but got {list(genotype[f'{cell}_concat'])}.")
        return self.validate(sample)

    def _network_input(self, input_shape: Sequence[int], num_classes: int) -> tuple[int, ...]:
        """The checked ``input_shape`` of a network to build: refused for a lookup-only cell, or a shape that is
        not ``(C, L)`` / ``(C, H, W)``, or a class count below 1."""
        if self.network is None:
            known = " or ".join(f"`network: {n}`" for n in self.NETWORKS if n)
            raise ConfigError(f"space '{self.name}' is lookup-only (`network: null`, its ops are labels): score it with a table "
                              f"estimator (estimator=table), or declare {known}.")
        shape = tuple(int(s) if isinstance(s, Integral) and not isinstance(s, bool) else s for s in input_shape)
        if len(shape) not in (2, 3) or not all(isinstance(s, int) and s >= 1 for s in shape):
            raise ConfigError(f"space '{self.name}': `input_shape` must be (C, L) or (C, H, W) of positive integers, but got {shape!r}.")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"space '{self.name}': `num_classes` must be an integer >= 1, but got {num_classes!r}.")
        return shape

    def build(self, sample: Mapping[str, Primitive], input_shape: Sequence[int], num_classes: int) -> Any:
        shape = self._network_input(input_shape, num_classes)
        from search_spaces._darts_modules import DartsNetwork

        clean = self.validate(sample)
        cells = list(self.cells) * 2 if len(self.cells) == 1 else list(self.cells)  # one cell type serves as both
        return DartsNetwork(self.pairs(clean, cells[0]), self.outputs(clean, cells[0]), self.pairs(clean, cells[1]),
                            self.outputs(clean, cells[1]), in_channels=shape[0], dims=len(shape) - 1, num_classes=int(num_classes),
                            channels=self.channels, layers=self.layers, stem_multiplier=self.stem_multiplier,
                            builders=self.builders)

    def _reduced(self, width: float, depth: float) -> DagCellSpace:
        """Narrower and shallower for every form: the DARTS network's ``channels`` and ``layers``, the
        NAS-Bench-201 and -101 networks' ``stem_channels`` and ``cells_per_stage``; same cells."""
        small = copy.copy(self)
        small.channels = max(1, round(self.channels * width))
        small.layers = max(1 if len(self.cells) == 1 else 3, round(self.layers * depth))
        small.stem_channels = max(1, round(self.stem_channels * width))
        small.cells_per_stage = max(1, round(self.cells_per_stage * depth))
        return small
