"""Every declared space (configs/space/*.yaml) passes the space contract at tiny size."""

from __future__ import annotations

import pytest

import nas
from nas.testing import SpaceContract

TINY = {"cell_nb201": {"cells_per_stage": 1, "stem_channels": 4}}


@pytest.fixture(params=nas.available("space"))
def space_name(request):
    return request.param


class TestEverySpace(SpaceContract):
    input_shapes = ((1, 8, 8), (1, 40), (3, 16, 16))

    @pytest.fixture(autouse=True)
    def _name(self, space_name):
        self.name = space_name

    def make_space(self):
        return nas.get_space(self.name, **TINY.get(self.name, {}))


def test_every_declared_space_is_listed():
    assert {"macro_chain", "cell_nb201", "mlp"} <= set(nas.available("space"))
