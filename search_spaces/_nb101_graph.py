"""NAS-Bench-101's notion of "the same cell": prune a spec, then hash it invariantly to node order.

A spec is an upper-triangular 0/1 adjacency matrix over ``V`` nodes (node 0 the input, node ``V-1``
the output) and one op label per node. The benchmark stores each cell under the hash of its *pruned*
spec: nodes not on a path from input to output are deleted, and the hash is a Weisfeiler-Lehman-style
fingerprint (NAS-Bench-101's ``graph_util.hash_module``): each node starts from (out-degree,
in-degree, label), then for ``V`` rounds takes the MD5 of its sorted in-neighbours', its sorted
out-neighbours' and its own hash; the fingerprint is the MD5 of the sorted node hashes. Labels are
the op's index in the benchmark's op list, -1 for the input and -2 for the output.

Written here from the published algorithm (no dependency on the benchmark's code or TensorFlow);
``tests/test_nb101_graph.py`` pins it on the benchmark's own test cases and on a spec the benchmark
returned for an isomorphic query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

Matrix = tuple[tuple[int, ...], ...]

#: NAS-Bench-101's ``config['available_ops']``, in its order: the labels its hashes are computed on.
NB101_OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
INPUT, OUTPUT = "input", "output"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 - the benchmark's fingerprint, not security


def as_matrix(matrix: Sequence[Sequence[int]]) -> Matrix:
    """A square 0/1 upper-triangular matrix as a tuple of tuples; raises ``ValueError`` otherwise."""
    rows = tuple(tuple(int(v) for v in row) for row in matrix)
    size = len(rows)
    if any(len(row) != size for row in rows):
        raise ValueError(f"the adjacency matrix must be square, but got rows of lengths {[len(r) for r in rows]}")
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if value not in (0, 1):
                raise ValueError(f"the adjacency matrix must hold 0 and 1, but entry [{i}][{j}] is {value}")
            if value and j <= i:
                raise ValueError(f"the adjacency matrix must be upper triangular (edges i -> j with i < j), but [{i}][{j}] is 1")
    return rows


def prune(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> tuple[Matrix, tuple[str, ...]] | None:
    """The spec without nodes off every input-to-output path (the benchmark's ``ModelSpec._prune``);
    ``None`` when the input does not reach the output."""
    m = as_matrix(matrix)
    size = len(m)
    if len(ops) != size:
        raise ValueError(f"a spec needs one op per node: {size} nodes, but got {len(ops)} ops")
    forward, frontier = {0}, [0]
    while frontier:
        top = frontier.pop()
        for v in range(top + 1, size):
            if m[top][v] and v not in forward:
                forward.add(v)
                frontier.append(v)
    backward, frontier = {size - 1}, [size - 1]
    while frontier:
        top = frontier.pop()
        for v in range(top):
            if m[v][top] and v not in backward:
                backward.add(v)
                frontier.append(v)
    keep = sorted(forward & backward)
    if len(keep) < 2 or keep[0] != 0 or keep[-1] != size - 1:
        return None
    return tuple(tuple(m[i][j] for j in keep) for i in keep), tuple(ops[i] for i in keep)


def graph_hash(matrix: Sequence[Sequence[int]], labels: Sequence[int]) -> str:
    """NAS-Bench-101's fingerprint of a labelled directed graph (equal for isomorphic graphs)."""
    m = tuple(tuple(int(v) for v in row) for row in matrix)
    size = len(m)
    if len(labels) != size:
        raise ValueError(f"one label per node: {size} nodes, but got {len(labels)} labels")
    in_degree = [sum(m[w][v] for w in range(size)) for v in range(size)]
    out_degree = [sum(m[v]) for v in range(size)]
    hashes = [_md5(str((out_degree[v], in_degree[v], labels[v]))) for v in range(size)]
    for _ in range(size):
        hashes = [_md5("".join(sorted(hashes[w] for w in range(size) if m[w][v])) + "|"
                       + "".join(sorted(hashes[w] for w in range(size) if m[v][w])) + "|" + hashes[v])
                  for v in range(size)]
    return _md5(str(sorted(hashes)))


def spec_hash(matrix: Sequence[Sequence[int]], ops: Sequence[str], vocabulary: Sequence[str] = NB101_OPS) -> str | None:
    """The benchmark's key of a spec (its ``ModelSpec.hash_spec``): the hash of the pruned spec with
    ops labelled by their index in ``vocabulary``; ``None`` for a spec whose input misses the output."""
    pruned = prune(matrix, ops)
    if pruned is None:
        return None
    m, kept = pruned
    labels = [-1, *(list(vocabulary).index(op) for op in kept[1:-1]), -2]
    return graph_hash(m, labels)
