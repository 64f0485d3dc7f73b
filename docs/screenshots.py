"""Screenshots of the demo as a first-time user sees it, in headless Chromium, into docs/screenshots/.

    python docs/screenshots.py

Runs the app on the embedded styles (offline, CPU) and, at 1280x900 (a laptop) and 390x844 (a
phone), saves the initial page, the page after a stylization, after a failed Hub pull and after a
bad upload; prints for each whether any component shows an error state and whether Stylize and the
result are in view without scrolling (tests/test_app_browser.py asserts the same).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from app_pages import ARGS, CHROMIUM, TIMEOUT_MS, VIEWPORTS, error_components, user_states, visible_without_scrolling  # noqa: E402
from app_process import running_app  # noqa: E402

OUT = REPO / "docs" / "screenshots"


def main() -> int:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="fastnst-shots-"))
    bad = tmp / "notes.jpg"
    bad.write_text("a text file with an image's name")
    env = {"FASTNST_STYLE_SOURCES": "embedded", "FASTNST_DEMO_TMP": str(tmp / "app"), "HF_HOME": str(tmp / "hf"),
           "FASTNST_DEVICE": "cpu", "HF_HUB_OFFLINE": "1"}
    OUT.mkdir(parents=True, exist_ok=True)
    with running_app(env, log=tmp / "app.log") as app, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for device, viewport in VIEWPORTS.items():
            page = browser.new_page(viewport=viewport)
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(app.url)
            for state in user_states(page, REPO / "demo" / "examples" / "astronaut.jpg", bad):
                path = OUT / f"{device}-{state}.png"
                page.screenshot(path=str(path))
                print(f"{path.relative_to(REPO)}: error components {error_components(page) or 'none'}; "
                      f"Stylize in view {visible_without_scrolling(page, '#stylize')}, "
                      f"result in view {visible_without_scrolling(page, '#compare')}")
            page.close()
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
