"""Driving the demo in headless Chromium (playwright with Debian's chromium): the states a user sees,
and what must hold in each. Used by tests/test_app_browser.py and docs/screenshots.py."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
TIMEOUT_MS = 90_000


def error_components(page: Any) -> list[str]:
    """elem_ids (or labels) of components showing Gradio's error state, which a failed event must not leave."""
    return page.evaluate("""() => [...document.querySelectorAll('.wrap .error')]
        .filter(e => { const w = e.closest('.wrap'); const cs = getComputedStyle(w);
                       return e.offsetParent !== null && cs.opacity !== '0' && cs.visibility !== 'hidden'
                              && !w.classList.contains('hide'); })
        .map(e => (e.closest('[id]') || {}).id || e.innerText.slice(0, 40))""")


def visible_without_scrolling(page: Any, selector: str) -> bool:
    """Whether the element is entirely inside the viewport at the top of the page."""
    return page.evaluate("""s => { const e = document.querySelector(s); if (!e) return false;
        const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0; }""",
                         selector)


def top(page: Any) -> None:
    """Scroll back to the top, where a user lands (a toast stays in view: it is fixed)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(100)


def toast_text(page: Any) -> str:
    page.wait_for_selector("[data-testid='toast-body']")
    return " ".join(page.locator("[data-testid='toast-body']").all_inner_texts())


def close_toasts(page: Any) -> None:
    for button in page.locator("[data-testid='toast-close']").all():
        button.click()
    page.wait_for_function("!document.querySelector(\"[data-testid='toast-body']\")")


def user_states(page: Any, photo: Path, bad_file: Path) -> Iterator[str]:
    """Walks the page through the states of a first visit, yielding each one's name once it shows:
    initial, stylized, failed-pull (an unknown repo, offline), bad-upload (a text file named .jpg)."""
    page.wait_for_selector("#style-gallery button.thumbnail-item img")
    yield "initial"
    page.locator("#input-image input[type=file]").set_input_files(str(photo))
    page.wait_for_selector("#input-image img")
    page.locator("#stylize").click()
    page.wait_for_function("document.querySelectorAll('#compare img').length >= 2")
    page.wait_for_function("!document.querySelector('#stylize').disabled")
    page.wait_for_timeout(300)  # the slider's layout
    top(page)
    yield "stylized"
    page.locator("#hub-repo textarea").fill("someone/no-such-style")
    page.locator("#hub-pull").click()
    toast_text(page)
    page.wait_for_function("!document.querySelector('#hub-pull').disabled")
    top(page)
    yield "failed-pull"
    close_toasts(page)
    page.locator("#input-image button[aria-label='Remove Image']").click()
    page.locator("#input-image input[type=file]").set_input_files(str(bad_file))
    toast_text(page)
    page.wait_for_function("!document.querySelector('#input-image img')")  # the bad file is not kept
    top(page)
    yield "bad-upload"
