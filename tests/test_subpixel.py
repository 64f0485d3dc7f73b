"""The sub-pixel form computes the plain network's function (fastnst.subpixel).

Same float32 operations regrouped: measured differences are below 1e-5 on [0, 1] outputs; the
tests allow 1e-4 (0.03 grey levels), as for the other fast paths (tests/test_fast_paths.py).
"""

from __future__ import annotations

import copy

import pytest
import torch

from fastnst import Stylizer, TransformerNet
from fastnst.model import ConvLayer, UpsampleConv
from fastnst.subpixel import SubpixelNet, SubpixelOutputConv, TransposedUpsampleConv

ATOL = 1e-4


def trained_like(channels: int = 8, num_residual: int = 2, input_skip: bool = False, seed: int = 0,
                 centred_skip: bool = False, skip_gain: bool = False) -> TransformerNet:
    """Random weights everywhere, norms included (a fresh network's norms are the identity, and an
    input-skip network's output layer is zero: both would hide mistakes)."""
    torch.manual_seed(seed)
    model = TransformerNet(channels=channels, num_residual=num_residual, input_skip=input_skip,
                           centred_skip=centred_skip, skip_gain=skip_gain).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("h,w", [(1, 1), (5, 8), (12, 7)])
def test_transposed_convolution_is_upsample_then_convolution(h, w):
    torch.manual_seed(h)
    layer = UpsampleConv(6, 5).eval()
    x = rand(2, 6, h, w)
    with torch.inference_mode():
        torch.testing.assert_close(TransposedUpsampleConv(layer)(x), layer(x), atol=ATOL, rtol=0)


@pytest.mark.parametrize("h,w", [(8, 8), (10, 14)])
def test_subpixel_output_convolution_is_the_9x9_convolution(h, w):
    torch.manual_seed(w)
    layer = ConvLayer(4, 3, 9, norm=False, relu=False).eval()
    x = rand(2, 4, h, w)
    with torch.inference_mode():
        torch.testing.assert_close(SubpixelOutputConv(layer)(x), layer(x), atol=ATOL, rtol=0)


@pytest.mark.parametrize("input_skip,centred_skip,skip_gain", [(False, False, False), (True, False, False),
                                                                (True, True, False), (True, True, True)])
@pytest.mark.parametrize("h,w", [(3, 5), (16, 16), (67, 45), (30, 101)])
def test_network_matches_the_plain_network(input_skip, centred_skip, skip_gain, h, w):
    model = trained_like(input_skip=input_skip, centred_skip=centred_skip, skip_gain=skip_gain, seed=h)
    x = rand(2, 3, h, w, seed=w)
    with torch.inference_mode():
        ref = model(x)
        out = SubpixelNet(model)(x)
    assert out.shape == ref.shape == x.shape
    assert (ref - x).abs().mean() > 0.05  # the network does something: the comparison means something
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


def test_channels_last_and_bf16():
    model = trained_like(channels=16, seed=3).to(memory_format=torch.channels_last)
    x = rand(1, 3, 48, 40).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ref = model(x)
        torch.testing.assert_close(SubpixelNet(model)(x), ref, atol=ATOL, rtol=0)
        low = copy.deepcopy(model).to(torch.bfloat16)
        sub = 255 * (SubpixelNet(low)(x.bfloat16()).float() - ref).abs()
        plain = 255 * (low(x.bfloat16()).float() - ref).abs()
    # bf16 rounds either form (this heavily perturbed network on noise is a worst case: mean ~1.5,
    # 99th percentile ~40 grey levels for both); the sub-pixel form must not add to it.
    assert sub.mean() <= 1.1 * plain.mean() + 0.1, (sub.mean(), plain.mean())
    assert sub.quantile(0.99) <= 1.1 * plain.quantile(0.99) + 1, (sub.quantile(0.99), plain.quantile(0.99))


def test_follows_the_networks_weights_unless_frozen():
    model, other = trained_like(seed=1), trained_like(seed=2)
    live, frozen = SubpixelNet(model), SubpixelNet(copy.deepcopy(model)).freeze()
    x = rand(1, 3, 24, 20)
    with torch.inference_mode():
        before = model(x)
        model.load_state_dict(other.state_dict())
        frozen.encoder.load_state_dict(other.encoder.state_dict())
        frozen.residuals.load_state_dict(other.residuals.state_dict())
        torch.testing.assert_close(live(x), other(x), atol=ATOL, rtol=0)
        assert (frozen(x) - other(x)).abs().max() > 1e-3  # the decoder kept the weights it froze
    assert (before - other(x)).abs().max() > 1e-3


def test_stylizer_runs_the_subpixel_form_sharing_the_model():
    s = Stylizer(trained_like(), device="cpu", precision="fp32")
    assert isinstance(s.network, SubpixelNet) and s.network.encoder is s.model.encoder
    # the sub-pixel form holds no parameter of its own: every one is a parameter of the model itself
    model_params = {id(p) for p in s.model.parameters()}
    assert all(id(p) in model_params for p in s.network.parameters())
    assert {id(p) for p in s.network.parameters()} == model_params


def test_tiles_replay_recorded_statistics_through_the_subpixel_form():
    model = trained_like(seed=4)
    fast = Stylizer(copy.deepcopy(model), device="cpu", precision="fp32", tile_pixels=40 * 40)
    plain = Stylizer(copy.deepcopy(model), device="cpu", precision="fp32", tile_pixels=40 * 40, decoder="upsample")
    assert plain.network is plain.model
    big = rand(1, 3, 90, 70, seed=5)  # over tile_pixels: tiled, every norm replaying the whole image's statistics
    torch.testing.assert_close(fast.stylize_tensor(big), plain.stylize_tensor(big), atol=ATOL, rtol=0)


def test_refuses_a_network_without_upsampling_layers():
    model = trained_like()
    model.decoder[0] = torch.nn.Identity()
    with pytest.raises(TypeError, match="UpsampleConv"):
        SubpixelNet(model)


def test_transposed_weight_does_fewer_multiply_adds():
    """16 taps per input pixel and output channel instead of upsample-then-3x3's 36."""
    layer = UpsampleConv(4, 2)
    w = TransposedUpsampleConv(layer).weight()
    assert w.shape == (4, 2, 4, 4)
    # every 3x3 tap reaches the output at all four phases: the four 2x2 sub-kernels each sum to the 3x3 kernel
    full = layer.conv[1].weight.sum((2, 3)).T
    for py in range(2):
        for px in range(2):
            torch.testing.assert_close(w[:, :, py::2, px::2].sum((2, 3)), full, atol=1e-6, rtol=0)
