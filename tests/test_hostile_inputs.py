"""Hostile and odd inputs (issue 8): a corpus of images made here, and untrusted style files.

Every image either gives a typed ``ImageError`` naming the file or a correct RGB(A) result, in
the library and in the CLI; decompression bombs are refused before anything is decoded.
"""

import io
import json
import pickle
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_style, smooth_image
from fastnst import ImageError, InvalidStyleError, Stylizer, TransformerNet, UnsafeWeightsError
from fastnst.bands import HALO
from fastnst.cli import main
from fastnst.images import load_image


# --- making the corpus --------------------------------------------------------------------------

def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking PNG of a few hundred bytes whose header declares ``width`` x ``height`` RGB pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
            + chunk(b"IEND", b""))


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) is patched to declare ``width`` x ``height``."""
    data = bytearray(encode(smooth_image(32, 24), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def bmp_declaring(width: int, height: int) -> bytes:
    dib = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 16, 0, 0, 54) + dib + b"\0" * 16


def _palette(transparent: bool) -> Image.Image:
    p = Image.new("P", (30, 20))
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    p.putdata([(x // 10) for _ in range(20) for x in range(30)])
    if transparent:
        p.info["transparency"] = 1
    return p


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    return encode(smooth_image(64, 40), "JPEG", exif=exif)


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 30), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _cmyk() -> bytes:
    return encode(Image.new("CMYK", (40, 30), (0, 255, 0, 0)), "JPEG", quality=95)  # magenta


def _with_alpha(width: int, height: int, mode: str = "RGBA") -> Image.Image:
    img = smooth_image(width, height).convert(mode[:-1])
    img.putalpha(Image.linear_gradient("L").resize((width, height)))
    return img


PHOTO_JPEG = encode(smooth_image(320, 240), "JPEG", quality=90)
PHOTO_PNG = encode(smooth_image(160, 120), "PNG")
POSTSCRIPT = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\nshowpage\n%%EOF\n"
RANDOM = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()

TOO_LARGE = "too large|megapixels"
UNREADABLE = "not an image file"
BROKEN = "corrupt or truncated"
#: file name -> (its bytes, the error it must give) or (its bytes, expected mode, expected size)
CORPUS = {
    "zero-bytes.jpg": (lambda: b"", "empty"),
    "truncated.jpg": (lambda: PHOTO_JPEG[: len(PHOTO_JPEG) // 2], BROKEN),
    "truncated.png": (lambda: PHOTO_PNG[: len(PHOTO_PNG) // 2], BROKEN),
    "random-bytes.png": (lambda: RANDOM, UNREADABLE),
    "random-bytes.jpg": (lambda: RANDOM, UNREADABLE),
    "html-page.png": (lambda: b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>", UNREADABLE),
    "postscript.png": (lambda: POSTSCRIPT, UNREADABLE),  # Pillow would hand EPS to Ghostscript
    "bomb-30000x30000.png": (lambda: png_declaring(30000, 30000), TOO_LARGE),
    "bomb-10000x6000.png": (lambda: png_declaring(10000, 6000), TOO_LARGE),  # 60 MP: fastnst's own limit
    "bomb-60000x60000.jpg": (lambda: jpeg_declaring(60000, 60000), TOO_LARGE),
    "bomb-30000x30000.bmp": (lambda: bmp_declaring(30000, 30000), TOO_LARGE),
    "one-pixel.png": (lambda: encode(Image.new("RGB", (1, 1), (9, 99, 199)), "PNG"), "RGB", (1, 1)),
    "one-by-n.png": (lambda: encode(smooth_image(1, 300), "PNG"), "RGB", (1, 300)),
    "n-by-one.jpg": (lambda: encode(smooth_image(257, 1), "JPEG"), "RGB", (257, 1)),
    "sixteen-bit.png": (lambda: encode(Image.fromarray(np.arange(0, 65536, 32, dtype=np.uint16).reshape(32, 64)),
                                       "PNG"), "RGB", (64, 32)),
    "cmyk.jpg": (_cmyk, "RGB", (40, 30)),
    "palette.png": (lambda: encode(_palette(False), "PNG"), "RGB", (30, 20)),
    "palette-transparent.png": (lambda: encode(_palette(True), "PNG", transparency=1), "RGBA", (30, 20)),
    "palette-transparent-gif.gif": (lambda: encode(_palette(True), "GIF", transparency=1), "RGBA", (30, 20)),
    "grey-alpha.png": (lambda: encode(_with_alpha(40, 30, "LA"), "PNG"), "RGBA", (40, 30)),
    "rgba.png": (lambda: encode(_with_alpha(40, 30), "PNG"), "RGBA", (40, 30)),
    "animated.gif": (_animated_gif, "RGB", (40, 30)),
    "exif-rotated.jpg": (_exif_rotated, "RGB", (40, 64)),
    "lossy.webp": (lambda: encode(smooth_image(50, 30), "WEBP", quality=80), "RGB", (50, 30)),
    "alpha.webp": (lambda: encode(_with_alpha(50, 30), "WEBP", lossless=True), "RGBA", (50, 30)),
    "deflate.tiff": (lambda: encode(smooth_image(50, 30), "TIFF", compression="tiff_adobe_deflate"), "RGB", (50, 30)),
    "plain.bmp": (lambda: encode(smooth_image(50, 30), "BMP"), "RGB", (50, 30)),
}
BAD = sorted(k for k, v in CORPUS.items() if len(v) == 2)
GOOD = sorted(k for k, v in CORPUS.items() if len(v) == 3)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for name, (make, *_) in CORPUS.items():
        (folder / name).write_bytes(make())
    return folder


@pytest.fixture(scope="module")
def stylizer(tiny_style) -> Stylizer:
    return Stylizer.from_pretrained(tiny_style, device="cpu")


def test_the_corpus_is_what_it_claims(corpus, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # reading headers only
    assert Image.open(corpus / "postscript.png").format == "EPS"  # what Pillow would open it as
    assert Image.open(corpus / "bomb-30000x30000.png").size == (30000, 30000)
    assert Image.open(corpus / "bomb-60000x60000.jpg").size == (60000, 60000)
    assert Image.open(corpus / "bomb-30000x30000.bmp").size == (30000, 30000)
    assert max(p.stat().st_size for p in corpus.glob("bomb-*")) < 5000
    assert Image.open(corpus / "cmyk.jpg").mode == "CMYK"
    assert Image.open(corpus / "sixteen-bit.png").mode.startswith("I;16")
    assert getattr(Image.open(corpus / "animated.gif"), "n_frames", 1) == 3


@pytest.mark.parametrize("name", BAD)
def test_bad_files_raise_a_typed_error_naming_the_file(corpus, stylizer, name):
    problem = CORPUS[name][1]
    for call in (load_image, stylizer):
        with pytest.raises(ImageError, match=problem) as e:
            call(corpus / name)
        assert name in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ImageError, match=problem):  # the same bytes uploaded
        stylizer((corpus / name).read_bytes())


@pytest.mark.parametrize("name", GOOD)
def test_odd_files_give_a_correct_result(corpus, stylizer, name):
    _, mode, size = CORPUS[name]
    img = load_image(corpus / name)
    assert (img.mode, img.size) == (mode, size)
    out = stylizer(corpus / name, max_size=None)
    assert (out.mode, out.size) == (mode, size)
    if mode == "RGBA":
        np.testing.assert_array_equal(np.asarray(out.getchannel("A")), np.asarray(img.getchannel("A")))
    original = stylizer(corpus / name, strength=0.0)
    np.testing.assert_array_equal(np.asarray(original), np.asarray(img))


def test_odd_files_decode_to_the_right_pixels(corpus):
    assert load_image(corpus / "animated.gif").getpixel((20, 15)) == (255, 0, 0)  # the first frame
    np.testing.assert_allclose(load_image(corpus / "cmyk.jpg").getpixel((20, 15)), (255, 0, 255), atol=4)
    assert load_image(corpus / "one-pixel.png").getpixel((0, 0)) == (9, 99, 199)
    grey = np.asarray(load_image(corpus / "sixteen-bit.png"))[..., 0]
    assert grey.min() == 0 and grey.max() == 255 and len(np.unique(grey)) > 200  # scaled, not clipped
    pal = load_image(corpus / "palette-transparent-gif.gif")
    assert pal.getpixel((15, 5))[3] == 0 and pal.getpixel((5, 5)) == (255, 0, 0, 255)


def test_cli_over_the_corpus(corpus, stylizer, tiny_style, tmp_path, capsys):
    rc = main(["stylize", str(corpus), "--style", str(tiny_style), "-o", str(tmp_path / "out"), "--max-size", "64"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == len(BAD)
    for name in BAD:  # one line each, naming the file and the problem
        mine = [line for line in lines if name in line]
        assert len(mine) == 1 and re.search(CORPUS[name][1], mine[0]), (name, mine)
    assert f"{len(BAD)} of {len(CORPUS)} files failed" in err
    for name in GOOD:
        out = Image.open(tmp_path / "out" / f"{Path(name).stem}-{stylizer.name}.png")
        assert out.mode == CORPUS[name][1] and max(out.size) == min(64, max(CORPUS[name][2]))


# --- memory -----------------------------------------------------------------------------------

MEASURE = """
import re, sys
from pathlib import Path
from fastnst.errors import ImageError
from fastnst.images import load_image

def peak_mib():  # this process's peak RSS (VmHWM; ru_maxrss would include the parent's at fork)
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024

start = peak_mib()
for path in sys.argv[2:]:
    try:
        load_image(path)
    except ImageError:
        pass
    else:
        sys.exit(f"{path} was accepted")
after_bombs = peak_mib()
load_image(sys.argv[1])  # control: a real image just under the limit does raise the peak
print(after_bombs - start, peak_mib() - after_bombs)
"""


def test_bombs_are_refused_before_decoding(corpus, tmp_path):
    control = tmp_path / "control.png"
    Image.new("RGB", (7000, 7000), (10, 20, 30)).save(control)  # 49 MP: 196 MB decoded, 150 kB on disk
    bombs = [str(p) for p in sorted(corpus.glob("bomb-*"))]
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(control), *bombs], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    bombs_mib, control_mib = map(float, proc.stdout.split())
    # measured: 2 MiB for the four bombs together (decoded, the JPEG alone would take 14 GB); the
    # control 374 MiB
    assert bombs_mib < 10
    assert control_mib > 50  # the measurement sees a decode when there is one


@pytest.fixture
def one_thread():
    """Many small tensor operations: one thread avoids OpenMP overhead on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_12_megapixel_photo(stylizer, one_thread):
    photo = encode(smooth_image(400, 300).resize((4000, 3000), Image.Resampling.BILINEAR), "JPEG", quality=90)
    assert stylizer(photo).size == (1024, 768)  # max_size=1024 by default: downscaled first

    # max_size=None: the whole 12 MP in bands of about 256x256 px worth of rows, through a tiny network.
    # No full-resolution layer sees more than a band and its halo, and the output is the network's
    # (contiguous fp32: the random network amplifies channels-last and bf16 rounding to tens of levels).
    net = TransformerNet(channels=4, num_residual=1).eval()
    banded = Stylizer(net, device="cpu", precision="fp32", channels_last=False, tile_pixels=256 * 256)
    seen = []
    hook = net.encoder[0][1].register_forward_hook(lambda m, args, out: seen.append(tuple(out.shape[-2:])))
    try:
        out = banded(photo, max_size=None)
    finally:
        hook.remove()
    assert out.size == (4000, 3000)
    assert len(seen) > 100 and max(h * w for h, w in seen) <= (256 * 256 // 4000 // 4 * 4 + 2 * HALO) * 4000
    whole = Stylizer(net, device="cpu", precision="fp32", channels_last=False, tile_pixels=10**9)(photo, max_size=None)
    assert np.abs(np.asarray(out, dtype=int) - np.asarray(whole, dtype=int)).max() <= 1


# --- untrusted style files ----------------------------------------------------------------------

@pytest.fixture
def style_copy(tmp_path, tiny_style) -> Path:
    return Path(shutil.copytree(tiny_style, tmp_path / "style"))


def safetensors_bytes(header: dict, data: bytes, declared_length: int | None = None) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h) if declared_length is None else declared_length) + h + data


F32x2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
LYING = {
    "header length beyond the file": safetensors_bytes({"a": F32x2}, b"\0" * 8, declared_length=10**6),
    "header length of 2**63": safetensors_bytes({}, b"", declared_length=2**63),
    "offsets past the end": safetensors_bytes({"a": {"dtype": "F32", "shape": [1000, 1000],
                                                     "data_offsets": [0, 4_000_000]}}, b"\0" * 8),
    "shape larger than its bytes": safetensors_bytes({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}},
                                                     b"\0" * 8),
    "shape overflowing": safetensors_bytes({"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}},
                                           b"\0" * 8),
    "unknown dtype": safetensors_bytes({"a": {"dtype": "PICKLE", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8),
    "truncated data": safetensors_bytes({"a": F32x2}, b"\0" * 8)[:-3],
    "eight bytes short": b"\x01\x02",
}


@pytest.mark.parametrize("case", sorted(LYING))
def test_lying_safetensors_are_refused(style_copy, case):
    (style_copy / "model.safetensors").write_bytes(LYING[case])
    with pytest.raises(UnsafeWeightsError, match="not a valid safetensors file"):
        Stylizer.from_pretrained(style_copy)


def test_old_protocol_pickle_named_safetensors_is_never_unpickled(style_copy, tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, (f"open({str(tmp_path / 'pwned')!r}, 'w').write('x')",))

    data = pickle.dumps({"w": Boom()}, protocol=0)  # does not start with the usual \x80 pickle opcode
    assert not data.startswith(b"\x80")
    (style_copy / "model.safetensors").write_bytes(data)
    with pytest.raises(UnsafeWeightsError):
        Stylizer.from_pretrained(style_copy)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("config,problem", [
    ("{not json", "not valid JSON"),
    ("\udcff", "not valid JSON"),
    ("[8, 2]", "JSON object"),
    ("null", "JSON object"),
    ('{"channels": 8.5, "num_residual": 2}', "channels=8.5"),
    ('{"channels": "8", "num_residual": 2}', "channels='8'"),
    ('{"channels": true, "num_residual": 2}', "channels=True"),
    ('{"channels": 0, "num_residual": 2}', "channels=0"),
    ('{"channels": 8, "num_residual": 1000000}', "num_residual=1000000"),
    ('{"channels": 8, "num_residual": -1}', "num_residual=-1"),
    ('{"channels": 8, "num_residual": 2, "style": "starry"}', "style must be a JSON object"),
    ('{"channels": 8, "num_residual": 2, "training": [1, 2]}', "training must be a JSON object"),
])
def test_bad_config_refused_before_allocation(style_copy, monkeypatch, config, problem):
    (style_copy / "config.json").write_bytes(config.encode("utf-8", "surrogateescape"))
    monkeypatch.setattr(torch.nn.Conv2d, "__init__", lambda *a, **k: pytest.fail("a layer was allocated"))
    with pytest.raises(InvalidStyleError, match=problem) as e:
        TransformerNet.from_pretrained(style_copy)
    assert "\n" not in str(e.value)


def test_stylizer_refuses_a_style_with_wrong_tensors(style_copy, tmp_path):
    other = make_style(tmp_path / "wider", channels=16)
    shutil.copy(other / "model.safetensors", style_copy / "model.safetensors")
    with pytest.raises(InvalidStyleError, match="shape"):
        Stylizer.from_pretrained(style_copy)
