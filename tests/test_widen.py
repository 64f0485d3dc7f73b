"""Widening a trained network (Net2WiderNet): the same function at twice the width, copies that can part."""

from __future__ import annotations

import pytest
import torch

from fastnst import TrainingError, TransformerNet
from fastnst.widen import widened


def _trained_like(**kw) -> TransformerNet:
    """A network with every weight random (norms and output layer included), as a trained one has."""
    net = TransformerNet(channels=4, num_residual=2, input_skip=True, **kw)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g) + (1.0 if p.dim() == 1 and p.numel() > 3 else 0.0))
    return net.eval()


@pytest.mark.parametrize("kw", [{}, dict(centred_skip=True, skip_gain=True, upsample="bilinear")])
def test_widened_network_computes_the_same_function(kw):
    net = _trained_like(**kw)
    x = torch.rand(2, 3, 32, 28)  # unpadded, unclamped: the random weights' outputs reach +-30
    wide = widened(net, 8, noise=0.0).eval()
    assert wide.channels == 8 and wide.architecture == {**net.architecture, "channels": 8}
    assert sum(p.numel() for p in wide.parameters()) > 3 * sum(p.numel() for p in net.parameters())
    with torch.no_grad():
        a, b = wide.forward_padded(x), net.forward_padded(x)
    assert b.abs().max() > 1 and torch.allclose(a, b, atol=1e-4)


def test_copies_get_noise_to_part_and_stay_close():
    net = _trained_like()
    wide = widened(net, 8, noise=0.02)
    conv = wide.residuals[0].body[0][1].weight  # 32 outputs: 16 originals then 16 copies
    assert torch.equal(conv[:16, :16] * 2, net.residuals[0].body[0][1].weight)  # originals kept (shared inputs halved)
    assert not torch.allclose(conv[16:], conv[:16])  # the copies differ from the originals
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        a, b = wide.eval().forward_padded(x), net.forward_padded(x)
    assert 0 < (a - b).abs().mean() < 0.05 * b.abs().mean()


def test_widening_refuses_other_widths():
    net = _trained_like()
    assert widened(net, 4) is net
    for bad in (2, 6):
        with pytest.raises(TrainingError, match="multiple"):
            widened(net, bad)
