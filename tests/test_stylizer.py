"""Stylizer: sizes, batches, strength, colour preservation, alpha, precision, devices and tiling."""

import copy
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import smooth_image
from fastnst import Stylizer, TransformerNet
from fastnst.images import pil_to_tensor, tensor_to_pil
from fastnst.device import pick_device, pick_dtype
from fastnst.bands import HALO, stylize_in_bands


@pytest.fixture(scope="module")
def model() -> TransformerNet:
    torch.manual_seed(0)
    return TransformerNet(channels=8, num_residual=2, style={"name": "tiny"}).eval()


@pytest.fixture(scope="module")
def stylizer(model) -> Stylizer:
    return Stylizer(model, device="cpu", precision="fp32")  # exact against the fp32 network (auto may be bf16)


def full_stylization(model, img: Image.Image) -> np.ndarray:
    """The network's output for ``img``, computed directly, as uint8 HxWx3."""
    with torch.inference_mode():
        return np.asarray(tensor_to_pil(model(pil_to_tensor(img))))


def diff(a, b) -> np.ndarray:
    return np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int))


@pytest.mark.parametrize("w,h", [(517, 333), (333, 517), (1, 1), (3, 5), (250, 17)])
def test_output_size_equals_input_size(stylizer, w, h):
    out = stylizer(smooth_image(w, h), max_size=None)
    assert out.size == (w, h) and out.mode == "RGB"


def test_stylize_batch_keeps_order_sizes_and_results(stylizer, model):
    imgs = [smooth_image(61, 47, seed=1), smooth_image(33, 90, seed=2), smooth_image(61, 47, seed=3),
            smooth_image(5, 7, seed=4)]
    outs = stylizer.stylize_batch(imgs, max_size=None, batch_size=2)
    assert [o.size for o in outs] == [i.size for i in imgs]
    for img, out in zip(imgs, outs):
        # batched (instance norm is per image) equals one at a time and the network itself
        assert diff(out, stylizer(img, max_size=None)).max() <= 1
        assert diff(out, full_stylization(model, img)).max() <= 1
    assert stylizer.stylize_batch([]) == []


def test_every_input_type_gives_the_same_result(stylizer, tmp_path):
    img = smooth_image(40, 30)
    img.save(tmp_path / "a.png")
    ref = np.asarray(stylizer(img))
    for src in (tmp_path / "a.png", str(tmp_path / "a.png"), (tmp_path / "a.png").read_bytes(), np.asarray(img)):
        np.testing.assert_array_equal(np.asarray(stylizer(src)), ref)


def test_max_size_downscales_keeping_the_aspect(stylizer):
    assert stylizer(smooth_image(300, 200), max_size=150).size == (150, 100)
    assert stylizer(smooth_image(300, 200), max_size=1024).size == (300, 200)


def test_strength(stylizer, model):
    img = smooth_image(64, 48)
    assert diff(stylizer(img, strength=0.0), img).max() == 0
    full = full_stylization(model, img)
    assert diff(stylizer(img, strength=1.0), full).max() <= 1
    half = np.asarray(stylizer(img, strength=0.5)).astype(float)
    assert np.abs(half - (full / 2.0 + np.asarray(img) / 2.0)).max() <= 1.0
    assert diff(full, img).mean() > 20  # the style changes the image: the checks above mean something
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="strength"):
            stylizer(img, strength=bad)


def test_preserve_color_keeps_the_input_chroma(stylizer, model):
    img = smooth_image(80, 60, seed=5)
    out = stylizer(img, preserve_color=True)
    ycc_in, ycc_out = (np.asarray(i.convert("YCbCr")).astype(float) for i in (img, out))
    ycc_full = np.asarray(Image.fromarray(full_stylization(model, img)).convert("YCbCr")).astype(float)
    # Where the stylization's luminance with the input's chroma is a colour RGB can hold (JPEG's
    # YCbCr formulas), the result has exactly those: chroma of the input, luminance of the style.
    y, cb, cr = ycc_full[..., 0], ycc_in[..., 1] - 128, ycc_in[..., 2] - 128
    rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], -1)
    in_gamut = ((rgb >= 0) & (rgb <= 255)).all(-1)
    assert in_gamut.mean() > 0.3
    assert np.abs(ycc_out[..., 1:] - ycc_in[..., 1:])[in_gamut].max() <= 2  # measured 1
    assert np.abs(ycc_out[..., 0] - y)[in_gamut].max() <= 2
    assert np.abs(ycc_full[..., 1:] - ycc_in[..., 1:])[in_gamut].mean() > 10  # without it the colours change


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_kept(stylizer, mode):
    alpha = Image.fromarray(np.tile(np.arange(0, 256, 4, dtype=np.uint8), (40, 1)), "L")
    src = smooth_image(64, 40).convert(mode[:-1])
    src.putalpha(alpha)
    for kwargs in ({}, {"strength": 0.3, "preserve_color": True}):
        out = stylizer(src, **kwargs)
        assert out.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(out.getchannel("A")), np.asarray(alpha))


def test_precision_and_devices(stylizer, model):
    img = smooth_image(48, 40)
    assert stylizer.dtype == torch.float32
    bf16 = Stylizer(copy.deepcopy(model), device="cpu", precision="bf16")
    assert bf16.dtype == torch.bfloat16 and next(bf16.model.parameters()).dtype == torch.bfloat16
    assert diff(bf16(img), stylizer(img)).mean() < 8  # coarse, but the same picture
    with pytest.raises(ValueError, match="precision"):
        pick_dtype(torch.device("cpu"), "fp8")
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            pick_device("cuda")
    with pytest.raises(ValueError, match="not available"):
        pick_device(f"cuda:{torch.cuda.device_count() + 3}")
    assert pick_device("cpu") == torch.device("cpu")


def test_from_pretrained_folder(tiny_style):
    s = Stylizer.from_pretrained(tiny_style, device="cpu")
    assert s.name == "tiny" and s.model.channels == 8
    assert s(smooth_image(20, 10)).size == (20, 10)


# --- bands -------------------------------------------------------------------------------------
# Images over tile_pixels go through the network in horizontal bands, every norm with the whole
# image's statistics: the output must be the untiled network's, whatever the band height.


@pytest.mark.parametrize("kind", [dict(), dict(input_skip=True), dict(upsample="bilinear", input_skip=True,
                                                                      centred_skip=True, skip_gain=True),
                                  dict(dilations=[2, 3])])  # the trunk runs whole, however far it reaches
def test_bands_give_the_whole_images_output(kind):
    """Random weights (they amplify any difference in statistics far beyond a trained style), an odd size
    (padded to the stride grid) and bands from one row of the 1/4-resolution trunk to the whole image."""
    torch.manual_seed(3)
    net = TransformerNet(channels=8, num_residual=2, **kind).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.rand(1, 3, 101, 67, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        whole = net(x)
        for rows in (4, 20, 36, 104):
            banded = stylize_in_bands(net, x, rows)
            assert banded.shape == whole.shape
            assert float((banded - whole).abs().max()) < 1e-4, (kind, rows)


def test_a_trained_style_in_bands_is_its_float64_output():
    """The first embedded style on a photo-like image, against the network run whole in float64: the bands
    are off only by float32 rounding (measured 0.001 grey levels on average, 0.04 at most; the untiled
    channels-last pass is further off, 0.03-0.05 and 0.8-2). The shared-statistics tiles this replaced
    were 5.4 grey levels off on average here."""
    from fastnst.styles import embedded_styles

    styles = embedded_styles()
    assert styles, "the embedded styles are missing"
    net = TransformerNet.from_pretrained(next(iter(styles.values()))).float().eval()
    x = pil_to_tensor(smooth_image(481, 361))
    with torch.inference_mode():
        exact = copy.deepcopy(net).double()(x.double()).float()
    banded = Stylizer(net, device="cpu", precision="fp32", tile_pixels=240**2).stylize_tensor(x)
    err = (banded - exact).abs() * 255
    assert float(err.mean()) < 0.01 and float(err.max()) < 0.25, (float(err.mean()), float(err.max()))


def test_large_image_goes_in_bands_through_the_public_api(model):
    """Memory follows the band: no full-resolution layer ever sees more than a band and its halo."""
    s = Stylizer(model, device="cpu", precision="fp32", tile_pixels=96 * 96)
    first, last = model.encoder[0][1], model.decoder[-1][1]  # the full-resolution convolutions
    seen = []
    hooks = [m.register_forward_hook(lambda m, args, out: seen.append(tuple(out.shape[-2:]))) for m in (first, last)]
    try:
        out = s(smooth_image(250, 170), max_size=None)
    finally:
        for hook in hooks:
            hook.remove()
    assert out.size == (250, 170)
    rows = 96 * 96 // 252 // 4 * 4  # the padded width is 252
    assert len(seen) > 4 and max(h for h, _ in seen) <= rows + 2 * HALO
    assert diff(out, full_stylization(model, smooth_image(250, 170))).max() <= 1


def test_stylize_recording_gives_the_plain_output_and_each_layers_statistics():
    """One image: the output is stylize_tensor's, and the statistics (taken from batch norm's own pass)
    are those measured directly (the var_mean path of a batch of two), so replaying them reproduces it."""
    torch.manual_seed(1)
    net = TransformerNet(channels=8, num_residual=2, input_skip=True, centred_skip=True).eval()
    st = Stylizer(net, device="cpu", precision="fp32")
    x = pil_to_tensor(smooth_image(70, 50, seed=2))
    y, stats = st.stylize_recording(x)
    assert float((y - st.stylize_tensor(x)).abs().max()) < 1e-5
    reference = st.norm_stats(torch.cat([x, x.flip(-1)]))  # a batch of two: measured with var_mean
    assert len(stats) == len(reference) == len(net.recorded_layers())
    for (m, v), (rm, rv) in zip(stats, reference):
        assert torch.allclose(m, rm[:1], atol=1e-5) and torch.allclose(v, rv[:1], rtol=1e-3, atol=1e-6)
    assert float((st.stylize_tensor(x, norm_stats=stats) - y).abs().max()) < 1e-4
