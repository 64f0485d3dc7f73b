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
from pathlib import Path

from .errors import FastNSTError
from .hub import cached_styles, describe_repo, hub_unreachable, list_hub_styles
from .styles import CONFIG_NAME, StyleInfo, embedded_styles, is_repo_id, style_from_folder

DEFAULT_SOURCES = "embedded"


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

    With ``hub=False`` Hub sources are skipped (no network).
    """
    entries = parse_sources(sources) if not isinstance(sources, list) else sources
    styles: list[StyleInfo] = []
    warnings: list[str] = []
    for entry in entries:
        if entry == "embedded":
            styles += [style_from_folder(p, "embedded") for p in embedded_styles().values()]
        elif entry == "cache":  # the local Hugging Face cache: no network needed
            styles += cached_styles()
        elif Path(entry).expanduser().exists():
            styles += _local_styles(Path(entry).expanduser())
        elif hub:
            found, warn = styles_from_source(entry)
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


def styles_from_source(entry: str) -> tuple[list[StyleInfo], list[str]]:
    """Styles of one Hub source entry (``hub:owner/name``, ``owner/name``, ``author:NAME``, ``cache``), and warnings.

    Never raises for Hub trouble: an unreachable Hub gives the cached styles and a warning.
    """
    entry = entry.strip()
    if entry == "cache":
        return cached_styles(), []
    if entry.startswith("author:"):
        author = entry[len("author:"):].strip()
        cached = [s for s in cached_styles() if s.ref.startswith(author + "/")]
        reason = hub_unreachable()
        if reason:
            return cached, [f"{entry}: Hub not reachable ({reason}): showing cached styles only."]
        try:
            return list_hub_styles(author=author, thumbnails=True), []
        except FastNSTError as e:
            return cached, [f"{entry}: {e} Showing cached styles only."]
    repo_id = entry[len("hub:"):].strip() if entry.startswith("hub:") else entry
    if not is_repo_id(repo_id):
        return [], [f"{entry}: not a style folder, 'embedded', 'cache', 'author:NAME' or a Hub repo id (owner/name)."]
    cached = cached_styles(repo_id)
    reason = hub_unreachable()
    if reason:
        note = "showing the cached copy" if cached else f"not in the cache either (`fastnst pull {repo_id}` once online)"
        return cached, [f"{repo_id}: Hub not reachable ({reason}): {note}."]
    try:
        return [describe_repo(repo_id, thumbnails=True)], []
    except FastNSTError as e:
        return cached, [str(e)]
