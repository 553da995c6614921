"""NAS-Bench-201 as a table estimator for the ``cell_nb201`` space (contrib: it knows one benchmark).

    est = nas.contrib.nb201.NB201Estimator(dataset="cifar100")     # or estimator=nb201 in Hydra
    nas.search(space="cell_nb201", strategy="evolution", estimator="nb201", trials=100, seed=0)

The data is read from ``../shared/benchmarks/nb201/`` (relative to the working directory or to
the project), from ``$NAS_NB201_DIR``, or from the ``path`` given; nothing is downloaded. The table
is not shipped with the package (README: "Getting the NAS-Bench-201 table"); check a copy with

    python -m nas.contrib.nb201 [FOLDER]
"""

from __future__ import annotations

import csv
import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError, unknown_name_message
from nas.core.space import SearchSpace
from nas.estimators.table import TableEstimator

#: Dataset names (as in the benchmark's papers) and the CSV column of each one's test accuracy (%).
NB201_COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "imagenet16-120": "ImageNetTestAccuracy200Epochs",
}
NB201_FILE = "nb201_test_accuracy.csv"
NB201_CELLS = 15_625
#: sha256 of the file this project was tested with (a copy of the published table, see the README).
NB201_SHA256 = "cb5d777ec3368be83c8f9b3aa4d520696051cb0eb8d94b8f85b519f9ea4afa3e"
_RELATIVE = Path("..") / "shared" / "benchmarks" / "nb201"


def nb201_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding ``nb201_test_accuracy.csv``; the error says where it looked."""
    if path is not None:
        candidates = [Path(path)]
    else:
        env = os.environ.get("NAS_NB201_DIR")
        project = Path(__file__).resolve().parents[2]
        candidates = ([Path(env)] if env else []) + [Path.cwd() / _RELATIVE, project / _RELATIVE]
    for folder in candidates:
        if (folder / NB201_FILE).is_file():
            return folder.resolve()
    looked = ", ".join(str(c) for c in candidates)
    raise ConfigError(f"estimator 'nb201': `path` must be a folder holding {NB201_FILE}, but none was found (looked in: {looked}). "
                      f"Pass estimator.path=... or set NAS_NB201_DIR; the README section 'Getting the NAS-Bench-201 table' says where to get it.")


@lru_cache(maxsize=4)
def nb201_table(path: str | os.PathLike[str] | None = None) -> dict[str, dict[str, float]]:
    """Every one of the 15,625 cells: architecture string -> ``{dataset: test accuracy (%)}``."""
    table: dict[str, dict[str, float]] = {}
    file = nb201_dir(path) / NB201_FILE
    with open(file, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("ArchitectureString", *NB201_COLUMNS.values()) if c not in (reader.fieldnames or ())]
        if missing:
            raise ConfigError(f"estimator 'nb201': {file} must have the columns ArchitectureString and "
                              f"{', '.join(NB201_COLUMNS.values())}, but lacks {', '.join(missing)} (it has: {reader.fieldnames}).")
        for line, row in enumerate(reader, start=2):
            try:
                table[row["ArchitectureString"]] = {name: float(row[col]) for name, col in NB201_COLUMNS.items()}
            except (TypeError, ValueError):
                raise ConfigError(f"estimator 'nb201': {file} line {line} must hold a number in each accuracy column, "
                                  f"but got {[row.get(c) for c in NB201_COLUMNS.values()]}.") from None
    if len(table) != NB201_CELLS:
        raise ConfigError(f"estimator 'nb201': {file} must hold all {NB201_CELLS:,} cells of the benchmark, but holds "
                          f"{len(table):,} distinct ones: a truncated or different file.")
    return table


def describe_table(path: str | os.PathLike[str] | None = None) -> str:
    """A summary of the table found (or the error of :func:`nb201_table`): where, cells, each dataset's
    best cell, and whether it is byte for byte the file this project was tested with."""
    file = nb201_dir(path) / NB201_FILE
    table = nb201_table(str(file.parent))
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    lines = [f"NAS-Bench-201 table: {file}", f"  {len(table):,} cells"]
    for name in NB201_COLUMNS:
        cell = max(table, key=lambda k: table[k][name])
        lines.append(f"  best {name}: {table[cell][name]:.2f}% test accuracy, {cell}")
    same = "the file this project was tested with" if digest == NB201_SHA256 else "not the file this project was tested with"
    lines.append(f"  sha256 {digest} ({same})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m nas.contrib.nb201 [FOLDER]``: find, check and summarise the table."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    try:
        print(describe_table(args[0] if args else None))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


#: The benchmark's edges as dimensions of the ``cell_nb201`` space, in its order.
NB201_EDGES = ("cell.e0_1", "cell.e0_2", "cell.e1_2", "cell.e0_3", "cell.e1_3", "cell.e2_3")


class NB201Estimator(TableEstimator):
    """NAS-Bench-201 lookup: the score is the cell's test accuracy (%) on ``dataset`` after 200 epochs.

    Every dataset column is recorded with each trial, so one search can be read on all three.
    The table has no training times, so no cost is recorded unless ``seconds`` is given.
    """

    def __init__(self, *, space: SearchSpace | None = None, dataset: str = "cifar10", path: str | None = None,
                 seconds: float | None = None) -> None:
        if dataset not in NB201_COLUMNS:
            raise ConfigError("estimator 'nb201': " + unknown_name_message("dataset", dataset, NB201_COLUMNS))
        if space is not None and not _is_nb201_cell_space(space):
            raise ConfigError(f"estimator 'nb201' scores the 15,625 cells of the `cell_nb201` space (4 nodes, 6 edges, its 5 ops), "
                              f"but the space is '{space.name}'. Run with space=cell_nb201.")
        super().__init__(nb201_table(path), space=space, metric=dataset, seconds=seconds, name="nb201")
        self.dataset = dataset

    def describe(self) -> dict[str, Any]:
        return {"estimator": "nb201", "dataset": self.dataset}


def _is_nb201_cell_space(space: SearchSpace) -> bool:
    """The benchmark's cells: its 6 edge dimensions over its 5 ops, written in its strings (``text: nb201``)."""
    dims = space.dimensions()
    ops = {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"}
    return getattr(space, "text", None) == "nb201" and list(dims) == list(NB201_EDGES) and all(
        set(getattr(d, "choices", ())) == ops for d in dims.values())

if __name__ == "__main__":
    raise SystemExit(main())
