"""Files on disk: writing them so that a crash or a full disk never leaves a half-written one in place,
and their sizes, measured and written for people."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False, keep_suffix: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block succeeds.

    The parent folder is created; the temporary file is removed if the block fails. ``fsync``
    flushes it to disk before the rename (checkpoints: a power cut keeps the previous one).
    ``keep_suffix``: the temporary name ends in ``path``'s suffix, for writers that choose the
    format by the name (FFmpeg).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}" if keep_suffix else f".{path.name}.tmp")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only left when writing failed


def folder_bytes(folder: str | os.PathLike) -> int:
    """Total size of the files under ``folder`` (0 if there is none), links not followed. A file or folder
    that vanishes while it counts (another process's temporary file, as during a download) is skipped."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    total = 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                total += folder_bytes(entry.path)
            elif entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            continue
    return total


def human_size(n: int | None) -> str:
    """``n`` bytes as people read it (binary units: 1 MB = 2**20 bytes); ``?`` when unknown."""
    if n is None:
        return "?"
    if n < 2**10:
        return f"{n} B"
    if n < 2**20:
        return f"{n / 2**10:,.0f} kB"
    return f"{n / 2**20:,.1f} MB" if n < 2**30 else f"{n / 2**30:,.1f} GB"
