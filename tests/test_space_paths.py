"""A space from a YAML path or a user's config folder, from the CLI and from Python; recorded for nas.load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import nas
from nas.core import ConfigError
from search_spaces.generic import GenericSpace

BUILT = """\
_target_: search_spaces.generic.GenericSpace
dimensions:
  layers: {low: 1, high: 2}
  width: [16, 32]
  regularise: [false, true]
  dropout: {low: 0.1, high: 0.3, active_if: {regularise: true}}
build: {_target_: search_spaces.generic.mlp}
"""


def lookup(arch):
    return 1.0 + arch.sample["layers"]


def test_nas_search_cli_trains_a_space_given_as_a_yaml_path(tmp_path):
    (tmp_path / "tiny.yaml").write_text(BUILT)
    cli = Path(sys.executable).with_name("nas-search")
    out = subprocess.run([str(cli), f"space={tmp_path / 'tiny.yaml'}", "dataset=digits", "budget.trials=2", "estimator.epochs=1",
                          f"hydra.run.dir={tmp_path / 'run'}", "tensorboard=false"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "nas: space 'tiny' (4 dims)" in out.stdout and "2 trials: 2 complete." in out.stdout
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())
    assert recorded["space"] == "tiny" and recorded["space_config"]["build"] == {"_target_": "search_spaces.generic.mlp"}
    result = nas.load(tmp_path / "run")
    assert result.space.name == "tiny" and len(result.trials) == 2 and result.best.value > 0.1


def test_nas_search_python_takes_a_yaml_path_and_records_it(tmp_path):
    (tmp_path / "tiny.yaml").write_text(BUILT)
    result = nas.search(space=str(tmp_path / "tiny.yaml"), estimator=nas.TableEstimator(lookup), strategy="grid", trials=3,
                        out_dir=tmp_path / "run", progress=False, tensorboard=False)
    assert result.space.name == "tiny" and result.best.value == 3.0
    assert nas.load(tmp_path / "run").space.dimensions() == result.space.dimensions()


def test_a_file_named_like_a_packaged_space_is_the_users(tmp_path):
    (tmp_path / "mlp.yaml").write_text(BUILT)
    result = nas.search(space=str(tmp_path / "mlp.yaml"), estimator=nas.TableEstimator(lookup), trials=2,
                        out_dir=tmp_path / "run", progress=False, tensorboard=False)
    assert isinstance(result.space, GenericSpace) and result.space.name == "mlp"


def test_a_user_config_folder_works_from_python(tmp_path):
    (tmp_path / "conf" / "space").mkdir(parents=True)
    (tmp_path / "conf" / "space" / "mine.yaml").write_text(BUILT)
    folder = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]"]
    result = nas.search(space="mine", estimator=nas.TableEstimator(lookup), trials=2, out_dir=tmp_path / "run", progress=False,
                        tensorboard=False, overrides=folder)
    assert result.space.name == "mine" and nas.load(tmp_path / "run").space.name == "mine"
    with pytest.raises(ConfigError, match="Unknown space 'mien'. Did you mean 'mine'"):
        nas.search(space="mien", trials=1, out_dir=tmp_path / "other", progress=False, overrides=folder)


def test_a_space_object_is_kept_so_load_and_the_leaderboard_work_later(tmp_path):
    space = GenericSpace(name="obj", dimensions={"layers": {"low": 1, "high": 3}})
    nas.search(space=space, estimator=nas.TableEstimator(lookup), strategy="grid", trials=3, out_dir=tmp_path / "run",
               progress=False, tensorboard=False)
    loaded = nas.load(tmp_path / "run")
    assert loaded.space.name == "obj" and loaded.best.value == 4.0
    board = subprocess.run([str(Path(sys.executable).with_name("nas-leaderboard")), str(tmp_path / "run")],
                           capture_output=True, text=True, timeout=60)
    assert board.returncode == 0 and "`layers=3`" in board.stdout


class LocalSpace(GenericSpace):
    pass


def test_a_space_object_that_cannot_be_pickled_is_said_and_load_asks_for_it(tmp_path):
    space = LocalSpace(name="local", dimensions={"layers": {"low": 1, "high": 3}})
    space.unpicklable = lambda: None  # a lambda: pickle refuses it
    with pytest.warns(UserWarning, match="cannot be pickled .* nas.load"):
        nas.search(space=space, estimator=nas.TableEstimator(lookup), trials=2, out_dir=tmp_path / "run", progress=False,
                   tensorboard=False)
    with pytest.raises(ConfigError, match="could not be kept; pass it: nas.load"):
        nas.load(tmp_path / "run")
    assert nas.load(tmp_path / "run", space=space).best is not None


def test_a_missing_yaml_path_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="space: the YAML file .*nowhere.yaml' does not exist"):
        nas.search(space=str(tmp_path / "nowhere.yaml"), trials=1, out_dir=tmp_path / "run", progress=False)


def test_a_sweep_over_yaml_files_is_turned_into_names_hydra_composes(tmp_path):
    from nas._config import compose, group_file_overrides

    (tmp_path / "one.yaml").write_text(BUILT)
    (tmp_path / "mlp.yaml").write_text(BUILT.replace("[16, 32]", "[8]"))  # named like a packaged space
    rewritten = group_file_overrides([f"space={tmp_path / 'one.yaml'},mlp,{tmp_path / 'mlp.yaml'}", "seed=1"])
    names = rewritten[0].partition("=")[2].split(",")
    assert names[:2] == ["one", "mlp"] and names[2].startswith("mlp-") and rewritten[1] == "seed=1"
    assert compose([f"space={names[2]}"]).space.dimensions.width == [8]  # the user's file, not the packaged mlp
    assert compose([f"space={names[2]}"]).space.name == "mlp"


def test_names_of_a_user_config_folder_are_checked_on_the_command_line(tmp_path):
    from nas.cli import check_overrides

    (tmp_path / "conf" / "space").mkdir(parents=True)
    (tmp_path / "conf" / "space" / "mine.yaml").write_text(BUILT)
    folder = f"hydra.searchpath=[file://{tmp_path / 'conf'}]"
    check_overrides(["space=mine", folder])
    with pytest.raises(ConfigError, match="Unknown space 'mien'. Did you mean 'mine'"):
        check_overrides(["space=mien", folder])
    with pytest.raises(ConfigError, match="Unknown space 'mine'"):
        check_overrides(["space=mine"])  # without the folder, the name is not offered
