"""A 26k-entry table read from a file, searched through ``nas.search``: how long 100 lookups take.

    .venv/bin/python experiments/table_file_speed.py [--format csv|json|parquet|pkl] [--trials 100]

The space is declared in YAML alone (the generic family, lookup-only): the GNN benchmark's shape with
its inputs fixed to a sum of two choices, 4 nodes x 9 labels and 2 x 2 input choices = 26,244 cells,
one table row each (a validation score, a test score, a latency). The table is written once, then
``nas.search(space=<yaml>, estimator="table", ...)`` runs ``--trials`` random-search lookups, first
with the trials kept in memory (storage=memory: the whole call, reading the file included, is timed;
target < 1 s), then in a SQLite file (seconds per trial: the lifecycle's target is < 50 ms).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nas  # noqa: E402

OPS = ["gcn", "gat", "gin", "cheb", "sage", "arma", "graph", "fc", "skip"]
SPACE = f"""\
_target_: search_spaces.generic.GenericSpace
name: gnn_like
dimensions:
  node1.op: {OPS}
  node2.op: {OPS}
  node3.input: [0, 1]
  node3.op: {OPS}
  node4.input: [0, 2]
  node4.op: {OPS}
"""


def write_table(folder: Path, fmt: str) -> Path:
    space = nas.get_space(str(folder / "gnn_like.yaml"))
    rng = np.random.default_rng(0)
    rows = []
    for sample in space.grid():
        valid = float(rng.uniform(0.5, 0.9))
        rows.append({"arch": space.format(sample), "valid_perf": valid, "perf": valid - float(rng.uniform(0, 0.05)),
                     "latency": float(rng.uniform(1, 9))})
    path = folder / f"results.{fmt}"
    if fmt == "csv":
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "json":
        path.write_text(json.dumps(rows))
    elif fmt == "parquet":
        import pyarrow
        import pyarrow.parquet as parquet

        parquet.write_table(pyarrow.Table.from_pylist(rows), path)
    else:
        path.write_bytes(pickle.dumps(rows))
    return path


def search(folder: Path, table: Path, trials: int, storage: str, out: str) -> tuple[float, nas.SearchResult]:
    start = time.perf_counter()
    result = nas.search(space=str(folder / "gnn_like.yaml"), estimator="table", strategy="random", trials=trials,
                        out_dir=folder / out, storage=storage, progress=False, tensorboard=False,
                        overrides=[f"estimator.path={table}", "estimator.select=valid_perf", "estimator.report=[perf,latency]"])
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", default="csv", choices=["csv", "json", "parquet", "pkl"])
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "gnn_like.yaml").write_text(SPACE)
        table = write_table(folder, args.format)
        points = sum(1 for _ in itertools.islice(nas.get_space(str(table.parent / "gnn_like.yaml")).grid(), 10**6))
        print(f"table: {points} cells, {table.name} {table.stat().st_size / 1e6:.1f} MB")
        started = time.perf_counter()
        from nas.estimators.table_file import read_rows

        read_rows(table, key="arch")
        print(f"reading the table alone: {time.perf_counter() - started:.3f} s")
        search(folder, table, 5, "memory", "warm")  # imports and Hydra's first compose, paid once per process
        seconds, result = search(folder, table, args.trials, "memory", "memory")
        done = sum(str(r.state) == "complete" for r in result.trials)
        print(f"storage=memory: {args.trials} lookups through nas.search in {seconds:.3f} s ({done} complete) "
              f"target < 1 s: {'met' if seconds < 1 else 'MISSED'}")
        seconds, result = search(folder, table, args.trials, f"sqlite:///{folder / 'study.db'}", "sqlite")
        per_trial = 1000 * seconds / args.trials
        print(f"storage=sqlite: {args.trials} lookups in {seconds:.3f} s, {per_trial:.1f} ms per trial "
              f"target < 50 ms: {'met' if per_trial < 50 else 'MISSED'}")
        print(result.leaderboard(3))


if __name__ == "__main__":
    main()
