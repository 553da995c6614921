"""Tables read from a user's file (csv, json, parquet, pickle): a benchmark's results, looked up by key.

``estimator=table estimator.path=results.csv estimator.key=arch estimator.select=valid_perf``::

    _target_: nas.estimators.table_file.table_from_file
    path: results.csv       # .csv | .json | .parquet | .pkl/.pickle
    key: arch               # the column holding each row's architecture key
    lookup: null            # _target_ of a function sample -> that key (default: the space's text form, or its key)
    select: valid_perf      # the column the search maximises
    report: [perf, latency] # columns recorded with each trial (the leaderboard shows them)
    curve: null             # a column of per-epoch values (pruners stop lookups where they would stop training)
    seconds: null           # a column, or a number: what one evaluation would have cost

A row is ``{key column: text, other columns: numbers or text}``; a json or pickle file may also map
each key to its row (or to a bare score). A curve in csv is a JSON list in its cell (``"[0.1, 0.4]"``).
"""

from __future__ import annotations

import csv
import json
import math
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError
from nas.core.space import SearchSpace
from nas.estimators.table import TableEstimator

FORMATS = (".csv", ".json", ".parquet", ".pkl", ".pickle")


def read_rows(path: str | Path, *, key: str) -> dict[str, dict[str, Any]]:
    """The file's rows by the value of their ``key`` column; every error names the file and what held."""
    file = Path(path).expanduser()
    where = f"estimator 'table': `path` {str(file)!r}"
    if file.suffix.lower() not in FORMATS:
        raise ConfigError(f"{where} must end with one of {', '.join(FORMATS)}, but it ends with {file.suffix or 'nothing'!r}.")
    if not file.is_file():
        raise ConfigError(f"{where} must be a file, but there is none.")
    suffix = file.suffix.lower()
    data: Any
    if suffix == ".csv":
        with file.open(newline="") as handle:
            data = [{k: _cell(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    elif suffix == ".json":
        try:
            data = json.loads(file.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where} must hold JSON, but it does not parse: {exc}.") from None
    elif suffix == ".parquet":
        try:
            import pyarrow.parquet as parquet  # type: ignore[import-untyped]
        except ImportError:
            raise ConfigError(f"{where}: reading Parquet needs pyarrow: pip install 'nas[tables]' (or pyarrow).") from None
        data = parquet.read_table(file).to_pylist()
    else:
        try:
            with file.open("rb") as handle:
                data = pickle.load(handle)  # noqa: S301 - the user's own results file, named by the user
        except ModuleNotFoundError as exc:
            raise ConfigError(f"{where}: the pickle needs module {exc.name!r} to load; save it as a dict or a list of dicts "
                              "(e.g. DataFrame.to_dict('records')), or as csv/parquet.") from None
        if hasattr(data, "to_dict") and not isinstance(data, Mapping):  # a pandas DataFrame
            data = data.to_dict("records")
    return _by_key(data, key, where)


def _cell(text: str | None) -> Any:
    """A csv cell as the number, list or text it spells."""
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def _by_key(data: Any, key: str, where: str) -> dict[str, dict[str, Any]]:
    if isinstance(data, Mapping):  # {key: row} or {key: score}
        return {str(k): dict(v) if isinstance(v, Mapping) else {"score": v} for k, v in data.items()}
    if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
        raise ConfigError(f"{where} must hold a list of rows or a mapping of keys to rows, but it holds a {type(data).__name__}.")
    rows: dict[str, dict[str, Any]] = {}
    for number, row in enumerate(data):
        if not isinstance(row, Mapping):
            raise ConfigError(f"{where}: row {number} must be a mapping of columns to values, but it is {row!r}.")
        if key not in row:
            raise ConfigError(f"{where}: `key` names the column holding each row's architecture, so every row must have "
                              f"column {key!r}, but row {number} has only {sorted(row)}.")
        rows[str(row[key])] = dict(row)
    if not rows:
        raise ConfigError(f"{where} must hold at least one row, but it is empty.")
    return rows


def table_from_file(*, path: str, key: str = "arch", select: str = "score", report: Sequence[str] = (),
                    lookup: Mapping[str, Any] | str | None = None, curve: str | None = None, seconds: Any = None,
                    space: SearchSpace | None = None, name: str = "table") -> TableEstimator:
    """A :class:`TableEstimator` over the rows of ``path``; see the module docstring for each key."""
    from nas._config import function_of

    rows = read_rows(path, key=key)
    report = [report] if isinstance(report, str) else list(report or ())
    columns = set().union(*(row.keys() for row in rows.values()))
    wanted = {"select": [select], "report": report, "curve": [curve] if curve else []}
    if isinstance(seconds, str):
        wanted["seconds"] = [seconds]
    for option, names in wanted.items():
        for column in names:
            if column not in columns:
                raise ConfigError(f"estimator '{name}': `{option}` must name a column of {str(path)!r} ({sorted(columns)}), "
                                  f"but got {column!r}.")
    cost = None if isinstance(seconds, str) else seconds
    table = {text: _entry(row, select, report, curve, seconds if isinstance(seconds, str) else None) for text, row in rows.items()}
    key_of, _ = function_of(lookup, key="lookup", kind=f"estimator '{name}'", what="(sample) -> the table's key")
    return TableEstimator(table, space=space, metric=select, seconds=cost, name=name, key_of=key_of)


def _entry(row: Mapping[str, Any], select: str, report: Sequence[str], curve: str | None, seconds: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {column: _reported(row.get(column)) for column in report}
    entry[select] = _number(row.get(select))
    if curve:
        values = row.get(curve)
        entry["curve"] = list(values) if isinstance(values, (list, tuple)) else [] if values is None else [values]
    if seconds:
        entry["seconds"] = row.get(seconds)
    return entry


def _reported(value: Any) -> Any:
    """Numbers as floats (the leaderboard's columns), text as it is."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan  # the trial fails with the reason: "the table gives nan as ..."


table_from_file.needs_data = False  # type: ignore[attr-defined]  # built without a dataset, as TableEstimator is
