"""The demo driven in headless Chromium (Debian's chromium via Python playwright; no browser download):
a first visit's states (no component left in an error state, Stylize and the result in view at
1280x900); upload, pick a style in the gallery, stylize, download; a fake-camera webcam snapshot;
the live webcam mode's frame rate; and no request leaves 127.0.0.1. (docs/screenshots.py takes the
README's screenshots of the same states.)"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from PIL import Image

from app_helpers import app_env, make_demo_styles
from app_pages import (ARGS, CHROMIUM, TIMEOUT_MS, VIEWPORTS, error_components, toast_text, user_states,
                       visible_without_scrolling)
from app_process import REPO, running_app
from fastnst.styles import embedded_styles

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")

EXAMPLE = REPO / "demo" / "examples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    tmp = tmp_path_factory.mktemp("app_browser")
    tiny = str(make_demo_styles(tmp / "styles"))
    # The real embedded styles first when present, so the screenshot shows a real stylization.
    sources = f"embedded,{tiny}" if embedded_styles() else tiny
    with running_app(app_env(tmp, sources, FASTNST_DEMO_DEFAULT_SIZE="384"), log=tmp / "app.log") as running:
        yield running


@pytest.fixture(scope="module")
def browser(app):
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, app):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"])
    ctx.set_default_timeout(TIMEOUT_MS)
    pg = ctx.new_page()
    urls: list[str] = []
    pg.on("request", lambda r: urls.append(r.url))
    pg.goto(app.url, wait_until="load")
    pg.wait_for_selector("#style-gallery button.thumbnail-item img")
    yield pg
    ctx.close()
    outside = [u for u in urls if not u.startswith((app.url, "data:", "blob:"))]
    assert not outside, f"requests left the machine: {outside[:5]}"


def pick_style(pg, index: int) -> str:
    item = pg.locator("#style-gallery button.thumbnail-item").nth(index)
    caption = item.locator(".caption-label").inner_text()
    item.click()
    label = caption.rsplit(" · ", 1)[0]
    pg.wait_for_function("l => document.querySelector('#style-choice input').value.startsWith(l)", arg=label)
    return label


def wait_for_result(pg, label: str) -> None:
    pg.wait_for_function("l => document.querySelector('#result-info')?.innerText.includes(l)", arg=label)
    pg.wait_for_function("document.querySelectorAll('#compare img').length >= 2")


def test_first_visit_leaves_no_error_state_and_keeps_stylize_and_result_in_view(browser, app, tmp_path):
    """A failed Hub pull and a bad upload are said in a toast; every component stays as it was."""
    bad = tmp_path / "notes.jpg"
    bad.write_text("a text file with an image's name")
    ctx = browser.new_context(viewport=VIEWPORTS["desktop"])
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app.url)
    seen = []
    for state in user_states(page, EXAMPLE, bad):
        seen.append(state)
        assert error_components(page) == [], f"{state}: components in an error state"
        assert visible_without_scrolling(page, "#stylize"), f"{state}: Stylize is below the fold at 1280x900"
        assert visible_without_scrolling(page, "#compare"), f"{state}: the result is below the fold at 1280x900"
        if state == "failed-pull":
            assert "someone/no-such-style" in toast_text(page)
            assert page.locator("#hub-pull").is_enabled() and page.locator("#style-gallery img").count() >= 2
        if state == "bad-upload":
            assert "notes.jpg" in toast_text(page) and "Pillow" in toast_text(page)
    assert seen == ["initial", "stylized", "failed-pull", "bad-upload"]
    ctx.close()


def test_upload_pick_stylize_download(page, tmp_path):
    page.locator("#input-image input[type=file]").set_input_files(str(EXAMPLE))
    page.wait_for_selector("#input-image img")
    n = page.locator("#style-gallery button.thumbnail-item").count()
    assert n >= 2
    label = pick_style(page, 0 if embedded_styles() else 1)
    page.locator("#stylize").click()
    wait_for_result(page, label)
    with page.expect_download() as download:
        page.locator("#download").click()
    png = tmp_path / "out.png"
    download.value.save_as(png)
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (384, 384)       # astronaut.jpg is square; default size 384
    page.locator("#contact-sheet").click()
    page.wait_for_selector("#sheet img")


def test_webcam_snapshot_is_stylized(page):
    cam = page.locator("#input-image")
    cam.locator("button[aria-label='Capture from camera']").click()
    cam.locator("[title='grant webcam access'] button").click()
    page.wait_for_function("document.querySelector('#input-image video')?.readyState >= 2")
    cam.locator("button[aria-label='capture photo']").click()
    page.wait_for_selector("#input-image img[src*='gradio_api/file']")
    label = pick_style(page, page.locator("#style-gallery button.thumbnail-item").count() - 1)
    page.locator("#stylize").click()
    wait_for_result(page, label)
    # Chromium's fake camera is 640x480: the snapshot keeps its aspect at the default size
    assert "384×288" in page.locator("#result-info").inner_text()


def test_live_webcam_streams_and_reports_fps(page):
    page.locator("#live").click()
    live = page.locator("#live-cam")
    live.locator("[title='grant webcam access'] button").click()
    page.wait_for_function("document.querySelector('#live-cam video')?.readyState >= 2")
    live.locator(".button-wrap button").first.click()            # start streaming
    page.wait_for_selector("#live-out img")
    deadline, fps = time.monotonic() + 60, 0.0
    while time.monotonic() < deadline and fps <= 0:
        m = re.search(r"([\d.]+) fps", page.locator("#live-fps").inner_text())
        fps = float(m.group(1)) if m else 0.0
        page.wait_for_timeout(500)
    assert fps > 0, page.locator("#live-fps").inner_text()
    live.locator(".button-wrap button").first.click()            # stop
