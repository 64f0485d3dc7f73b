"""Reading images: every Pillow mode, EXIF orientation, arrays, and the helpers around them."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from fastnst import ImageError
from fastnst import images
from fastnst.images import array_to_pil, fit_size, list_images, load_image, pil_to_tensor, tensor_to_pil
from fastnst.stylizer import save_image
from test_hostile_inputs import encode


def px(img: Image.Image) -> np.ndarray:
    return np.asarray(img).astype(int)


# --- modes ------------------------------------------------------------------------------------

def test_rgba_keeps_its_alpha():
    a = np.random.default_rng(0).integers(0, 256, (7, 9, 4), dtype=np.uint8)
    for src in (Image.fromarray(a, "RGBA"), encode(Image.fromarray(a, "RGBA"), "PNG")):
        out = load_image(src)
        assert out.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(out), a)


def test_grey_and_grey_alpha():
    g = np.arange(60, dtype=np.uint8).reshape(6, 10) * 4
    out = load_image(encode(Image.fromarray(g, "L"), "PNG"))
    assert out.mode == "RGB"
    np.testing.assert_array_equal(px(out), np.repeat(g[..., None], 3, axis=2))
    alpha = 255 - g
    la = Image.merge("LA", (Image.fromarray(g, "L"), Image.fromarray(alpha, "L")))
    out = load_image(encode(la, "PNG"))
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(px(out)[..., 0], g)
    np.testing.assert_array_equal(px(out)[..., 3], alpha)
    # a grey PNG with a transparent grey value (tRNS) gets an alpha channel
    out = load_image(encode(Image.fromarray(g, "L"), "PNG", transparency=int(g[2, 3])))
    assert out.mode == "RGBA" and out.getpixel((3, 2))[3] == 0 and out.getpixel((0, 0))[3] == 255


def test_rgb_with_a_transparent_colour():
    a = np.zeros((4, 4, 3), np.uint8)
    a[0, 0] = (1, 2, 3)
    out = load_image(encode(Image.fromarray(a, "RGB"), "PNG", transparency=(1, 2, 3)))
    assert out.mode == "RGBA" and out.getpixel((0, 0)) == (1, 2, 3, 0) and out.getpixel((1, 1)) == (0, 0, 0, 255)


def _palette_image() -> Image.Image:
    p = Image.new("P", (8, 6))
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    p.putdata([(x + y) % 3 for y in range(6) for x in range(8)])
    return p


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_and_without_transparency(fmt):
    colours = {0: (255, 0, 0), 1: (0, 255, 0), 2: (0, 0, 255)}
    idx = np.array([[(x + y) % 3 for x in range(8)] for y in range(6)])
    expected = np.array([[colours[i] for i in row] for row in idx])
    out = load_image(encode(_palette_image(), fmt))
    assert out.mode == "RGB"
    np.testing.assert_array_equal(px(out), expected)
    out = load_image(encode(_palette_image(), fmt, transparency=1))
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(px(out)[..., 3], np.where(idx == 1, 0, 255))
    np.testing.assert_array_equal(px(out)[idx != 1][:, :3], expected[idx != 1])


def test_bilevel():
    bits = (np.indices((5, 7)).sum(0) % 2).astype(bool)
    out = load_image(encode(Image.fromarray(bits), "PNG"))
    assert out.mode == "RGB"
    np.testing.assert_array_equal(px(out), np.repeat(bits[..., None] * 255, 3, axis=2))


def test_cmyk_jpeg():
    cmyk = Image.new("CMYK", (32, 16), (255, 0, 0, 0))  # cyan
    cmyk.paste((0, 0, 255, 0), (16, 0, 32, 16))  # yellow
    out = load_image(encode(cmyk, "JPEG", quality=95))
    assert out.mode == "RGB"
    np.testing.assert_allclose(px(out)[8, 4], (0, 255, 255), atol=4)
    np.testing.assert_allclose(px(out)[8, 28], (255, 255, 0), atol=4)


def test_16bit_png_is_scaled_not_clipped():
    v = np.array([[0, 1000, 20000, 32768, 50000, 65535]], dtype=np.uint16).repeat(3, axis=0)
    data = encode(Image.fromarray(v), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    out = load_image(data)
    expected = np.round(v / 65535 * 255)
    np.testing.assert_array_equal(px(out)[..., 0], expected)
    np.testing.assert_array_equal(px(out)[..., 1], expected)
    assert px(out)[0, 1, 0] == 4  # clipping would make 1000 white


def test_16bit_big_endian_is_scaled_too():
    dark = np.full((2, 4), 200, ">u2")  # all values below 256: still 16-bit, so nearly black
    out = load_image(Image.frombytes("I;16B", (4, 2), dark.tobytes()))
    assert px(out).max() == 1


def test_32bit_integer_mode():
    small = np.arange(12, dtype=np.int32).reshape(3, 4) * 20  # 8-bit range: taken as is
    np.testing.assert_array_equal(px(load_image(Image.fromarray(small, "I")))[..., 0], small)
    wide = np.array([[0, 32768, 65535]], dtype=np.int32)  # 16-bit range: scaled
    np.testing.assert_array_equal(px(load_image(Image.fromarray(wide, "I")))[0, :, 0], [0, 128, 255])
    tif = load_image(encode(Image.fromarray(wide, "I"), "TIFF"))
    np.testing.assert_array_equal(px(tif)[0, :, 0], [0, 128, 255])


def test_float_mode():
    unit = np.array([[0.0, 0.25, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(px(load_image(Image.fromarray(unit, "F")))[0, :, 0], [0, 64, 255])
    # mode F made from 8-bit data holds 0-255: kept, not clipped to white
    grey = Image.fromarray(np.array([[0, 100, 200]], dtype=np.uint8), "L").convert("F")
    np.testing.assert_array_equal(px(load_image(grey))[0, :, 0], [0, 100, 200])
    np.testing.assert_array_equal(px(load_image(encode(grey, "TIFF")))[0, :, 0], [0, 100, 200])
    big = np.array([[0.0, 500.0, 1000.0]], dtype=np.float32)
    np.testing.assert_array_equal(px(load_image(Image.fromarray(big, "F")))[0, :, 0], [0, 128, 255])
    nan = encode(Image.fromarray(np.array([[0.0, np.nan]], dtype=np.float32), "F"), "TIFF")
    with pytest.raises(ImageError, match="uploaded bytes.*NaN"):
        load_image(nan)


@pytest.mark.parametrize("orientation,corner",
                         [(6, "top-right"), (8, "bottom-left"), (3, "bottom-right"), (1, "top-left")])
def test_exif_orientation(tmp_path, orientation, corner):
    a = np.zeros((40, 64, 3), np.uint8)
    a[..., 2] = 255
    a[:20, :32] = (255, 0, 0)  # red block at the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "rotated.jpg"
    Image.fromarray(a).save(path, quality=95, exif=exif)
    out = load_image(path)
    assert out.size == ((40, 64) if orientation in (6, 8) else (64, 40))
    w, h = out.size
    where = {"top-left": (3, 3), "top-right": (w - 4, 3), "bottom-left": (3, h - 4), "bottom-right": (w - 4, h - 4)}
    for name, xy in where.items():
        r, g, b = out.getpixel(xy)
        assert (r > 200 and b < 50) == (name == corner), (name, (r, g, b))
    assert load_image(Image.open(path)).size == out.size  # an opened PIL image is rotated too


# --- arrays, tensors, sizes -------------------------------------------------------------------

def test_arrays():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(load_image(rgb)), rgb)
    grey = rgb[..., 0]
    np.testing.assert_array_equal(np.asarray(load_image(grey))[..., 2], grey)
    np.testing.assert_array_equal(np.asarray(load_image(grey[..., None]))[..., 1], grey)
    rgba = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    assert load_image(rgba).mode == "RGBA"
    np.testing.assert_array_equal(px(load_image(rgb.astype(np.float32) / 255)), rgb)
    np.testing.assert_array_equal(px(load_image(rgb.astype(np.uint16) * 257)), rgb)
    assert px(array_to_pil(np.eye(3, dtype=bool))).max() == 255
    for bad in (np.zeros((2, 3, 2), np.uint8), np.zeros((4,), np.uint8), np.zeros((2, 2, 3), np.complex64),
                np.full((2, 2), np.inf, np.float32), np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(ImageError):
            load_image(bad)


def test_tensor_round_trip():
    a = np.random.default_rng(2).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    t = pil_to_tensor(Image.fromarray(a))
    assert t.shape == (1, 3, 7, 5) and t.dtype == torch.float32 and 0 <= float(t.min()) <= float(t.max()) <= 1
    np.testing.assert_array_equal(np.asarray(tensor_to_pil(t)), a)
    assert tensor_to_pil(torch.full((3, 2, 2), 7.0)).getpixel((0, 0)) == (255, 255, 255)  # clamped


@pytest.mark.parametrize("size,limit,expected", [
    ((517, 333), 1024, (517, 333)), ((4000, 3000), 1000, (1000, 750)), ((333, 517), 100, (64, 100)),
    ((1, 5000), 500, (1, 500)), ((5000, 1), 500, (500, 1)), ((800, 600), None, (800, 600)),
])
def test_fit_size(size, limit, expected):
    assert fit_size(*size, limit) == expected


def test_file_size_and_pixel_limits(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    Image.new("RGB", (100, 80)).save(path)
    with pytest.raises(ImageError, match="megapixels"):
        load_image(path, max_pixels=7999)
    assert load_image(path, max_pixels=8000).size == (100, 80)
    monkeypatch.setattr(images, "MAX_FILE_BYTES", path.stat().st_size - 1)
    with pytest.raises(ImageError, match="a.png.*MiB"):
        load_image(path)
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def test_list_images(tmp_path):
    for name in ("b.jpg", "a.PNG", "sub/c.webp", "sub/deeper/d.tiff", "notes.txt", "sub/e.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = list_images([tmp_path, tmp_path / "notes.txt"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.PNG", "b.jpg", "sub/c.webp", "sub/deeper/d.tiff", "notes.txt"]


def test_save_image(tmp_path):
    rgba = Image.new("RGBA", (6, 4), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 3, 4))
    for name in ("x.png", "deep/er/x.webp", "x.tif"):
        save_image(rgba, tmp_path / name)
        assert Image.open(tmp_path / name).mode == "RGBA"
    save_image(rgba, tmp_path / "x.jpg")  # JPEG: transparent pixels onto white
    jpg = Image.open(tmp_path / "x.jpg")
    assert jpg.mode == "RGB"
    np.testing.assert_allclose(jpg.getpixel((5, 2)), (255, 255, 255), atol=6)
    np.testing.assert_allclose(jpg.getpixel((0, 2)), (0, 0, 255), atol=6)
    with pytest.raises(ValueError, match="suffix"):
        save_image(rgba, tmp_path / "new" / "x.xyz")
    assert not (tmp_path / "new").exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_label_font_draws_accented_letters():
    """Labels carry painters' names ("Fernand Léger"): é must be drawn as a letter, not the missing-glyph box."""
    font = images.label_font(24)

    def ink(text: str) -> np.ndarray:
        mask = font.getmask(text)
        return np.asarray(mask, dtype=np.uint8).reshape(mask.size[::-1])

    missing = ink("\U000f0000")  # a private-use character no label font has
    accented, plain = ink("é"), ink("e")
    assert accented.shape != missing.shape or not np.array_equal(accented, missing)
    assert accented.shape[0] > plain.shape[0]  # the accent stands above the letter
