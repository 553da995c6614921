"""Preprocessing: recorded by every loader, kept in the run directory, in front of the exported model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import nas
from nas import ConfigError
from nas.datasets import (
    AddChannelAxis,
    DataSplits,
    Divide,
    Downscale,
    Preprocessing,
    Standardize,
    from_arrays,
    load_preprocessing,
    save_preprocessing,
)


def raw_digits_test(test_fraction: float = 0.2, split_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The raw test split the ``digits`` loader carves (``load_digits().images``, values 0..16)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    _, x_test, _, y_test = train_test_split(data.images, data.target, test_size=test_fraction, random_state=split_seed,
                                            stratify=data.target)
    return x_test, y_test


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    """scikit-learn's digits as a user would save them: raw pixels scaled to 0..255 (uint8), (N, 8, 8)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = np.round(data.images * 255 / 16).astype(np.uint8)
    x_train, x_test, y_train, y_test = train_test_split(images, data.target, test_size=0.25, random_state=0, stratify=data.target)
    path = tmp_path_factory.mktemp("data") / "mydigits.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path, x_test, y_test


EXAMPLES = [
    Preprocessing(),
    Preprocessing(steps=(AddChannelAxis(), Divide(16.0), Standardize(mean=(0.3,), std=(0.37,))), raw_shape=(8, 8)),
    Preprocessing(steps=(AddChannelAxis(), Standardize(mean=(-0.1,), std=(2.5,)), Downscale((20,))), raw_shape=(40,)),
    Preprocessing(steps=(Standardize(mean=tuple(np.linspace(-1, 1, 12).tolist()), std=tuple(np.linspace(0.5, 3, 12).tolist()),
                                     shape=(3, 2, 2)), Downscale((1, 1))), raw_shape=(3, 2, 2)),
    Preprocessing(steps=(AddChannelAxis(), Downscale((5, 4)), Downscale((2, 3))), raw_shape=(9, 7)),
]


@pytest.mark.parametrize("pre", EXAMPLES, ids=lambda p: str(p))
def test_json_round_trip_is_exact(pre, tmp_path):
    again = Preprocessing.from_json(pre.to_json())
    assert again == pre and hash(again) == hash(pre) and again.output_shape == pre.output_shape
    assert Preprocessing.load(pre.save(tmp_path / "p.json")) == pre
    assert json.loads(json.dumps(pre.to_dict())) == pre.to_dict()  # plain JSON types only


@pytest.mark.parametrize("pre", EXAMPLES[1:], ids=lambda p: str(p))
def test_numpy_tensor_and_module_give_identical_results(pre):
    raw = np.random.default_rng(0).integers(0, 256, size=(5, *pre.raw_shape)).astype(np.uint8)
    from_numpy = pre(raw)
    assert isinstance(from_numpy, np.ndarray) and from_numpy.dtype == np.float32 and from_numpy.shape == (5, *pre.output_shape)
    from_tensor = pre(torch.from_numpy(raw))
    assert isinstance(from_tensor, torch.Tensor) and from_tensor.dtype == torch.float32
    module = pre.module()
    assert list(module.state_dict()) == []  # statistics are non-persistent buffers: a model's state_dict is unchanged
    with torch.no_grad():
        from_module = module(torch.from_numpy(raw))
    assert torch.equal(torch.from_numpy(from_numpy), from_module) and torch.equal(from_tensor, from_module)


def test_the_expected_arithmetic_and_a_batch_that_already_has_its_channel_axis():
    pre = Preprocessing(steps=(AddChannelAxis(), Divide(16.0), Standardize(mean=(0.5,), std=(0.25,)), Downscale((2, 2))), raw_shape=(4, 4))
    raw = np.arange(32, dtype=np.float32).reshape(2, 4, 4)
    expected = ((raw / 16 - 0.5) / 0.25).reshape(2, 1, 2, 2, 2, 2).mean(axis=(3, 5))
    assert np.allclose(pre(raw), expected, atol=1e-6)
    assert np.array_equal(pre(raw[:, None]), pre(raw))  # (N, 1, H, W) given for raw (N, H, W): not added twice
    with pytest.raises(ValueError, match=r"shape \(N, 4, 4\) or \(N, 1, 4, 4\), but got shape \(2, 3, 4\)"):
        pre(raw[:, :3])
    assert np.array_equal(Preprocessing()(raw), raw)  # identity


def test_malformed_preprocessing_is_refused_with_what_must_hold():
    with pytest.raises(ConfigError, match=r"Unknown step 'resize'.*Valid names: add_channel_axis, divide, downscale, standardize"):
        Preprocessing.from_dict({"steps": [{"op": "resize"}]})
    with pytest.raises(ConfigError, match=r"`mean` and `std` must hold 4 values each"):
        Standardize(mean=(0.0,), std=(1.0,), shape=(2, 2))
    with pytest.raises(ConfigError, match="every `std` value must be > 0"):
        Standardize(mean=(0.0,), std=(0.0,))
    with pytest.raises(ConfigError, match=r"`by` must be a finite non-zero number, but got by=0"):
        Divide(0)
    with pytest.raises(ConfigError, match=r"needs examples of shape \(C, H, W\), but they have shape \(10,\)"):
        Preprocessing(steps=(Downscale((2, 2)),), raw_shape=(10,))
    with pytest.raises(ConfigError, match="`format` must be 1"):
        Preprocessing.from_dict({"format": 7, "steps": []})
    with pytest.raises(ConfigError, match=r"`standardize` must be true, false, 'global', 'feature' or 'none', but got 'yes'"):
        from_arrays("x", np.zeros((4, 3)), np.arange(4) % 2, np.zeros((2, 3)), np.arange(2), standardize="yes")
    x = torch.zeros(4, 1, 8, 8)
    y = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ConfigError, match=r"must lead to the input shape \(1, 8, 8\), but it maps raw \(4, 4\) to \(1, 4, 4\)"):
        DataSplits("x", x, y, x, y, x, y, 2, preprocessing=Preprocessing(steps=(AddChannelAxis(),), raw_shape=(4, 4)))


def test_every_loader_records_what_turns_its_raw_arrays_into_its_tensors(digits_splits, digits_npz):
    # digits: raw load_digits().images (N, 8, 8), 0..16
    raw, y = raw_digits_test()
    steps = digits_splits.preprocessing.steps
    assert [type(s) for s in steps] == [AddChannelAxis, Divide, Standardize] and steps[1].by == 16.0
    assert torch.equal(torch.from_numpy(digits_splits.preprocessing(raw)), digits_splits.x_test)
    assert torch.equal(torch.from_numpy(y), digits_splits.y_test)
    # npz: the file's arrays, (N, H, W) gain a channel axis, standardised by default, or not at all
    path, x_test, _ = digits_npz
    splits = nas.datasets.npz(path=str(path))
    assert [type(s) for s in splits.preprocessing.steps] == [AddChannelAxis, Standardize]
    assert splits.preprocessing.raw_shape == (8, 8) and splits.input_shape == (1, 8, 8)
    assert torch.equal(torch.from_numpy(splits.preprocessing(x_test)), splits.x_test)
    assert abs(float(splits.x_train.mean())) < 1e-4 and float(splits.x_train.std()) == pytest.approx(1, abs=1e-3)
    plain = nas.datasets.npz(path=str(path), standardize=False)
    assert plain.preprocessing.steps == (AddChannelAxis(),) and float(plain.x_test.max()) == 255
    per_feature = nas.datasets.npz(path=str(path), standardize="feature")
    assert per_feature.preprocessing.steps[1].shape == (1, 8, 8)
    assert torch.equal(torch.from_numpy(per_feature.preprocessing(x_test)), per_feature.x_test)
    # arrays from a user callable (a mapping): standardised, no layout change
    rng = np.random.default_rng(0)
    mapping = {"x_train": rng.normal(3, 2, (40, 5)), "y_train": np.arange(40) % 2, "x_test": rng.normal(3, 2, (10, 5)),
               "y_test": np.arange(10) % 2}
    custom = nas.datasets.as_splits(mapping)
    assert [type(s) for s in custom.preprocessing.steps] == [Standardize] and custom.preprocessing.raw_shape == (5,)
    assert torch.equal(torch.from_numpy(custom.preprocessing(mapping["x_test"])), custom.x_test)
    # a DataSplits built by hand: identity unless given
    x, labels = torch.randn(6, 1, 8, 8), torch.arange(6) % 2
    assert DataSplits("mine", x, labels, x, labels, x, labels, 2).preprocessing.is_identity


def test_derived_splits_compose_the_preprocessing(digits_splits):
    raw, _ = raw_digits_test()
    subset = digits_splits.train_subset(0.5)
    assert subset.preprocessing == digits_splits.preprocessing  # statistics stay those of the whole training split
    small = digits_splits.train_subset(0.5).downscaled(0.5)
    assert small.preprocessing.steps[-1] == Downscale((4, 4)) and small.preprocessing.output_shape == (1, 4, 4)
    assert torch.equal(torch.from_numpy(small.preprocessing(raw)), small.x_test)
    twice = digits_splits.downscaled(0.75).downscaled(0.5)  # 8 -> 6 -> 3: two area averagings, not one
    assert [s.size for s in twice.preprocessing.steps[-2:]] == [(6, 6), (3, 3)]
    assert torch.equal(torch.from_numpy(twice.preprocessing(raw)), twice.x_test)
    x, labels = torch.randn(6, 1, 8, 8), torch.arange(6) % 2
    hand = DataSplits("mine", x, labels, x, labels, x, labels, 2).downscaled(0.5)
    assert hand.preprocessing.raw_shape == (1, 8, 8) and torch.equal(hand.preprocessing(x), hand.x_test)


def test_save_preprocessing_writes_the_estimators_and_nothing_for_an_estimator_without_data(tmp_path, digits_splits):
    class WithData:
        data = digits_splits

    class WithoutData:  # a table lookup
        pass

    assert save_preprocessing(WithData(), tmp_path) == tmp_path / "preprocessing.json"
    assert load_preprocessing(tmp_path) == digits_splits.preprocessing
    assert save_preprocessing(WithoutData(), tmp_path) is None
    assert not (tmp_path / "preprocessing.json").exists()  # a stale file would mislead
    assert load_preprocessing(tmp_path).is_identity


def accuracy(model: torch.nn.Module, x, y) -> float:
    with torch.no_grad():
        return float((model(torch.as_tensor(x)).argmax(1) == torch.as_tensor(y)).float().mean())


@pytest.mark.slow
def test_best_model_and_predict_take_the_raw_arrays_of_an_npz(tmp_path, digits_npz):
    path, x_test, y_test = digits_npz
    run = tmp_path / "run"
    result = nas.search(space="macro_chain", dataset="npz", trials=2, epochs=2, seed=0, out_dir=run, progress=False, tensorboard=False,
                        overrides=[f"dataset.path='{path}'", "estimator.threads=1"])
    recorded = result.best.metrics["test_accuracy"]
    assert recorded > 0.6
    saved = load_preprocessing(run / "best")
    assert [type(s) for s in saved.steps] == [AddChannelAxis, Standardize] and saved.raw_shape == (8, 8)
    raw = accuracy(result.best_model(), x_test, y_test)  # uint8 (N, 8, 8), as in the file
    loaded = accuracy(nas.load(run).best_model(), x_test, y_test)
    bare = accuracy(result.best_model(preprocess=False), x_test[:, None].astype(np.float32), y_test)
    print(f"recorded test accuracy {recorded:.4f}, best_model on raw {raw:.4f}, loaded {loaded:.4f}, bare network on raw {bare:.4f}")
    assert raw == pytest.approx(recorded, abs=1e-6) and loaded == pytest.approx(recorded, abs=1e-6)
    assert bare < recorded - 0.3  # the bare network fed raw pixels is far off: the test can fail
    predicted = result.predict(x_test)
    assert isinstance(predicted, np.ndarray) and predicted.dtype == np.int64 and predicted.shape == y_test.shape
    assert float((predicted == y_test).mean()) == pytest.approx(recorded, abs=1e-6)
    assert torch.equal(nas.load(run).predict(torch.from_numpy(x_test), batch_size=7), torch.from_numpy(predicted))
    # a run directory written before preprocessing was saved loads as before: identity, preprocessed inputs
    (run / "best" / "preprocessing.json").unlink()
    old = nas.load(run)
    assert old.preprocessing.is_identity
    splits = nas.datasets.npz(path=str(path))
    assert accuracy(old.best_model(), splits.x_test, splits.y_test) == pytest.approx(recorded, abs=1e-6)


@pytest.mark.slow
def test_a_downscaled_search_exports_a_model_for_full_size_raw_inputs(tmp_path, digits_npz):
    path, x_test, y_test = digits_npz
    result = nas.search(space="macro_chain", dataset="npz", trials=2, epochs=2, seed=0, out_dir=tmp_path, progress=False,
                        tensorboard=False, overrides=[f"dataset.path='{path}'", "estimator.input_scale=0.5", "estimator.threads=1"])
    assert result.input_shape == (1, 4, 4)  # the network was trained on 4x4
    recorded = result.best.metrics["test_accuracy"]
    pre = nas.load(tmp_path).preprocessing
    assert pre.raw_shape == (8, 8) and pre.steps[-1] == Downscale((4, 4))
    raw = accuracy(nas.load(tmp_path).best_model(), x_test, y_test)  # uint8 (N, 8, 8), full size
    bare = accuracy(result.best_model(preprocess=False), x_test[:, None].astype(np.float32), y_test)  # global pooling takes 8x8 too
    print(f"input_scale=0.5: recorded test accuracy {recorded:.4f}, best_model on raw 8x8 {raw:.4f}, bare network on raw {bare:.4f}")
    assert raw == pytest.approx(recorded, abs=1e-6)
    assert bare < recorded - 0.3
    assert float((result.predict(x_test) == y_test).mean()) == pytest.approx(recorded, abs=1e-6)
