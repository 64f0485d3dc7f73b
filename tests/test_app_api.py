"""The demo app served on 127.0.0.1 in a subprocess, called through its API with gradio_client:
stylize, strength 0, preserve colour, contact sheet, hostile uploads (the app keeps serving),
upload safety, and a small concurrent load (correctness only; figures: benchmarks/bench_app_load.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from app_helpers import app_env, cache_style, make_demo_styles
from conftest import make_style, smooth_image
from app_process import run_load, running_app
from fastnst.images import load_image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

MAX_SIZE = 256
MAX_FILE_BYTES = 2 * 2**20


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app_api")
    styles = make_demo_styles(tmp / "styles")
    gamma = make_style(tmp / "gamma", seed=7, name="gamma", title="Gamma Rays", artist="G. Hub")
    cache_style(tmp / "hf", "someone/gamma", gamma)          # pulled before: available offline
    env = app_env(tmp, str(styles), FASTNST_DEMO_MAX_SIZE=str(MAX_SIZE), FASTNST_MAX_FILE_BYTES=str(MAX_FILE_BYTES))
    with running_app(env, log=tmp / "app.log") as running:
        yield running


@pytest.fixture(scope="module")
def client(app, tmp_path_factory):
    return Client(app.url, verbose=False, analytics_enabled=False,
                  download_files=str(tmp_path_factory.mktemp("downloads")))


@pytest.fixture(scope="module")
def photo_png(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("inputs") / "photo.png"
    smooth_image(200, 150, seed=4).save(p)
    return p


def stylize(client, image: Path, style="alpha", strength=1.0, preserve=False, size=100):
    (before, after), png, info = client.predict(handle_file(str(image)), style, strength, preserve, size,
                                                api_name="/stylize")
    return Image.open(before), Image.open(png), info


def arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


def test_stylize_returns_a_full_resolution_png(client, photo_png):
    before, out, info = stylize(client, photo_png)
    assert out.format == "PNG" and out.size == (100, 75) and before.size == (100, 75)
    assert np.abs(arr(out) - arr(load_image(photo_png).resize((100, 75), Image.Resampling.LANCZOS))).mean() > 5
    assert "Alpha Waves" in info and "100×75" in info


def test_strength_zero_gives_the_input(client, photo_png):
    _, out, _ = stylize(client, photo_png, strength=0.0)
    expected = load_image(photo_png).resize((100, 75), Image.Resampling.LANCZOS)
    assert np.abs(arr(out) - arr(expected)).max() <= 1


def test_preserve_colour_keeps_the_input_chroma(client, photo_png):
    before, plain, _ = stylize(client, photo_png, style="beta")
    _, kept, _ = stylize(client, photo_png, style="beta", preserve=True)
    source = load_image(photo_png).resize((100, 75), Image.Resampling.LANCZOS)
    assert np.abs(arr(kept) - arr(with_colours_of(plain, source))).max() <= 2
    assert np.abs(arr(plain) - arr(kept)).mean() > 5


def with_colours_of(styled: Image.Image, source: Image.Image) -> Image.Image:
    """What colour preservation means: the stylization's luminance with the source's chroma."""
    _, cb, cr = source.convert("YCbCr").split()
    return Image.merge("YCbCr", (styled.convert("YCbCr").split()[0], cb, cr)).convert("RGB")


def test_output_size_is_capped_by_the_server(client, tmp_path):
    big = tmp_path / "big.jpg"
    smooth_image(640, 320).save(big)
    _, out, _ = stylize(client, big, size=4000)
    assert out.size == (MAX_SIZE, MAX_SIZE // 2)


def test_contact_sheet_shows_the_original_and_every_style(client, photo_png):
    sheet = Image.open(client.predict(handle_file(str(photo_png)), 1.0, False, api_name="/contact_sheet"))
    # original + 2 styles in a 2x2 grid of 200x150 cells (the input fits the 256 px cell size), 24 px labels
    assert sheet.size == (8 + 2 * 208, 8 + 2 * (150 + 24 + 8))
    first = sheet.crop((8, 8, 8 + 200, 8 + 150))
    assert np.abs(arr(first) - arr(load_image(photo_png))).max() <= 1
    second = sheet.crop((8 + 208, 8, 8 + 208 + 200, 8 + 150))
    assert np.abs(arr(second) - arr(load_image(photo_png))).mean() > 5


def _png_bytes(size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    smooth_image(*size).save(buf, "PNG")
    return buf.getvalue()


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buf, "PNG")   # 400 megapixels declared, ~50 kB on disk
    return buf.getvalue()


HOSTILE = {
    "empty.png": (lambda: b"", "empty"),
    "truncated.png": (lambda: _png_bytes()[:200], "corrupt or truncated"),
    "page.png": (lambda: b"<!doctype html><html><script>alert(1)</script></html>", "not an image"),
    "bomb.png": (_bomb, "too large|megapixels"),
    "notes.txt": (lambda: b"just text", "not an image"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_upload_gives_an_error_and_the_app_keeps_serving(client, tmp_path, photo_png, name):
    make, match = HOSTILE[name]
    bad = tmp_path / name
    bad.write_bytes(make())
    with pytest.raises(AppError, match=match) as e:
        client.predict(handle_file(str(bad)), "alpha", 1.0, False, 64, api_name="/stylize")
    assert name in str(e.value) and "/tmp" not in str(e.value) and "<script>" not in str(e.value)
    assert stylize(client, photo_png, size=64)[1].size == (64, 48)          # the next request works


def test_oversized_upload_is_refused(client, tmp_path, photo_png):
    big = tmp_path / "huge.png"
    big.write_bytes(_png_bytes() + b"\0" * (MAX_FILE_BYTES + 1024))
    with pytest.raises(Exception, match="(?i)size|large|413"):
        client.predict(handle_file(str(big)), "alpha", 1.0, False, 64, api_name="/stylize")
    assert stylize(client, photo_png, size=64)[1].size == (64, 48)


@pytest.mark.parametrize("args, match", [
    (("nope", 1.0, False, 64), "not available"),
    (("alpha", 3.0, False, 64), "strength"),
    (("<b>x</b>", 1.0, False, 64), "not available"),
    (("alpha", 1.0, False, "big"), "output size"),
])
def test_bad_parameters_give_clear_errors(client, photo_png, args, match):
    with pytest.raises(AppError, match=match) as e:
        client.predict(handle_file(str(photo_png)), *args, api_name="/stylize")
    assert "<b>" not in str(e.value)    # user text is escaped before it is shown as HTML


def test_server_files_cannot_be_passed_as_inputs(app):
    """A FileData path that was not uploaded is refused by Gradio before our code reads it."""
    payload = {"data": [{"path": str(Path(__file__).resolve()), "meta": {"_type": "gradio.FileData"}},
                        "alpha", 1.0, False, 64]}
    with httpx.Client(base_url=app.url, timeout=30, trust_env=False) as http:
        event = http.post("/gradio_api/call/stylize", json=payload).json()["event_id"]
        text = http.get(f"/gradio_api/call/stylize/{event}").text
    assert "event: error" in text and "not uploaded" in text


def test_add_a_cached_hub_style_offline_then_use_it(client, photo_png):
    gallery, style, field, status = client.predict("someone/gamma", api_name="/add_style")
    assert style["value"] == "someone/gamma" and ["Gamma Rays (G. Hub) [hub]", "someone/gamma"] in style["choices"]
    assert field == ""
    assert [g["caption"] for g in gallery][-1] == "Gamma Rays" and len(gallery) == 3
    assert "3 styles" in status
    _, out, info = stylize(client, photo_png, style="someone/gamma", size=64)
    assert out.size == (64, 48) and "Gamma Rays" in info


def test_unavailable_hub_style_offline_is_an_error_not_a_crash(client, photo_png):
    with pytest.raises(AppError) as e:
        client.predict("someone/not-cached", api_name="/add_style")
    assert "internal error" not in str(e.value)
    with pytest.raises(AppError, match="repo id"):
        client.predict("not a repo", api_name="/add_style")
    assert stylize(client, photo_png, size=64)[1].size == (64, 48)


def test_concurrent_clients_all_get_their_own_correct_answer(app, tmp_path):
    images = []
    for seed in range(3):                        # same size (so requests batch), different content
        images.append(tmp_path / f"in{seed}.png")
        smooth_image(96, 64, seed=seed).save(images[-1])
    report = run_load(app, images, "alpha", clients=6, requests=24, size=96, deadline_s=120,
                      download_dir=tmp_path / "dl")
    summary = report.summary()
    assert summary["ok"] == 24 and summary["failed"] == 0 and summary["lost"] == 0, json.dumps(summary)


def test_temporary_files_stay_in_the_bounded_folder(app):
    root = Path(app.env["FASTNST_DEMO_TMP"])
    assert (root / "gradio").is_dir() and any((root / "outputs").glob("*.png"))


def test_a_clip_through_the_api_comes_back_with_its_sound(client, tmp_path):
    from clips import make_clip

    from fastnst.video import probe

    clip = make_clip(tmp_path / "clip.mp4", smooth_image(200, 120, seed=5), frames=8, size=(96, 64), fps=8)
    out = client.predict(handle_file(str(clip)), "alpha", 1.0, False, 64, api_name="/stylize_video")
    path = out["video"] if isinstance(out, dict) else out
    info = probe(path)
    assert (info.width, info.frames, info.has_audio) == (64, 8, True)
    not_a_clip = tmp_path / "notes.mp4"
    not_a_clip.write_text("not a video")
    with pytest.raises(AppError, match="not a video file"):
        client.predict(handle_file(str(not_a_clip)), "alpha", 1.0, False, 64, api_name="/stylize_video")
