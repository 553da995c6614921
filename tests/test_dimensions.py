from __future__ import annotations

import numpy as np
import pytest

from nas import Categorical, ConfigError, Float, Integer, InvalidSampleError
from nas.core.dimensions import check_value
from nas.testing import ToySpace


def test_categorical_rejects_empty_and_duplicate_choices():
    with pytest.raises(ConfigError, match="at least one value"):
        Categorical(())
    with pytest.raises(ConfigError, match="distinct"):
        Categorical(("a", "a"))


def test_integer_and_float_bounds_are_checked():
    with pytest.raises(ConfigError, match=r"`low <= high` must hold, but got \(low=5, high=2\)"):
        Integer(5, 2)
    with pytest.raises(ConfigError, match="low > 0"):
        Float(0.0, 1.0, log=True)


def test_grid_and_neighbors():
    assert Integer(2, 8, step=2).grid() == [2, 4, 6, 8]
    assert Integer(2, 8, step=2).neighbors(2) == [4]
    assert Float(0.0, 1.0, resolution=3).grid() == [0.0, 0.5, 1.0]
    assert Float(0.0, 1.0, resolution=3).neighbors(0.5) == [0.0, 1.0]
    assert Categorical(("a", "b", "c")).neighbors("b") == ["a", "c"]


def test_samples_stay_in_domain():
    rng = np.random.default_rng(0)
    for dim in (Integer(1, 64, log=True), Integer(0, 10, step=5), Float(1e-4, 1e-1, log=True), Categorical((1, "x", None))):
        for _ in range(200):
            assert dim.contains(dim.sample(rng))


def test_check_value_names_the_key_and_the_domain():
    with pytest.raises(InvalidSampleError, match=r"`layer2.width` must be one of \[16, 32\], but got 48"):
        check_value("layer2.width", Categorical((16, 32)), 48)
    with pytest.raises(InvalidSampleError, match="True"):
        check_value("depth", Integer(1, 3), True)  # a bool is not an integer here


def test_space_validate_names_missing_unknown_and_bad_keys():
    space = ToySpace()
    with pytest.raises(InvalidSampleError, match="`l2.op` is active"):
        space.validate({"depth": 2, "l1.op": "a", "lr": 0.1})
    with pytest.raises(InvalidSampleError, match="Did you mean 'l1.op'"):
        space.validate({"depth": 1, "l1.op": "a", "lr": 0.1, "l1.opp": "b"})
    with pytest.raises(InvalidSampleError, match="`lr` must be a number in"):
        space.validate({"depth": 1, "l1.op": "a", "lr": 3.0})
    # inactive values are accepted and dropped
    assert space.validate({"depth": 1, "l1.op": "a", "l2.op": "b", "lr": 0.1}) == {"depth": 1, "l1.op": "a", "lr": 0.1}


def test_key_ignores_inactive_dimensions():
    space = ToySpace()
    a = {"depth": 1, "l1.op": "a", "l2.op": "b", "lr": 0.1}
    b = {"depth": 1, "l1.op": "a", "l2.op": "c", "lr": 0.1}
    c = {"depth": 2, "l1.op": "a", "l2.op": "c", "lr": 0.1}
    assert space.key(a) == space.key(b) != space.key(c)


def test_grid_is_active_aware():
    space = ToySpace(max_depth=2, with_float=False)
    points = list(space.grid())
    assert len(points) == 3 + 9
    assert all("l2.op" not in p for p in points if p["depth"] == 1)
