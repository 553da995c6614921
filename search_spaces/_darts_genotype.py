"""The DARTS genotype text, as the DARTS code prints it, read and written without ``eval``.

``Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
reduce=[...], reduce_concat=range(2, 6))``: per cell type, two ``(op, input)`` pairs per intermediate
node (node ``k`` of ``n`` is state ``k + 2``; states 0 and 1 are the two cell inputs), and the states
concatenated into the cell's output. ``range(a, b)`` is accepted for a concat list, as DARTS writes it.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

Pairs = tuple[tuple[str, int], ...]
CELLS = ("normal", "reduce")


def parse_genotype(text: str) -> dict[str, Pairs | tuple[int, ...]]:
    """``{normal, normal_concat, reduce, reduce_concat}`` from the text; ``ValueError`` names what is wrong."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"a DARTS genotype must read Genotype(normal=[...], normal_concat=[...], reduce=[...], "
                         f"reduce_concat=[...]), but {text!r} does not parse ({exc.msg})") from None
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype") or tree.args:
        raise ValueError(f"a DARTS genotype must be a call Genotype(normal=..., ...) with keywords only, but got {text!r}")
    fields = {kw.arg: kw.value for kw in tree.keywords}
    wanted = {"normal", "normal_concat", "reduce", "reduce_concat"}
    if set(fields) != wanted:
        raise ValueError(f"a DARTS genotype must have exactly the fields {sorted(wanted)}, but got {sorted(str(f) for f in fields)}")
    out: dict[str, Pairs | tuple[int, ...]] = {}
    for cell in CELLS:
        out[cell] = _pairs(cell, fields[cell])
        out[f"{cell}_concat"] = _concat(f"{cell}_concat", fields[f"{cell}_concat"])
    return out


def _pairs(name: str, node: ast.expr) -> Pairs:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"`{name}` must be a list of (op, input) pairs, but got {ast.unparse(node)!r}") from None
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], int) for p in value):
        raise ValueError(f"`{name}` must be a list of (op, input) pairs, but got {value!r}")
    return tuple((str(op), int(source)) for op, source in value)


def _concat(name: str, node: ast.expr) -> tuple[int, ...]:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" and not node.keywords:
        try:
            bounds = [ast.literal_eval(a) for a in node.args]
        except ValueError:
            bounds = []
        if len(bounds) in (1, 2) and all(isinstance(b, int) for b in bounds):
            return tuple(range(*bounds))
    try:
        value = ast.literal_eval(node)
    except ValueError:
        value = None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError(f"`{name}` must be a list of state indices or range(a, b), but got {ast.unparse(node)!r}")
    return tuple(value)


def format_genotype(normal: Sequence[tuple[str, int]], normal_concat: Sequence[int], reduce: Sequence[tuple[str, int]],
                    reduce_concat: Sequence[int]) -> str:
    """The text DARTS prints for a genotype (``str(Genotype(...))`` with list concats)."""
    def pairs(values: Sequence[tuple[str, int]]) -> str:
        return "[" + ", ".join(f"({op!r}, {source})" for op, source in values) + "]"

    return (f"Genotype(normal={pairs(normal)}, normal_concat={list(normal_concat)}, "
            f"reduce={pairs(reduce)}, reduce_concat={list(reduce_concat)})")
