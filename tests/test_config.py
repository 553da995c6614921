"""Bad input is refused before any training, with the key, what must hold and what was received."""

from __future__ import annotations

import numpy as np
import pytest

import nas
from nas import ConfigError
from nas._config import compose
from nas.testing import ToySpace


def write(tmp_path, text, name="myspace.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


MACRO = """_target_: search_spaces.macro_chain.MacroChainSpace
depth: [1, 2]
ops: [conv3x3, max_pool3x3]
widths: [8, 16]
"""


def test_default_config_composes_with_every_group():
    cfg = compose()
    assert cfg.space.name == "macro_chain" and cfg.strategy._target_ == "strategies.RandomSearch"
    assert cfg.dataset._target_ == "nas.datasets.digits" and cfg.estimator._target_ == "nas.TrainingEstimator"
    assert compose(["strategy=tpe"]).strategy._target_ == "optuna.samplers.TPESampler"


def test_a_new_macro_space_is_plain_yaml(tmp_path):
    space = nas.get_space(write(tmp_path, MACRO))
    assert space.name == "myspace"
    assert space.dimensions()["layer1.op"].choices == ("conv3x3", "max_pool3x3")
    assert "layer3.op" not in space.dimensions()


@pytest.mark.parametrize("edit, message", [
    (("ops: [conv3x3, max_pool3x3]", "ops: [conv3x3, conv_7x7]"), r"conv_7x7.*Valid names: .*conv5x5"),
    (("widths: [8, 16]", "widths: []"), r"`widths`.*at least one"),
    (("widths: [8, 16]", "widths: [-16, 32]"), r"`widths`.*positive.*-16"),
    (("widths: [8, 16]", "widhts: [8, 16]"), r"unknown key 'widhts'|Unknown key 'widhts'.*Did you mean 'widths'"),
])
def test_malformed_macro_yaml_is_refused_with_the_key(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=message):
        nas.get_space(write(tmp_path, MACRO.replace(*edit)))


def test_cell_without_path_from_input_to_output_is_refused(tmp_path):
    text = "_target_: search_spaces.cell_nb201.CellSpace\nedges: [[0, 1], [2, 3]]\n"
    with pytest.raises(ConfigError, match=r"`edges`.*\[\[0, 1\], \[2, 3\]\]"):
        nas.get_space(write(tmp_path, text, "cell.yaml"))


def test_unknown_group_names_list_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown strategy 'randm'. Did you mean 'random'\? Valid names: .*grid, .*random"):
        nas.search(strategy="randm", out_dir=tmp_path)
    with pytest.raises(ConfigError, match="Unknown dataset 'cifar'"):
        nas.search(dataset="cifar", out_dir=tmp_path)
    with pytest.raises(ConfigError, match="Unknown space 'macro'.*macro_chain"):
        nas.get_space("macro")


def test_bad_estimator_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="Unknown optimizer 'adamm'.*adam"):
        nas.search(space="mlp", out_dir=tmp_path, overrides=["estimator.optimizer=adamm"], progress=False)
    with pytest.raises(ConfigError, match=r"`epochs >= 1` must hold, but got epochs=0"):
        nas.search(space="mlp", out_dir=tmp_path, epochs=0, progress=False)


class NeverCalled(nas.Estimator):
    input_shape, num_classes = (4,), 2

    def evaluate(self, arch, report):
        raise AssertionError("training started despite a bad storage URL")


@pytest.mark.parametrize("url", ["not-a-url", "nosuchdb://x/y", "sqlite:////nonexistent-dir/deeper/x.db"])
def test_bad_storage_url_is_refused_before_training(tmp_path, url):
    with pytest.raises(ConfigError, match="`storage` must be"):
        nas.search(space=ToySpace(), estimator=NeverCalled(), storage=url, out_dir=tmp_path, progress=False)


def test_npz_dataset_checks_keys_and_carves_validation(tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "good.npz"
    np.savez(good, x_train=rng.normal(size=(100, 6)), y_train=rng.integers(0, 3, 100),
             x_test=rng.normal(size=(20, 6)), y_test=rng.integers(0, 3, 20))
    splits = nas.datasets.npz(path=str(good), val_fraction=0.2)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (80, 20, 20)
    assert splits.input_shape == (6,) and splits.num_classes == 3
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=rng.normal(size=(10, 6)), y_train=rng.integers(0, 3, 10))
    with pytest.raises(ConfigError, match=r"lacks \['x_test', 'y_test'\]"):
        nas.datasets.npz(path=str(bad))
    with pytest.raises(ConfigError, match="`path` must name an existing .npz file"):
        nas.datasets.npz(path=str(tmp_path / "missing.npz"))
    mismatched = tmp_path / "mismatch.npz"
    np.savez(mismatched, x_train=rng.normal(size=(10, 6)), y_train=rng.integers(0, 3, 9),
             x_test=rng.normal(size=(5, 6)), y_test=rng.integers(0, 3, 5))
    with pytest.raises(ConfigError, match="same length, but got 10 and 9"):
        nas.datasets.npz(path=str(mismatched))


def make_blobs_dataset(n: int = 120):
    """A user dataset callable, selected with dataset._target_=tests.test_config.make_blobs_dataset."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 5)) + y[:, None] * 3.0
    return {"x_train": x[:100], "y_train": y[:100], "x_test": x[100:], "y_test": y[100:]}


def test_user_callable_dataset_through_target(tmp_path):
    result = nas.search(space="mlp", dataset="digits", trials=1, epochs=3, out_dir=tmp_path, progress=False,
                        overrides=["dataset._target_=tests.test_config.make_blobs_dataset", "~dataset.val_fraction",
                                   "~dataset.test_fraction", "~dataset.split_seed"])
    assert result.best.metrics["test_accuracy"] >= 0.9  # well separated blobs
    assert result.meta["input_shape"] == [5]


def test_mnist1d_is_generated_locally_cached_and_trains_conv1d(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_CACHE", str(tmp_path / "cache"))
    splits = nas.datasets.mnist1d()
    assert splits.input_shape == (1, 40) and splits.num_classes == 10
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (3600, 400, 1000)
    assert (tmp_path / "cache" / "mnist1d.npz").exists()
    again = nas.datasets.mnist1d()  # from the cache: identical tensors
    assert bool((again.x_test == splits.x_test).all())
    result = nas.search(space="macro_chain", dataset=splits, trials=2, epochs=2, out_dir=tmp_path / "run", progress=False)
    model = result.best_model()
    assert any(isinstance(m, __import__("torch").nn.Conv1d) for m in model.modules())
    assert result.best.metrics["test_accuracy"] > 0.15  # two epochs: above chance (0.1)


def test_the_readme_shows_the_unknown_name_message_the_code_gives():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    shown = next(line.strip() for line in readme.splitlines() if "Unknown strategy 'randm'" in line)
    with pytest.raises(ConfigError) as caught:
        compose(["strategy=randm"])
    assert str(caught.value) == shown


def test_a_negative_label_is_shown_with_its_index_and_value(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 100)
    y[17] = -4
    path = tmp_path / "neg.npz"
    np.savez(path, x_train=rng.normal(size=(100, 6)), y_train=y, x_test=rng.normal(size=(20, 6)), y_test=rng.integers(0, 3, 20))
    with pytest.raises(ConfigError, match=r"`y_train` must hold non-negative integer labels, but y_train\[17\] = -4 \(1 negative of 100\)"):
        nas.datasets.npz(path=str(path))


def test_a_value_of_the_wrong_type_is_refused_with_the_key_before_anything_is_built():
    from nas._config import instantiate

    with pytest.raises(ConfigError, match=r"estimator: `epochs` must be a number \(its default is 10\), but got 'abc'"):
        instantiate({"_target_": "nas.TrainingEstimator", "epochs": "abc"}, kind="estimator", space=None, dataset=None)
    with pytest.raises(ConfigError, match=r"strategy: `skip_duplicates` must be true or false, but got 'maybe'"):
        instantiate({"_target_": "strategies.RandomSearch", "skip_duplicates": "maybe"}, kind="strategy", space=None)
    with pytest.raises(ConfigError, match=r"`seed` must be an integer or null, but got 'abc'"):
        nas.search(space=ToySpace(), seed=None, overrides=["seed=abc"], progress=False)


def test_data_that_cannot_train_what_it_tests_is_refused(tmp_path):
    rng = np.random.default_rng(0)

    def save(name, y_train, y_test, x_shape=(6,)):
        path = tmp_path / f"{name}.npz"
        np.savez(path, x_train=rng.normal(size=(len(y_train), *x_shape)), y_train=y_train,
                 x_test=rng.normal(size=(len(y_test), *x_shape)), y_test=y_test)
        return str(path)

    with pytest.raises(ConfigError, match=r"every label of `y_test` must occur in training, but \[57\] \(1 of 20 examples\) never does"):
        nas.datasets.npz(path=save("unseen", np.arange(100) % 3, np.r_[np.arange(19) % 3, 57]))
    with pytest.raises(ConfigError, match=r"the training split must hold at least two classes, but every label of `y_train` is 4"):
        nas.datasets.npz(path=save("one", np.full(100, 4), np.full(20, 4)))
    with pytest.warns(UserWarning, match=r"x_train has shape \(100, 6, 10\): read as 6 channels of signals of length 10"):
        splits = nas.datasets.npz(path=save("wide", np.arange(100) % 3, np.arange(20) % 3, x_shape=(6, 10)))
    assert splits.input_shape == (6, 10)
    (tmp_path / "notes.txt").write_text("not an archive")
    with pytest.raises(ConfigError, match=r"`path` must name a .npz file written by numpy.savez, but .*notes.txt' is not one"):
        nas.datasets.npz(path=str(tmp_path / "notes.txt"))
