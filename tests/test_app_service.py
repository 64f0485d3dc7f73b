"""The demo's engine (demo/service.py) without a server: styles, model cache, batching, stylizing,
contact sheets, hostile inputs, temp-folder bounds, live-mode frame rate."""

from __future__ import annotations

import base64
import io
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_style, smooth_image
from demo.service import (DemoError, DeviceBatcher, FpsMeter, ModelCache, Settings, StyleService, example_images,
                          image_input, labelled_grid, prune_folder)
from fastnst.errors import ImageError, StyleNotFoundError


@pytest.fixture(scope="module")
def styles_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo_styles")
    make_style(root / "alpha", seed=1, name="alpha", title="Alpha Waves", artist="A. Painter")
    smooth_image(96, 64, seed=3).save(root / "alpha" / "style.jpg")
    make_style(root / "beta", seed=2, name="beta", title="Beta")  # no style.jpg: placeholder thumbnail
    return root


@pytest.fixture
def service(styles_dir, tmp_path) -> StyleService:
    return StyleService(Settings(sources=str(styles_dir), device="cpu", max_size=256, default_size=128,
                                 tmp_dir=tmp_path / "tmp", cache_models=1))


def rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


# --- building blocks ------------------------------------------------------------------------


def test_model_cache_is_lru_and_loads_each_key_once():
    loads: list[str] = []

    def loader(key):
        time.sleep(0.05)
        loads.append(key)
        return object()

    cache = ModelCache(2, loader)
    threads = [threading.Thread(target=cache.get, args=("a",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == ["a"]                       # concurrent first uses load once
    a = cache.get("a")
    cache.get("b")
    assert cache.get("a") is a                  # a is now most recent
    cache.get("c")                              # evicts b, the least recently used
    assert cache.keys() == ["a", "c"]
    cache.get("b")
    assert loads == ["a", "b", "c", "b"]


def test_model_cache_failed_load_is_not_cached():
    calls = []

    def loader(key):
        calls.append(key)
        raise StyleNotFoundError("nope")

    cache = ModelCache(2, loader)
    for _ in range(2):
        with pytest.raises(StyleNotFoundError):
            cache.get("x")
    assert calls == ["x", "x"] and cache.keys() == []


def test_batcher_merges_concurrent_requests_and_keeps_them_apart():
    batcher = DeviceBatcher(max_batch=8)
    gate = threading.Event()

    started = threading.Event()

    def slow_double(x):
        started.set()
        gate.wait(5)
        return x * 2

    results = {}

    def submit(i):
        results[i] = batcher.run("k", torch.full((1, 3, 4, 4), float(i)), slow_double)

    first = threading.Thread(target=submit, args=(0,))
    first.start()
    assert started.wait(5)                      # the first request holds the device...
    others = [threading.Thread(target=submit, args=(i,)) for i in range(1, 6)]
    for t in others:
        t.start()
    deadline = time.monotonic() + 10            # ...while five more pile up (waited for, not slept on)
    while batcher.waiting("k") < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert batcher.waiting("k") == 5
    gate.set()
    for t in [first, *others]:
        t.join(5)
    assert all(torch.equal(results[i], torch.full((1, 3, 4, 4), 2.0 * i)) for i in range(6))
    assert sorted(batcher.batch_sizes) == [1, 5]


def test_batcher_error_reaches_every_waiter_and_the_next_call_works():
    batcher = DeviceBatcher()
    with pytest.raises(RuntimeError, match="boom"):
        batcher.run("k", torch.zeros(1, 3, 2, 2), lambda x: (_ for _ in ()).throw(RuntimeError("boom")))
    assert torch.equal(batcher.run("k", torch.ones(1, 3, 2, 2), lambda x: x + 1), torch.full((1, 3, 2, 2), 2.0))


def test_prune_folder_bounds_age_and_size(tmp_path):
    now = time.time()
    for i in range(5):
        p = tmp_path / "gradio" / f"h{i}" / f"f{i}.bin"
        p.parent.mkdir(parents=True)
        p.write_bytes(b"x" * 1000)
        age = 10_000 if i == 0 else 100 - i     # f0 is stale; then f1 oldest ... f4 newest
        os.utime(p, (now - age, now - age))
    deleted = prune_folder(tmp_path, max_bytes=2500, max_age_s=3600, now=now,
                           keep={str(tmp_path / "gradio" / "h1" / "f1.bin")})   # e.g. an example's copy
    left = sorted(p.name for p in tmp_path.rglob("*.bin"))
    assert deleted == 2 and left == ["f1.bin", "f3.bin", "f4.bin"]


def test_fps_meter_and_adaptive_size():
    m = FpsMeter(size=256, target_fps=5)
    for i in range(11):
        m.tick(0.5, now=i * 0.5)                # 2 fps, each frame 0.5 s of compute: too slow
    assert m.fps == pytest.approx(2.0)
    sizes = [m.adapt() for _ in range(10)]
    assert sizes[0] < 256 and sizes[-1] == 96   # shrinks step by step to the floor
    fast = FpsMeter(size=128, target_fps=5)
    fast.tick(0.01)
    assert 128 < fast.adapt(hi=512) <= 160      # grows at most 25 % per frame


def test_live_meter_starts_small_on_a_cpu_and_is_fresh_per_stream(service):
    first, second = service.live_meter(), service.live_meter()
    assert first.size == second.size == 256 and first is not second and first.blender is not second.blender
    assert first.frames == 0 and first.fps == 0.0


def test_image_input_accepts_gradio_payloads_and_refuses_the_rest(tmp_path):
    assert image_input({"path": "/x/y.png", "url": None}) == "/x/y.png"
    buf = io.BytesIO()
    smooth_image(8, 8).save(buf, "JPEG")
    url = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    assert image_input({"path": None, "url": url}) == buf.getvalue()
    for bad in (None, "", {}, {"path": None, "url": None}):
        with pytest.raises(ImageError, match="no image"):
            image_input(bad)
    with pytest.raises(ImageError, match="base64"):
        image_input("data:image/png;base64,@@@")
    with pytest.raises(ImageError, match="URLs"):
        image_input("https://example.com/cat.jpg")


def test_labelled_grid_layout():
    cells = [(Image.new("RGB", (40, 30), c), name) for c, name in [("red", "a"), ("blue", "b"), ("green", "c")]]
    sheet = labelled_grid(cells, cell=40, pad=4, label_h=20)
    assert sheet.size == (4 + 2 * 44, 4 + 2 * (40 + 20 + 4))
    assert sheet.getpixel((4 + 20, 4 + 20)) == (255, 0, 0)            # first cell, centred
    assert sheet.getpixel((4 + 44 + 20, 4 + 20)) == (0, 0, 255)       # second cell, same row


# --- the service --------------------------------------------------------------------------


def test_styles_gallery_and_thumbnails(service):
    assert service.keys() == ["alpha", "beta"]
    captions = [c for _, c in service.gallery()]
    assert captions == ["Alpha Waves", "Beta"]
    for path, _ in service.gallery():
        with Image.open(path) as im:
            assert max(im.size) <= 192
    assert service.models.keys() == []          # thumbnails never load a model


def test_stylize_sizes_strength_and_colour(service):
    photo = smooth_image(200, 150, seed=5)
    before, after = service.stylize(photo, "alpha", 1.0, False, 100)
    assert before.size == after.size == (100, 75)
    assert np.abs(rgb(after) - rgb(before)).mean() > 5
    _, same = service.stylize(photo, "alpha", 0.0, False, 100)
    assert np.abs(rgb(same) - rgb(before)).max() <= 1           # strength 0 is the input
    _, kept = service.stylize(photo, "alpha", 1.0, True, 100)
    _, cb, cr = before.convert("YCbCr").split()                      # the style's luminance, the input's chroma
    expected = Image.merge("YCbCr", (after.convert("YCbCr").split()[0], cb, cr)).convert("RGB")
    assert np.abs(rgb(kept) - rgb(expected)).max() <= 1
    _, capped = service.stylize(smooth_image(600, 300), "alpha", 1.0, False, 10_000)
    assert capped.size == (256, 128)                                 # server-side maximum


def test_models_load_lazily_into_a_small_cache(service):
    photo = smooth_image(32, 32)
    service.stylize(photo, "alpha", 1.0, False, 32)
    service.stylize(photo, "beta", 1.0, False, 32)
    assert service.models.keys() == ["beta"] and service.models.loads == 2   # capacity 1


def test_long_labels_wrap_onto_a_second_line_before_they_are_shortened():
    from demo.service import _wrap

    fits = lambda t: len(t) <= 20  # noqa: E731
    assert _wrap("The Starry Night", fits) == ["The Starry Night"]
    assert _wrap("The Great Wave off Kanagawa (Katsushika Hokusai)", fits) == ["The Great Wave off", "Kanagawa (Katsushik…"]
    assert _wrap("Supercalifragilisticexpialidocious", fits) == ["Supercalifragilisti…"]


def test_contact_sheet_has_the_original_and_every_style(service):
    photo = smooth_image(80, 60, seed=7)
    sheet = service.contact_sheet(photo, cell=80)
    # 3 cells (original, alpha, beta) in a 2x2 grid of 80x60 cells, 8 px padding, 24 px labels plus a
    # second line of 18 px: "Alpha Waves (A. Painter)" is wider than 80 px
    assert sheet.size == (8 + 2 * 88, 8 + 2 * (60 + 24 + 18 + 8))
    first = sheet.crop((8, 8, 8 + 80, 8 + 60))
    assert np.abs(rgb(first) - rgb(photo)).max() <= 1


@pytest.mark.parametrize("data, match", [
    (b"", "empty"),
    (b"<html><body>not a png</body></html>", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image|corrupt"),
])
def test_hostile_uploads_name_the_upload_not_the_server_path(service, tmp_path, data, match):
    f = tmp_path / "upload-dir" / "evil.png"
    f.parent.mkdir()
    f.write_bytes(data)
    with pytest.raises(ImageError, match=match) as e:
        service.stylize({"path": str(f), "orig_name": "holiday.png"}, "alpha")
    assert "holiday.png" in str(e.value) and str(f.parent) not in str(e.value)


def test_truncated_and_bomb_images_are_refused(service, tmp_path):
    buf = io.BytesIO()
    smooth_image(64, 64).save(buf, "PNG")
    with pytest.raises(ImageError, match="corrupt|truncated"):
        service.stylize(buf.getvalue()[: len(buf.getvalue()) // 2], "alpha")
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")          # 400 megapixels, a few kB on disk
    with pytest.raises(ImageError, match="megapixels|too large"):
        service.stylize(bomb.getvalue(), "alpha")


def test_bad_requests(service):
    photo = smooth_image(16, 16)
    with pytest.raises(StyleNotFoundError, match="not available"):
        service.stylize(photo, "gamma")
    with pytest.raises(StyleNotFoundError, match="pick one"):
        service.stylize(photo, "")
    for bad in (-0.1, 1.5, "strong"):
        with pytest.raises(DemoError, match="strength"):
            service.stylize(photo, "alpha", bad)
    with pytest.raises(DemoError, match="size"):
        service.stylize(photo, "alpha", 1.0, False, "big")


def test_live_frames_adapt_and_report_fps(service):
    meter = FpsMeter(size=192, target_fps=1000)                 # an unreachable target: size must shrink
    frame = np.asarray(smooth_image(320, 240))
    sizes = []
    for _ in range(4):
        out = service.stylize_frame(frame, "alpha", 1.0, False, meter)
        sizes.append(max(out.size))
    assert sizes[0] == 192 and sizes[-1] < sizes[1] < 192 and meter.frames == 4 and meter.fps > 0
    fixed = service.stylize_frame(frame, "alpha", 1.0, False, meter, size="128")
    assert max(fixed.size) == 128


def test_no_styles_gives_a_clear_message(tmp_path):
    empty = tmp_path / "none"
    empty.mkdir()
    service = StyleService(Settings(sources=str(empty), device="cpu", tmp_dir=tmp_path / "tmp"))
    assert service.entries == [] and service.gallery() == []
    with pytest.raises(StyleNotFoundError, match="No styles are available"):
        service.stylize(smooth_image(16, 16), "anything")
    with pytest.raises(StyleNotFoundError, match="No styles are available"):
        service.contact_sheet(smooth_image(16, 16))


def test_a_broken_source_is_a_warning_not_a_crash(styles_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    service = StyleService(Settings(sources=f"{broken},{styles_dir},nonsense", device="cpu", tmp_dir=tmp_path / "t"))
    assert service.keys() == ["alpha", "beta"]
    assert any("broken" in w and "JSON" in w for w in service.warnings) and len(service.warnings) == 2


def test_add_hub_style(styles_dir, tmp_path):
    pulled = []
    extra = make_style(tmp_path / "snapshot", seed=9, name="gamma", title="Gamma")

    def fake_pull(repo_id, revision=None):
        pulled.append(repo_id)
        return extra

    service = StyleService(Settings(sources=str(styles_dir), device="cpu", tmp_dir=tmp_path / "tmp",
                                    max_added_styles=1), pull=fake_pull)
    entry = service.add_hub_style("  someone/gamma ")
    assert entry.key == "someone/gamma" and entry.info.source == "hub"
    assert service.keys() == ["alpha", "beta", "someone/gamma"]         # appended: gallery indices stay valid
    assert service.add_hub_style("hub:someone/gamma") is entry and pulled == ["someone/gamma"]
    _, out = service.stylize(smooth_image(32, 32), "someone/gamma", 1.0, False, 32)
    assert out.size == (32, 32)
    for bad in ("not a repo", "../etc", ""):
        with pytest.raises(DemoError, match="repo id"):
            service.add_hub_style(bad)
    with pytest.raises(DemoError, match="limit"):
        service.add_hub_style("someone/delta")
    service.settings.allow_pull = False
    with pytest.raises(DemoError, match="disabled"):
        service.add_hub_style("someone/epsilon")


def test_settings_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTNST_DEMO_MAX_SIZE", "300")
    monkeypatch.setenv("FASTNST_DEMO_DEFAULT_SIZE", "999")
    monkeypatch.setenv("FASTNST_DEMO_TMP", str(tmp_path / "t"))
    monkeypatch.setenv("FASTNST_DEMO_ALLOW_PULL", "0")
    s = Settings.from_env(concurrency=3)
    assert (s.max_size, s.default_size, s.concurrency, s.allow_pull) == (300, 300, 3, False)
    assert s.tmp_dir == (tmp_path / "t").resolve()
    monkeypatch.setenv("FASTNST_DEMO_MAX_SIZE", "huge")
    with pytest.raises(DemoError, match="FASTNST_DEMO_MAX_SIZE"):
        Settings.from_env()


def test_example_images_are_small_public_domain_jpegs():
    examples = example_images()
    assert {p.name for p in examples} == {"astronaut.jpg", "coffee.jpg", "chelsea.jpg"}
    sources = (examples[0].parent / "SOURCES.md").read_text()
    for p in examples:
        assert p.name in sources
        with Image.open(p) as im:
            assert im.format == "JPEG" and max(im.size) <= 640


def test_ui_builds_with_and_without_styles(service, tmp_path):
    pytest.importorskip("gradio")
    from demo.ui import build

    demo = build(service)
    names = {fn.api_name for fn in demo.fns.values()}
    assert {"stylize", "contact_sheet", "add_style"} <= names
    empty = tmp_path / "none"
    empty.mkdir()
    build(StyleService(Settings(sources=str(empty), device="cpu", tmp_dir=tmp_path / "tmp2")))


# --- a public server: bounded Hub pulls ------------------------------------------------------------

def _puller(tmp_path, calls: list[str], delay: float = 0.0):
    """A fake pull that puts a small style into the Hugging Face cache, as a real pull does."""
    from huggingface_hub import constants

    from app_helpers import cache_style

    def pull(repo_id, revision=None):
        calls.append(repo_id)
        time.sleep(delay)
        folder = make_style(tmp_path / "src" / f"{repo_id.replace('/', '_')}-{len(calls)}", seed=len(calls),
                            name=repo_id.split("/")[1])
        return cache_style(Path(constants.HF_HUB_CACHE).parent, repo_id, folder, commit=f"{len(calls):040d}")

    return pull


def test_one_pull_per_repo_however_many_ask_at_once(styles_dir, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    calls: list[str] = []
    service = StyleService(Settings(sources=str(styles_dir), device="cpu", tmp_dir=tmp_path / "tmp"),
                           pull=_puller(tmp_path, calls, delay=0.3))
    with ThreadPoolExecutor(8) as pool:
        entries = list(pool.map(lambda i: service.add_hub_style("someone/gamma", session=f"s{i}"), range(8)))
    assert calls == ["someone/gamma"] and all(e is entries[0] for e in entries) and service.added == 1


def test_pulls_are_limited_per_minute_and_per_visitor(styles_dir, tmp_path, monkeypatch):
    import demo.service as svc

    calls: list[str] = []
    service = StyleService(Settings(sources=str(styles_dir), device="cpu", tmp_dir=tmp_path / "tmp",
                                    pulls_per_minute=3, pulls_per_session=2), pull=_puller(tmp_path, calls))
    service.add_hub_style("a/one", session="alice")
    service.add_hub_style("a/two", session="alice")
    with pytest.raises(DemoError, match="pulled 2 styles in this session"):
        service.add_hub_style("a/three", session="alice")
    service.add_hub_style("a/one", session="alice")            # listed already: no pull, no count
    service.add_hub_style("b/three", session="bob")
    with pytest.raises(DemoError, match=r"too many Hub pulls on this server right now \(3 a minute\); try again in \d+ s"):
        service.add_hub_style("c/four", session="carol")
    now = time.monotonic()
    monkeypatch.setattr(svc.time, "monotonic", lambda: now + 61)  # a minute later
    service.add_hub_style("c/four", session="carol")
    assert calls == ["a/one", "a/two", "b/three", "c/four"]


def test_pulled_styles_share_a_disk_budget_least_recently_used_first(styles_dir, tmp_path):
    from huggingface_hub import constants, scan_cache_dir

    calls: list[str] = []
    service = StyleService(Settings(sources=str(styles_dir), device="cpu", tmp_dir=tmp_path / "tmp", cache_models=1,
                                    pull_disk_mb=0), pull=_puller(tmp_path, calls))
    cached = lambda: sorted(r.repo_id for r in scan_cache_dir(constants.HF_HUB_CACHE).repos)  # noqa: E731
    photo = smooth_image(32, 32)
    service.add_hub_style("s/a")
    service.stylize(photo, "s/a", 1.0, False, 32)        # s/a is loaded: in use, never evicted
    service.add_hub_style("s/b")
    assert cached() == ["s/a", "s/b"] and service.evicted == []
    service.stylize(photo, "s/b", 1.0, False, 32)        # now s/b is the loaded one (one model kept)
    service.add_hub_style("s/c")                         # over budget: s/a (least recently used, unloaded) goes
    assert service.evicted == ["s/a"] and cached() == ["s/b", "s/c"]
    assert service.keys()[-3:] == ["s/a", "s/b", "s/c"]  # still listed: gallery indices stay valid
    # used again: pulled again, and the least recently used unloaded one goes (s/b is still loaded meanwhile)
    _, out = service.stylize(photo, "s/a", 1.0, False, 32)
    assert out.size == (32, 32) and calls == ["s/a", "s/b", "s/c", "s/a"]
    assert service.evicted == ["s/a", "s/c"] and cached() == ["s/a", "s/b"]


def test_a_clip_through_the_video_tab_keeps_its_sound_and_respects_the_limits(service, tmp_path):
    from clips import make_clip

    from fastnst.video import probe

    clip = make_clip(tmp_path / "clip.mp4", smooth_image(200, 120, seed=5), frames=10, size=(96, 64), fps=10)
    out = service.stylize_video(clip, "alpha", 1.0, False, 64)
    info = probe(out)
    assert out.parent == service.settings.tmp_dir / "outputs" and out.suffix == ".mp4"
    assert (info.width, info.height, info.frames, info.has_audio) == (64, 42, 10, True)
    service.settings.video_keyframes = 4  # FASTNST_DEMO_VIDEO_KEYFRAMES: the same clip, from key frames
    info = probe(service.stylize_video(clip, "alpha", 1.0, False, 64))
    assert (info.width, info.height, info.frames, info.has_audio) == (64, 42, 10, True)
    service.settings.max_video_s = 0
    with pytest.raises(DemoError, match="clip is 1 s long; this server stylizes clips of up to 0 s"):
        service.stylize_video(str(clip), "alpha")
    with pytest.raises(DemoError, match="no clip"):
        service.stylize_video(None, "alpha")


def test_concurrent_large_uploads_are_decoded_within_the_pixel_budget(styles_dir, tmp_path):
    """Eight 2-megapixel uploads at once on a budget of 5 megapixels: at most two decode at a time."""
    from concurrent.futures import ThreadPoolExecutor

    service = StyleService(Settings(sources=str(styles_dir), device="cpu", tmp_dir=tmp_path / "tmp", decode_mp=5))
    big = tmp_path / "big.png"
    smooth_image(1600, 1250, seed=1).save(big)
    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(lambda _: service.prepare(str(big), 64).size, range(8)))
    assert sizes == [(64, 50)] * 8
    assert 2_000_000 <= service.pixels.peak <= 4_000_000 and service.pixels.in_use == 0
    from demo.service import PixelBudget

    budget = PixelBudget(10, wait_s=0.2)
    with budget.hold(8), pytest.raises(DemoError, match="busy"):
        with budget.hold(5):
            pass
    with budget.hold(10**9):  # larger than the whole budget: admitted alone
        assert budget.in_use == 10
