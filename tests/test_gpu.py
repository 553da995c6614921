"""CUDA path: device=auto picks the GPU and trains under mixed precision. Skipped without CUDA."""

from __future__ import annotations

import pytest
import torch

import nas

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_auto_device_trains_on_cuda_with_mixed_precision(tmp_path):
    result = nas.search(space="macro_chain", strategy="random", dataset="digits", trials=2, epochs=3,
                        out_dir=tmp_path, progress=False)
    assert result.meta["estimator"]["device"].startswith("cuda")
    assert all(r.state == "complete" for r in result.trials)
    assert result.best.score > 0.5
    model = result.best_model()  # weights were saved from the GPU as CPU tensors
    assert next(model.parameters()).device.type == "cpu"
