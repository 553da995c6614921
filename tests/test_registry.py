"""One registry: YAML groups plus other packages' entry points, composable by name in Python and on the command line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nas
from nas import ConfigError
from nas._config import available, compose, load_group_file, plugins

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = textwrap.dedent('''
    import numpy as np
    from nas.core import Strategy, Categorical

    class FirstChoice(Strategy):
        """Always the first value of every dimension, then the second, ... (a plugin strategy)."""
        name = "firstchoice"

        def __init__(self, space, *, seed=None, offset=0):
            super().__init__(space, seed=seed)
            self.offset = offset

        def ask(self, history):
            return self.space.complete({}, np.random.default_rng([self.seed, len(history) + self.offset]))

    TINY_MLP = {"_target_": "search_spaces.mlp.MLPSpace", "name": "tiny_mlp", "depth": [1, 2], "widths": [8, 16], "activation": ["relu"]}
    NOT_A_CONFIG = 42
''')


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    """A separate package on sys.path with entry points, as `pip install` would leave it."""
    (tmp_path / "myplugin.py").write_text(PLUGIN)
    info = tmp_path / "myplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nas.strategy]\nfirstchoice = myplugin:FirstChoice\nrandom = myplugin:FirstChoice\n\n"
                                           "[nas.space]\ntiny_mlp = myplugin:TINY_MLP\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.cache_clear()
    yield tmp_path
    plugins.cache_clear()


def test_a_plugin_package_adds_a_strategy_and_a_space_by_name(plugin_package, tmp_path):
    assert "firstchoice" in available("strategy") and "tiny_mlp" in available("space")
    assert load_group_file("strategy", "random")[1]["_target_"] == "strategies.RandomSearch"  # a YAML entry wins over a plugin
    assert compose(["strategy=firstchoice", "strategy.offset=3"]).strategy == {  # its keyword defaults are config keys
        "_target_": "myplugin.FirstChoice", "_partial_": True, "offset": 3}
    result = nas.search(space="tiny_mlp", strategy="firstchoice", dataset="digits", trials=2, epochs=1, out_dir=tmp_path / "run",
                        progress=False, tensorboard=False)
    assert result.space.name == "tiny_mlp" and len(result.trials) == 2 and all(r.state == "complete" for r in result.trials)
    assert nas.get_space("tiny_mlp").dimensions().keys() == result.space.dimensions().keys()


def test_an_unknown_name_lists_the_plugins_too(plugin_package):
    with pytest.raises(ConfigError, match="Unknown strategy 'firstchoise'. Did you mean 'firstchoice'?.*evolution, firstchoice"):
        compose(["strategy=firstchoise"])


def test_a_broken_plugin_is_refused_with_its_name(plugin_package):
    info = plugin_package / "myplugin-0.1.dist-info" / "entry_points.txt"
    info.write_text(info.read_text() + "[nas.pruner]\nbad = myplugin:NOT_A_CONFIG\nmissing = myplugin:NOPE\n")
    plugins.cache_clear()
    with pytest.raises(ConfigError, match=r"pruner '(bad|missing)': the entry point 'myplugin:(NOT_A_CONFIG|NOPE)'"):
        available("pruner")


@pytest.mark.slow
def test_the_command_line_finds_a_plugin_strategy(plugin_package, tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{plugin_package}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "nas.cli", "strategy=firstchoice", "space=tiny_mlp", "budget.trials=1",
                          "estimator.epochs=1", f"run_dir={tmp_path / 'cli'}", "tensorboard=false"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "strategy 'firstchoice'" in out.stdout and "trial   1/1" in out.stdout
