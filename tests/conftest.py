from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _small_threads():
    torch.set_num_threads(1)  # tests run next to each other on 2 cores
    yield


@pytest.fixture(scope="session")
def digits_splits():
    from nas.datasets import digits

    return digits()
