"""Finding styles by name: a local style folder, an embedded style, or a Hub repo id.

A style is a folder (on disk or a Hub model repo, same layout) holding ``config.json``,
``model.safetensors`` and optionally ``README.md``, ``style.jpg`` and ``example.jpg``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import StyleNotFoundError
from .model import CONFIG_NAME, WEIGHTS_NAME

#: Styles shipped inside the package (trained with train_scripts/, see their model cards).
EMBEDDED_DIR = Path(__file__).parent / "embedded"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def embedded_styles() -> dict[str, Path]:
    """Name -> folder of every style shipped with fastnst."""
    if not EMBEDDED_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(EMBEDDED_DIR.iterdir()) if (p / WEIGHTS_NAME).is_file()}


def default_style() -> str | None:
    """The first embedded style, if any."""
    return next(iter(embedded_styles()), None)


def is_repo_id(spec: str) -> bool:
    return bool(_REPO_ID.match(spec)) and not os.path.exists(spec)


def resolve_style(spec: str | os.PathLike) -> str:
    """Turn a style spec into what ``TransformerNet.from_pretrained`` takes: a folder path or a repo id.

    Order: an existing folder, then an embedded style name, then a Hub repo id (``owner/name``).
    """
    s = str(spec)
    path = Path(s).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise StyleNotFoundError(
            f"{s}: is a file; a style is a folder with {CONFIG_NAME} and {WEIGHTS_NAME} (or a Hub repo id)."
        )
    embedded = embedded_styles()
    if s in embedded:
        return str(embedded[s])
    if is_repo_id(s):
        return s
    known = ", ".join(embedded) or "none installed"
    raise StyleNotFoundError(
        f"unknown style {s!r}: not a folder, an embedded style ({known}) or a Hub repo id like 'user/style'."
    )
