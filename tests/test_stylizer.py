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
from fastnst.stylizer import _spans


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


# --- tiling -------------------------------------------------------------------------------------
# A random-init width-16 network and a photo-like 481x361 image (odd sizes: the last tiles do
# not start where plain tiling would put them), in tiles of about 240x240 px.

TILE_W, TILE_H, TILE_SIDE = 481, 361, 240


@pytest.fixture(scope="module")
def tiling():
    # A trained style: random networks amplify any difference in instance-norm statistics far
    # beyond what a real style does, so they say little about what users see.
    from fastnst.styles import embedded_styles

    styles = embedded_styles()
    assert styles, "the embedded styles are missing"
    net = TransformerNet.from_pretrained(next(iter(styles.values()))).float().eval()
    x = pil_to_tensor(smooth_image(TILE_W, TILE_H))
    whole = Stylizer(net, device="cpu", precision="fp32", tile_pixels=10**9).stylize_tensor(x)
    tiled_stylizer = Stylizer(net, device="cpu", precision="fp32", tile_pixels=TILE_SIDE**2)
    return net, x, whole, tiled_stylizer, tiled_stylizer.stylize_tensor(x)


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


def test_spans_cover_the_image_on_the_networks_grid():
    for length, side, overlap in [(641, 320, 80), (1003, 512, 128), (321, 320, 80), (1000, 256, 50), (64, 64, 16)]:
        spans = _spans(length, side, overlap)
        assert spans[0][0] == 0 and spans[-1][1] == length
        assert all(s % 4 == 0 for s, _ in spans)  # the stride-4 grid of the network
        assert all(e - s <= side + 3 for s, e in spans)
        assert all(b[0] < a[1] - overlap + 1 for a, b in zip(spans, spans[1:]))  # overlapping by >= overlap


def test_tiling_is_exact_given_the_same_statistics(tiling, monkeypatch):
    """With full-resolution statistics, tiles reproduce the whole-image output (measured mean
    0.1/255); a tile starting off the stride-4 grid made it 5.3/255."""
    net, x, whole, tiled_stylizer, _ = tiling
    monkeypatch.setattr(tiled_stylizer, "tile_stats", lambda image: net.norm_stats(image))
    tiled = tiled_stylizer.stylize_tensor(x)
    assert float((tiled - whole).abs().mean() * 255) < 0.5


def test_extrapolated_statistics_beat_one_downscaled_copy(tiling, monkeypatch):
    """Tiles share statistics extrapolated from two downscaled copies (measured on this style and
    image: 5.0 -> 2.2 grey levels off the untiled output, against those of the larger copy alone)."""
    net, x, whole, tiled_stylizer, tiled = tiling
    _, _, h, w = x.shape
    scale = (tiled_stylizer.tile_pixels / (h * w)) ** 0.5
    monkeypatch.setattr(tiled_stylizer, "tile_stats", lambda image: net.norm_stats(
        torch.nn.functional.interpolate(image, size=(round(h * scale), round(w * scale)), mode="area")))
    one_copy = tiled_stylizer.stylize_tensor(x)
    err, err_one = (float((t - whole).abs().mean() * 255) for t in (tiled, one_copy))
    assert err < 0.7 * err_one, (err, err_one)


def test_no_visible_seams(tiling):
    _, _, whole, tiled_stylizer, tiled = tiling
    overlap = min(tiled_stylizer.tile_overlap, TILE_SIDE // 4)

    def edges(length):  # last pixel before each tile edge inside the image
        return sorted({e - 1 for s, e in _spans(length, TILE_SIDE, overlap) if e < length}
                      | {s - 1 for s, e in _spans(length, TILE_SIDE, overlap) if s > 0})

    for dim, length in ((3, TILE_W), (2, TILE_H)):
        def grad(y):  # mean |difference between neighbours| across each column (dim 3) or row (dim 2)
            d = (y.narrow(dim, 1, length - 1) - y.narrow(dim, 0, length - 1)).abs() * 255
            return d.mean(dim=[i for i in range(4) if i != dim])

        g_tiled, g_whole, at = grad(tiled), grad(whole), edges(length)
        assert at
        # measured: at most 1.02x the untiled gradient there, and under half the 95th percentile;
        # tiles normalised on their own statistics make it 1.5x
        assert float((g_tiled[at] / g_whole[at].clamp_min(0.5)).max()) < 1.15
        assert float(g_tiled[at].max()) <= float(torch.quantile(g_tiled, 0.95))


def test_large_image_is_tiled_through_the_public_api(model):
    s = Stylizer(model, device="cpu", precision="fp32", tile_pixels=96 * 96)
    calls = []
    run = s._run
    s._run = lambda x: calls.append(tuple(x.shape[-2:])) or run(x)
    out = s(smooth_image(250, 170), max_size=None)
    assert out.size == (250, 170)
    assert len(calls) == len(_spans(250, 96, 24)) * len(_spans(170, 96, 24)) > 1
    assert max(h * w for h, w in calls) <= 99 * 99
