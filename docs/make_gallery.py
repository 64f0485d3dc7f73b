#!/usr/bin/env python
"""Render docs/gallery.jpg: every embedded style on the publishable example photos.

    python docs/make_gallery.py
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from demo.service import labelled_grid  # noqa: E402
from fastnst import Stylizer  # noqa: E402
from fastnst.styles import embedded_styles, style_from_folder  # noqa: E402

PHOTOS = [ROOT / "fastnst" / "assets" / f for f in ("astronaut.jpg", "chelsea.jpg", "rocket.jpg")]
CELL = 256


def main() -> Path:
    styles = embedded_styles()
    cells: list[tuple[Image.Image, str]] = [(Image.new("RGB", (CELL, CELL), "white"), "")]
    for folder in styles.values():
        info = style_from_folder(folder)
        cells.append((Image.open(folder / "style.jpg"), info.label))
    for photo in PHOTOS:
        img = Image.open(photo).convert("RGB")
        img.thumbnail((CELL, CELL))
        cells.append((img, photo.stem))
        for name, folder in styles.items():
            cells.append((Stylizer.from_pretrained(folder, device="cpu")(img, max_size=None), name))
    out = ROOT / "docs" / "gallery.jpg"
    labelled_grid(cells, CELL, columns=len(styles) + 1).save(out, quality=88)
    return out


if __name__ == "__main__":
    print(main())
