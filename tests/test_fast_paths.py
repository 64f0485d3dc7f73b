"""The fast inference paths agree with plain fp32 eager, each within a stated tolerance.

* channels_last and ``torch.compile`` in fp32 compute the same float32 operations in another
  order: measured differences are about 1e-6 on [0, 1] outputs; allowed: 1e-4 (0.03 grey levels).
* bf16 keeps 8 bits of mantissa in every activation, so it is close but not identical.
  A trained style (the embedded starry_night, 512 px, three photos): mean difference 0.1-0.3 grey
  levels (of 255), 99th percentile 1, maximum 3, PSNR 53-58 dB: visually the same picture, so
  ``auto`` is bf16 on CPUs that compute it natively (1.6-2.5x faster than fp32 there). Allowed:
  mean <= 1, 99.9th percentile <= 8, maximum <= 16, for every embedded style (tests/test_embedded_styles.py,
  where the measured figures of the shipped styles are). Should a
  retrained style exceed that, revisit the default in ``fastnst.stylizer.pick_dtype``.
  Random-init networks (width 8/16/32, three seeds, photo-like 160-200 px images) are the worst
  case: mean 1.2-2.5, 99th percentile 5-10, maximum 12-21 (on edges). Allowed: mean <= 3.5,
  99th percentile <= 14, maximum <= 40.
* fp16 on CUDA (only where a GPU is present): allowed mean <= 1.5, maximum <= 16 grey levels.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, levels, smooth_image
import fastnst.device
from fastnst import Stylizer, TransformerNet
from fastnst.model import InstanceNorm
from fastnst.stylizer import compile_network

FP32_ATOL = 1e-4
BF16_MEAN, BF16_P99, BF16_MAX = 3.5, 14, 40            # random-init networks (the worst case; trained styles: test_embedded_styles)


def net(channels: int = 16, num_residual: int = 5, seed: int = 0) -> TransformerNet:
    torch.manual_seed(seed)
    return TransformerNet(channels=channels, num_residual=num_residual).eval()


def test_channels_last_matches_contiguous():
    model = net()
    x = torch.rand(2, 3, 70, 54, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = copy.deepcopy(model)(x.contiguous())
        cl = copy.deepcopy(model).to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(cl, ref, atol=FP32_ATOL, rtol=0)


@pytest.mark.parametrize("mode", ["normal", "record"])
def test_instance_norm_is_exact_on_huge_channels_last_images(mode):
    """torch's CPU batch norm (the one-image fast path) sums a float32 channels_last image in float32 in one
    sweep, 1.1 standard deviations off on this 4.2 MP image; above 4 MP (images run whole with ``tile_pixels``
    raised) the statistics are measured apart."""
    c, h, w = 8, 2049, 2050
    norm = InstanceNorm(c).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        norm.weight.copy_(torch.rand(c, generator=g) + 0.5)
        norm.bias.copy_(torch.randn(c, generator=g))
    x = torch.randn(1, c, h, w, generator=g) * 2 + torch.arange(float(c)).view(1, c, 1, 1) * 12
    ref = torch.nn.functional.instance_norm(x.double(), weight=norm.weight.detach().double(),
                                            bias=norm.bias.detach().double())
    cl = x.contiguous(memory_format=torch.channels_last)
    assert InstanceNorm.batch_norm_drifts(cl)
    assert not InstanceNorm.batch_norm_drifts(x) and not InstanceNorm.batch_norm_drifts(cl[..., :2048, :2048])
    norm.mode = mode
    with torch.inference_mode():
        y = norm(cl)
    assert (y.double() - ref).abs().max() < 1e-4
    if mode == "record":  # the kept statistics are the exact ones too, for the frames that replay them
        var, mean = torch.var_mean(x.double(), dim=(2, 3), keepdim=True, correction=0)
        torch.testing.assert_close(norm.stats[0].double(), mean, atol=1e-5, rtol=0)
        torch.testing.assert_close(norm.stats[1].double(), var, atol=1e-4, rtol=1e-5)


def test_bf16_is_close_to_fp32():
    model = net(seed=1)
    fp32 = Stylizer(copy.deepcopy(model), device="cpu", precision="fp32")
    bf16 = Stylizer(copy.deepcopy(model), device="cpu", precision="bf16")
    assert bf16.dtype == torch.bfloat16
    astronaut = Image.open(REPO / "fastnst" / "assets" / "astronaut.jpg").convert("RGB").resize((128, 128))
    for img in (smooth_image(160, 120, seed=1), astronaut):
        d = levels(bf16(img), fp32(img))
        assert d.mean() <= BF16_MEAN and np.percentile(d, 99) <= BF16_P99 and d.max() <= BF16_MAX, \
            (d.mean(), np.percentile(d, 99), d.max())


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_on_cpu_is_bf16_only_where_native(monkeypatch, native):
    monkeypatch.setattr(fastnst.device, "cpu_supports_bf16", lambda: native)
    assert Stylizer(net(4, 1), device="cpu").dtype == (torch.bfloat16 if native else torch.float32)


def test_compile_matches_eager_and_tiles_stay_eager():
    """A tiny network (compiling takes seconds per graph on a CPU); whole images run compiled, tiles eager."""
    model = net(4, 1)
    eager = Stylizer(copy.deepcopy(model), device="cpu", precision="fp32", tile_pixels=40 * 40)
    fast = Stylizer(copy.deepcopy(model), device="cpu", precision="fp32", tile_pixels=40 * 40, compile=True)
    assert fast.network is not fast.model
    x = torch.rand(1, 3, 36, 28, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(fast.stylize_tensor(x), eager.stylize_tensor(x), atol=FP32_ATOL, rtol=0)
    big = torch.rand(1, 3, 60, 52, generator=torch.Generator().manual_seed(1))  # over tile_pixels: tiled
    torch.testing.assert_close(fast.stylize_tensor(big), eager.stylize_tensor(big), atol=FP32_ATOL, rtol=0)


def test_a_compiler_failure_falls_back_to_eager_with_a_warning(monkeypatch):
    """torch 2.11's inductor cannot lower the sub-pixel convolution (seen on a GPU machine): stylizing goes on."""
    import fastnst.stylizer

    def broken(*_: object) -> torch.Tensor:
        raise torch._dynamo.exc.BackendCompilerFailed(None, NotImplementedError("View"), None)

    monkeypatch.setattr(fastnst.stylizer, "compile_network", lambda *a: broken)
    model = net(4, 1)
    eager = Stylizer(copy.deepcopy(model), device="cpu", precision="fp32")
    fast = Stylizer(copy.deepcopy(model), device="cpu", precision="fp32", compile=True)
    x = torch.rand(1, 3, 36, 28, generator=torch.Generator().manual_seed(0))
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*without compiling"):
        y = fast.stylize_tensor(x)
    torch.testing.assert_close(y, eager.stylize_tensor(x), atol=FP32_ATOL, rtol=0)
    assert fast.network is not broken
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: the next image runs eagerly without a word
        fast.stylize_tensor(x)


def test_bad_compile_mode_and_threads():
    with pytest.raises(ValueError, match="compile"):
        compile_network(net(4, 1), torch.device("cpu"), "warp-speed")
    before = torch.get_num_threads()
    try:
        Stylizer(net(4, 1), device="cpu", threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("compile", [False, True])
def test_cuda_fp16_is_close_to_fp32(compile):
    model = net(32, 5)
    img = smooth_image(256, 192)
    ref = Stylizer(copy.deepcopy(model), device="cpu", precision="fp32")(img)
    fast = Stylizer(copy.deepcopy(model), device="cuda", precision="fp16", compile=compile)
    assert fast.dtype == torch.float16
    d = levels(fast(img), ref)
    assert d.mean() <= 1.5 and d.max() <= 16, (d.mean(), d.max())
