"""Where the app's and CLI's styles come from, resolved into one list.

Sources are given as a comma-separated setting (``FASTNST_STYLE_SOURCES`` or a ``--styles``
option); each entry is one of:

* ``embedded``: the styles shipped inside fastnst (the default);
* a local folder that is a style, or holds style folders;
* ``hub:owner/name``, or ``owner/name``: one Hub repo;
* ``author:NAME``: every fastnst style of a Hub user or organisation;
* ``cache``: every style already in the local Hugging Face cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import CONFIG_NAME, WEIGHTS_NAME, read_config
from .styles import embedded_styles

DEFAULT_SOURCES = "embedded"


@dataclass
class StyleInfo:
    """One style the user can pick."""

    name: str                      # short name shown in lists
    ref: str                       # what Stylizer.from_pretrained takes: a folder path or a repo id
    source: str                    # "embedded" | "local" | "hub" | "cache"
    title: str = ""
    artist: str = ""
    thumbnail: str | None = None   # local path of style.jpg, if available
    size_bytes: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        who = f" ({self.artist})" if self.artist else ""
        return f"{self.title or self.name}{who}"


def style_from_folder(folder: str | os.PathLike, source: str = "local") -> StyleInfo:
    """StyleInfo of a style folder on disk (embedded, local or a Hub cache snapshot)."""
    folder = Path(folder)
    cfg = read_config(folder)
    style = cfg.get("style") or {}
    thumb = folder / "style.jpg"
    weights = folder / WEIGHTS_NAME
    return StyleInfo(
        name=str(style.get("name") or folder.name),
        ref=str(folder),
        source=source,
        title=str(style.get("title", "")),
        artist=str(style.get("artist", "")),
        thumbnail=str(thumb) if thumb.is_file() else None,
        size_bytes=weights.stat().st_size if weights.is_file() else None,
        meta=style,
    )


def _local_styles(path: Path) -> list[StyleInfo]:
    if (path / CONFIG_NAME).is_file():
        return [style_from_folder(path)]
    if path.is_dir():
        return [style_from_folder(p) for p in sorted(path.iterdir()) if (p / CONFIG_NAME).is_file()]
    return []


def parse_sources(spec: str | None = None) -> list[str]:
    spec = spec if spec is not None else os.environ.get("FASTNST_STYLE_SOURCES", DEFAULT_SOURCES)
    return [s.strip() for s in spec.split(",") if s.strip()]


def available_styles(sources: str | list[str] | None = None, *, hub: bool = True) -> tuple[list[StyleInfo], list[str]]:
    """Resolve the sources into styles, and a list of warnings (e.g. "the Hub was not reachable").

    Hub sources need :mod:`fastnst.hub`; with ``hub=False`` they are skipped.
    """
    entries = parse_sources(sources) if not isinstance(sources, list) else sources
    styles: list[StyleInfo] = []
    warnings: list[str] = []
    for entry in entries:
        if entry == "embedded":
            styles += [style_from_folder(p, "embedded") for p in embedded_styles().values()]
        elif entry == "cache":  # the local Hugging Face cache: no network needed
            from .hub import cached_styles

            styles += cached_styles()
        elif Path(entry).expanduser().exists():
            styles += _local_styles(Path(entry).expanduser())
        elif hub:
            try:
                from . import hub as hub_module
            except ImportError:
                warnings.append(f"{entry}: Hub support is not available")
                continue
            found, warn = hub_module.styles_from_source(entry)
            styles += found
            warnings += warn
        else:
            warnings.append(f"{entry}: skipped (not a local folder)")
    seen: set[str] = set()
    unique = []
    for s in styles:
        if s.ref not in seen:
            seen.add(s.ref)
            unique.append(s)
    return unique, warnings
