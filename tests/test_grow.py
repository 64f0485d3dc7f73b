"""Growing a trained network: wider (Net2WiderNet) or deeper (Net2DeeperNet), the same function, room to learn."""

from __future__ import annotations

import pytest
import torch

from fastnst import TrainingError, TransformerNet
from fastnst.grow import block_shares, deepened, grown, last_norm_scales, shallowed, widened


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
    net = _trained_like(style={"name": "s"}, training={"steps": 3}, **kw)
    x = torch.rand(2, 3, 32, 28)  # unpadded, unclamped: the random weights' outputs reach +-30
    wide = widened(net, 8, noise=0.0).eval()
    assert wide.channels == 8 and wide.architecture == {**net.architecture, "channels": 8}
    assert wide.style == net.style and wide.training_info == net.training_info
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


@pytest.mark.parametrize("kw", [{}, dict(centred_skip=True, skip_gain=True, upsample="bilinear")])
def test_deepened_network_computes_the_same_function(kw):
    net = _trained_like(style={"name": "s"}, training={"steps": 3}, **kw)
    deep = deepened(net, 4, scale=0.0).eval()  # exactly the same function (new blocks that cannot learn)
    assert deep.num_residual == 4 and deep.architecture == {**net.architecture, "num_residual": 4}
    assert deep.style == net.style and deep.training_info == net.training_info
    x = torch.rand(2, 3, 32, 28)
    with torch.no_grad():
        a, b = deep.forward_padded(x), net.forward_padded(x)
    assert b.abs().max() > 1 and torch.allclose(a, b, atol=1e-5)
    assert deepened(net, 2) is net
    with pytest.raises(TrainingError, match="only adds"):
        deepened(net, 1)


def test_new_blocks_start_close_to_the_identity_and_learn_from_the_first_step():
    """At a norm scale of exactly 0 a new block's convolutions get no gradient (they never learnt in 600 steps,
    docs/quality §30); at the default small scale they get one at once, and the function is nearly the same."""
    net = _trained_like()
    x = torch.rand(1, 3, 24, 24)
    for scale, learns in ((0.0, False), (0.03, True)):
        deep = deepened(net, 3, scale=scale)
        with torch.no_grad():
            a, b = deep.eval().forward_padded(x), net.eval().forward_padded(x)
        assert (a - b).abs().mean() <= 0.05 * b.abs().mean() and bool((a - b).abs().max() > 0) == learns
        deep.train()(x).square().mean().backward()
        grad = deep.residuals[2].body[0][1].weight.grad
        assert bool(grad.abs().max() > 0) == learns
    assert torch.equal(deepened(net, 3).residuals[2].body[-1][-1].weight, torch.full((16,), 0.03))


def test_grown_widens_and_deepens_towards_a_shape():
    net = _trained_like()
    big = grown(net, TransformerNet(channels=8, num_residual=3, input_skip=True))
    assert (big.channels, big.num_residual) == (8, 3)
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        a, b = big.eval().forward_padded(x), net.eval().forward_padded(x)
    assert 0 < (a - b).abs().mean() < 0.05 * b.abs().mean()  # the widening's noise and the new block's small scale
    odd = TransformerNet(channels=6, num_residual=1, input_skip=True)
    assert grown(net, odd) is net  # not a multiple of its width: left for the caller to refuse, no block dropped


def test_deepened_with_dilated_new_blocks_computes_the_same_function_then_reaches_further():
    net = _trained_like()
    deep = deepened(net, 4, (1, 1, 2, 3), scale=0.0).eval()
    assert deep.dilations == (1, 1, 2, 3) and [b.body[0][1].dilation for b in deep.residuals] == [(1, 1), (1, 1),
                                                                                                    (2, 2), (3, 3)]
    x = torch.rand(1, 3, 32, 28)
    with torch.no_grad():
        assert torch.allclose(deep.forward_padded(x), net.forward_padded(x), atol=1e-5)
    assert grown(net, TransformerNet(channels=4, num_residual=4, input_skip=True, dilations=[1, 1, 2, 3])).dilations \
        == (1, 1, 2, 3)
    with pytest.raises(TrainingError, match="the trained blocks keep theirs"):
        deepened(net, 4, (2, 1, 2, 3))
    with pytest.raises(TrainingError, match="the trained blocks keep theirs"):
        deepened(deep, 5, (1, 1, 1, 1, 1))
    assert grown(deep, TransformerNet(channels=4, num_residual=5, input_skip=True)) is deep  # left for the caller


@pytest.mark.parametrize("kw", [{}, dict(centred_skip=True, skip_gain=True, upsample="bilinear")])
def test_shallowed_drops_blocks_that_add_nothing_and_keeps_the_function(kw):
    """Blocks whose last norm's scale is 0 add only a per-channel constant (their shift), which the next
    convolution's instance norm removes: dropped, the network computes exactly the same function."""
    net = _trained_like(style={"name": "s"}, training={"steps": 3}, **kw)
    deep = deepened(net, 4, (1, 1, 2, 3), scale=0.0)
    with torch.no_grad():
        for block in deep.residuals[2:]:
            block.body[-1][-1].bias.copy_(torch.linspace(-2, 2, 16))  # a large shift, dropped with its block
    x = torch.rand(1, 3, 32, 28)
    shares = block_shares(deep, x)
    assert max(shares[2:]) < 1e-6 and min(shares[:2]) > 0.05
    assert last_norm_scales(deep)[2:] == [0.0, 0.0]
    small = shallowed(deep, 2).eval()
    assert small.num_residual == 2 and small.dilations == () and small.architecture == net.architecture
    assert small.style == net.style and small.training_info == net.training_info
    with torch.no_grad():
        a, b = small.forward_padded(x), deep.eval().forward_padded(x)
    assert b.abs().max() > 1 and torch.allclose(a, b, atol=1e-4)
    assert shallowed(deep, 3).dilations == (1, 1, 2) and shallowed(deep, 4) is deep
    for bad in (0, 5):
        with pytest.raises(TrainingError, match="keep at least 1 and fewer"):
            shallowed(deep, bad)


def test_grown_drops_blocks_with_a_warning_naming_their_scales():
    net = _trained_like()
    deep = deepened(net, 4, scale=0.01)
    with pytest.warns(UserWarning, match=r"blocks 3-4 are dropped \(mean \|scale\| of their last norms: 0.010, 0.010"):
        small = grown(deep, TransformerNet(channels=4, num_residual=2, input_skip=True))
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        a, b = small.eval().forward_padded(x), deep.eval().forward_padded(x)
    assert 0 < (a - b).abs().mean() < 0.05 * b.abs().mean()  # the dropped blocks' small scaled features
    dilated = deepened(net, 4, (1, 1, 2, 3), scale=0.0)
    assert grown(dilated, TransformerNet(channels=4, num_residual=3, input_skip=True)) is dilated  # block 3's reach
