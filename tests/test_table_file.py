"""Tables read from csv, json, parquet and pickle files: key column or hook, select and report columns."""

from __future__ import annotations

import csv
import json
import pickle

import pytest

import nas
from nas.core import ConfigError
from nas.estimators.table_file import read_rows, table_from_file
from search_spaces.generic import GenericSpace

SPACE = GenericSpace(name="small", dimensions={"a": ["x", "y", "z"], "b": {"low": 1, "high": 3},
                                               "c": {"choices": ["p", "q"], "active_if": {"a": "z"}}})


def rows():
    out = []
    for sample in SPACE.grid():
        valid = sample["b"] / 10 + (sample["a"] == "z") * 0.5 + (sample.get("c") == "q") * 0.1
        out.append({"arch": SPACE.format(sample), "hash": SPACE.key(sample), "valid": valid,
                    "test": round(1 - valid, 3), "latency": sample["b"] * 3, "curve": [valid / 2, valid]})
    return out


def write(path, data):
    if path.suffix == ".csv":
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(data[0]))
            writer.writeheader()
            writer.writerows([{**r, "curve": json.dumps(r["curve"])} for r in data])
    elif path.suffix == ".json":
        path.write_text(json.dumps(data))
    elif path.suffix == ".parquet":
        pyarrow = pytest.importorskip("pyarrow")
        import pyarrow.parquet as parquet

        parquet.write_table(pyarrow.Table.from_pylist(data), path)
    else:
        path.write_bytes(pickle.dumps(data))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet", ".pkl"])
def test_every_format_gives_the_same_rows(tmp_path, suffix):
    table = read_rows(write(tmp_path / f"t{suffix}", rows()), key="arch")
    assert len(table) == 12
    first = table['a="x" b=1']
    assert first["valid"] == pytest.approx(0.1) and first["latency"] == 3 and first["curve"] == pytest.approx([0.05, 0.1])


def test_a_json_mapping_of_keys_to_rows_or_scores(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"k1": {"valid": 0.5}, "k2": 0.7}))
    assert read_rows(tmp_path / "m.json", key="arch") == {"k1": {"valid": 0.5}, "k2": {"score": 0.7}}


def test_select_scores_report_records_and_the_leaderboard_titles_them(tmp_path):
    path = write(tmp_path / "t.csv", rows())
    estimator = table_from_file(path=str(path), select="valid", report=["test", "latency"], space=SPACE)
    result = nas.search(space=SPACE, estimator=estimator, strategy="grid", trials=12, out_dir=tmp_path / "run", progress=False)
    best = result.best
    assert best.value == pytest.approx(0.9) and best.arch.sample == {"a": "z", "b": 3, "c": "q"}
    assert best.metrics["test"] == pytest.approx(0.1) and best.metrics["latency"] == 9.0 and "curve" not in best.metrics
    header = result.leaderboard().splitlines()[0]
    assert "| valid | latency | test |" in header and header.count("valid") == 1


def test_the_lookup_hook_maps_a_sample_to_the_benchmarks_own_key(tmp_path):
    path = write(tmp_path / "t.json", rows())
    estimator = table_from_file(path=str(path), key="hash", select="valid", lookup={"_target_": "tests.test_table_file.key_of"})
    record = nas.search(space=SPACE, estimator=estimator, strategy="grid", trials=12, out_dir=tmp_path / "run", progress=False).best
    assert record.value == pytest.approx(0.9)


def key_of(sample):
    return SPACE.key(sample)


def test_a_curve_column_goes_through_the_pruners(tmp_path):
    path = write(tmp_path / "t.parquet", rows())
    estimator = table_from_file(path=str(path), select="valid", curve="curve", seconds=4.0, space=SPACE)
    record = nas.search(space=SPACE, estimator=estimator, strategy="grid", trials=3, out_dir=tmp_path / "run", progress=False).trials[0]
    assert record.metrics["epochs"] == 2 and record.metrics["seconds"] == 4.0


@pytest.mark.parametrize("kwargs, message", [
    ({"path": "results.txt"}, "must end with one of .csv, .json, .parquet"),
    ({"path": "missing.csv"}, "must be a file, but there is none"),
    ({"key": "nope"}, "every row must have column 'nope', but row 0 has only"),
    ({"select": "accuracy"}, "`select` must name a column of .* but got 'accuracy'"),
    ({"report": ["test", "energy"]}, "`report` must name a column of .* but got 'energy'"),
    ({"lookup": "nowhere.fn"}, "lookup: `_target_` must name an importable"),
])
def test_bad_table_options_are_refused_naming_the_key(tmp_path, monkeypatch, kwargs, message):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "t.csv", rows())
    with pytest.raises(ConfigError, match=message):
        table_from_file(**{"path": "t.csv", "select": "valid", **kwargs})


def test_a_row_missing_from_the_table_fails_its_trial_and_the_search_goes_on(tmp_path):
    path = write(tmp_path / "t.json", rows()[:6])
    result = nas.search(space=SPACE, estimator=table_from_file(path=str(path), select="valid", space=SPACE), strategy="grid",
                        trials=12, out_dir=tmp_path / "run", progress=False)
    states = [str(r.state) for r in result.trials]
    assert states.count("complete") == 6 and states.count("failed") == 6
    assert "is not in the table" in next(r for r in result.trials if str(r.state) == "failed").reason


def test_nas_search_reads_a_table_from_the_command_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "small.yaml").write_text("_target_: search_spaces.generic.GenericSpace\ndimensions:\n  a: [x, y, z]\n"
                                         "  b: {low: 1, high: 3}\n  c: {choices: [p, q], active_if: {a: z}}\n")
    path = write(tmp_path / "t.csv", rows())
    cli = Path(sys.executable).with_name("nas-search")
    out = subprocess.run([str(cli), f"space={tmp_path / 'small.yaml'}", "estimator=table", f"estimator.path={path}",
                          "estimator.select=valid", "estimator.report=[test]", "strategy=grid", "budget.trials=12",
                          f"hydra.run.dir={tmp_path / 'run'}", "tensorboard=false"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "nas: space 'small' (3 dims)" in out.stdout
    assert '| 1 | 5 |' in out.stdout or 'c="q"` |' in out.stdout.split("| 1 |")[1].splitlines()[0]
    board = subprocess.run([str(cli.with_name("nas-leaderboard")), str(tmp_path / "run")], capture_output=True, text=True, timeout=60)
    assert board.returncode == 0 and "| valid | test |" in board.stdout.splitlines()[0]


def test_a_table_estimator_given_without_its_space_finds_rows_by_the_text_form(tmp_path):
    """nas.search gives a TableEstimator object the search's space, as the config route does: before, its rows
    keyed by `space.format(...)` were looked up by the 16-hex key and every trial failed."""
    estimator = table_from_file(path=str(write(tmp_path / "t.csv", rows())), select="valid")
    assert estimator.space is None
    result = nas.search(space=SPACE, estimator=estimator, strategy="grid", trials=12, out_dir=tmp_path / "run", progress=False)
    assert [str(r.state) for r in result.trials].count("complete") == 12 and result.best.value == pytest.approx(0.9)
