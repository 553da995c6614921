"""The generic family: dimensions declared in YAML, conditions, lookup-only spaces, the contract."""

from __future__ import annotations

import numpy as np
import pytest

import nas
from nas.core import Categorical, ConfigError, Float, Integer, InvalidSampleError
from nas.core.space import Morph
from nas.testing import SpaceContract
from search_spaces.generic import GenericSpace

LOOKUP = """\
_target_: search_spaces.generic.GenericSpace
dimensions:
  optimizer: [adam, sgd]
  lr: {low: 1.0e-4, high: 0.1, log: true}
  layers: {low: 1, high: 4}
  momentum: {low: 0.0, high: 0.99, active_if: {optimizer: sgd}}
  width: {choices: [32, 64, 128], active_if: {layers: [2, 3, 4]}}
"""


@pytest.fixture
def lookup_yaml(tmp_path):
    path = tmp_path / "my_lookup.yaml"
    path.write_text(LOOKUP)
    return path


def test_eight_lines_of_yaml_declare_a_lookup_space_named_after_its_file(lookup_yaml):
    assert len(LOOKUP.splitlines()) == 7
    space = nas.get_space(str(lookup_yaml))
    assert space.name == "my_lookup" and space.lookup_only
    dims = space.dimensions()
    assert list(dims) == ["optimizer", "lr", "layers", "momentum", "width"]
    assert dims["optimizer"] == Categorical(("adam", "sgd")) and dims["layers"] == Integer(1, 4)
    assert isinstance(dims["lr"], Float) and dims["lr"].log and isinstance(dims["momentum"], Float)
    with pytest.raises(ConfigError, match="lookup-only .*estimator=table"):
        space.build({"optimizer": "adam", "lr": 0.01, "layers": 1}, (1, 8, 8), 10)


def test_active_if_drops_inactive_dimensions_from_sample_and_key(lookup_yaml):
    space = nas.get_space(str(lookup_yaml))
    base = {"optimizer": "adam", "lr": 0.01, "layers": 1}
    assert space.validate({**base, "momentum": 0.9, "width": 64}) == base
    assert space.key({**base, "momentum": 0.9, "width": 64}) == space.key(base)
    sgd = space.validate({"optimizer": "sgd", "lr": 0.01, "layers": 3, "momentum": 0.5, "width": 64})
    assert list(sgd) == ["optimizer", "lr", "layers", "momentum", "width"]
    with pytest.raises(InvalidSampleError, match="`momentum` is active"):
        space.validate({"optimizer": "sgd", "lr": 0.01, "layers": 1})
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(200)]
    assert all(("momentum" in s) == (s["optimizer"] == "sgd") and ("width" in s) == (s["layers"] >= 2) for s in samples)
    # the grid walks only active combinations: 2 optimizers x 5 lr x (1 + 3 x 3 widths) layers, sgd x 5 momenta
    assert len(list(space.grid())) == (5 * 10) + (5 * 10 * 5)


@pytest.mark.parametrize("dimensions, message", [
    ({}, "`dimensions` must be a non-empty mapping"),
    ({"a": 3}, "dimension `a` must be a list of choices or a mapping"),
    ({"a": {"low": 1}}, "dimension `a` must give `choices`, or `low` and `high`"),
    ({"a": {"low": 3, "high": 1}}, "dimension `a`: `low <= high` must hold"),
    ({"a": {"low": "x", "high": 1}}, "dimension `a`: `low` must be a number, but got 'x'"),
    ({"a": {"low": 1, "high": 2, "type": "str"}}, "`type` must be 'int' or 'float', but got 'str'"),
    ({"a": {"low": 0.0, "high": 1.0, "step": 1}}, "`step` is for integer dimensions"),
    ({"a": {"choices": [1, 1]}}, "dimension `a`: `choices` must be distinct"),
    ({"a": {"choices": [1, 2], "low": 1}}, "takes only `choices` and `active_if`, but got also \\['low'\\]"),
    ({"a": [1, 2], "b": {"choices": [1], "active_if": {"c": 1}}}, "`b.active_if` may name only dimensions listed before `b` \\(\\['a'\\]\\), but got `c`"),
    ({"a": [1, 2], "b": {"choices": [1], "active_if": {"a": 3}}}, "`b.active_if`: the values of `a` must lie in its domain"),
    ({"a b": [1]}, "names must be non-empty strings without spaces"),
])
def test_a_malformed_declaration_is_refused_naming_the_key(dimensions, message):
    with pytest.raises(ConfigError, match=message):
        GenericSpace(name="bad", dimensions=dimensions)


def test_build_must_name_a_function():
    with pytest.raises(ConfigError, match="`build` must be null or a mapping with `_target_`"):
        GenericSpace(dimensions={"a": [1]}, build={"fn": "x"})
    with pytest.raises(ConfigError, match="`_target_` must name an importable"):
        GenericSpace(dimensions={"a": [1]}, build={"_target_": "nowhere.fn"})


def test_a_training_estimator_refuses_a_lookup_only_space_before_any_trial(lookup_yaml, tmp_path):
    with pytest.raises(ConfigError, match="lookup-only .* must look results up"):
        nas.search(space=str(lookup_yaml), trials=2, out_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "study.db").exists()


class TestLookupOnlySpace(SpaceContract):
    """A lookup-only space passes the contract: building is skipped, the rest is checked."""

    def make_space(self):
        return GenericSpace(name="lookup", dimensions={"optimizer": ["adam", "sgd"], "layers": {"low": 1, "high": 4},
                                                        "momentum": {"low": 0.0, "high": 0.9, "active_if": {"optimizer": "sgd"}}})


class TestBuiltGenericSpace(SpaceContract):
    input_shapes = ((1, 8, 8), (1, 40))

    def make_space(self):
        return nas.get_space("generic_mlp")


class LookupWithMorphs(GenericSpace):
    """Broken: lookup-only, yet it lists morphs of networks it cannot build."""

    def morphs(self, sample):
        return [Morph(self.validate(sample), "widen", "layer1")]


def test_a_lookup_only_space_that_lists_morphs_is_rejected():
    class Contract(SpaceContract):
        def make_space(self):
            return LookupWithMorphs(dimensions={"a": [1, 2]})

    with pytest.raises(pytest.skip.Exception, match="lookup-only"):  # building is skipped, not failed
        Contract().test_build_forward_shape()
    with pytest.raises(AssertionError, match="lookup-only space .* lists morphs"):
        Contract().test_morphs_preserve_the_function()
