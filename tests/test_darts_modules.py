"""The DARTS evaluation network: the paper's parameter counts, every operation, 1-D and 2-D inputs."""

from __future__ import annotations

import pytest
import torch

from search_spaces._darts_genotype import parse_genotype
from search_spaces._darts_modules import DARTS_OPS, DartsNetwork, make_op
from tests.test_darts_genotype import DARTS_V2


def parameters(model, *, trainable_only=True):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def test_darts_v2_at_the_papers_size_has_its_parameter_count():
    """C=36, 20 cells, CIFAR-10 head, no auxiliary head: the DARTS repository logs 'param size = 3.349342MB'
    for DARTS V2, the paper's table 3.3 M."""
    model = DartsNetwork(**parse_genotype(DARTS_V2), in_channels=3, dims=2, num_classes=10)
    assert parameters(model) == 3_349_342
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("op", DARTS_OPS)
@pytest.mark.parametrize("shape", [(4, 8, 8), (4, 7, 7), (4, 40), (4, 9)])
@pytest.mark.parametrize("stride", [1, 2])
def test_every_operation_keeps_channels_and_divides_the_size_by_its_stride(op, shape, stride):
    module = make_op(op, len(shape) - 1, 4, stride).eval()
    with torch.no_grad():
        out = module(torch.randn(2, *shape))
    assert out.shape == (2, 4, *(-(-s // stride) for s in shape[1:]))


def test_a_tiny_network_builds_and_trains_a_step_on_signals_and_images():
    genotype = parse_genotype(DARTS_V2)
    for in_channels, shape in ((1, (40,)), (1, (8, 8)), (3, (9, 9))):
        model = DartsNetwork(**genotype, in_channels=in_channels, dims=len(shape), num_classes=10, channels=4, layers=5)
        x, y = torch.randn(4, in_channels, *shape), torch.randint(0, 10, (4,))
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        assert torch.isfinite(loss) and all(p.grad is not None for p in model.classifier.parameters())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_every_operation_runs_on_cuda():
    model = DartsNetwork(**parse_genotype(DARTS_V2), in_channels=3, dims=2, num_classes=10, channels=8, layers=5).cuda()
    for op in DARTS_OPS:
        assert make_op(op, 2, 8, 2).cuda()(torch.randn(2, 8, 8, 8, device="cuda")).shape == (2, 8, 4, 4)
    assert model(torch.randn(2, 3, 16, 16, device="cuda")).shape == (2, 10)
