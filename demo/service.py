"""The demo's engine, independent of Gradio: styles, an LRU cache of loaded models, stylizing
single images, webcam frames and contact sheets, and a bounded folder for temporary files.

Everything here raises fastnst's typed errors (``ImageError``, ``StyleNotFoundError``...) with
messages meant for users; :mod:`demo.ui` turns them into ``gr.Error``. Tests drive this module
directly (tests/test_app_service.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import math
import os
import tempfile
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from fastnst.device import pick_device
from fastnst.errors import FastNSTError, ImageError, StyleNotFoundError
from fastnst.images import MAX_FILE_BYTES, ImageInput, fit_size, label_font, load_image, pil_to_tensor
from fastnst.registry import available_styles, parse_sources
from fastnst.styles import StyleInfo, is_repo_id, style_from_folder
from fastnst.stylizer import Stylizer, save_image
from fastnst.video import PixelBlender

EXAMPLES_DIR = Path(__file__).parent / "examples"
THUMB_SIZE = 192
LIVE_SIZES = (96, 512)          # bounds of the adaptive live resolution (longest side)
LIVE_TARGET_FPS = 6.0


class DemoError(FastNSTError, ValueError):
    """A request the demo cannot serve (no styles, bad parameter, Hub pulls disabled...)."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise DemoError(f"{name}={raw!r} is not an integer.") from None


log = logging.getLogger("fastnst.demo")


@dataclass
class Settings:
    """Server-side settings; every field has an environment variable (see README, "Demo")."""

    sources: str | None = None      # FASTNST_STYLE_SOURCES (None: the registry's default, "embedded")
    device: str | None = None       # FASTNST_DEVICE: auto | cpu | cuda | cuda:1 | mps
    max_size: int = 1024            # FASTNST_DEMO_MAX_SIZE: cap on the output's longest side
    default_size: int = 512         # FASTNST_DEMO_DEFAULT_SIZE
    cache_models: int = 3           # FASTNST_DEMO_CACHE_MODELS: loaded models kept (LRU)
    concurrency: int | None = None  # FASTNST_DEMO_CONCURRENCY: requests in flight per device (None: 2 CPU, 4 GPU)
    max_batch: int = 8              # FASTNST_DEMO_MAX_BATCH: concurrent same-size requests run as one batch
    tmp_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "fastnst-demo")  # FASTNST_DEMO_TMP
    tmp_max_mb: int = 512           # FASTNST_DEMO_TMP_MB: size bound of tmp_dir
    tmp_max_age_s: int = 3600       # FASTNST_DEMO_TMP_AGE: files older than this are deleted
    allow_pull: bool = True         # FASTNST_DEMO_ALLOW_PULL=0 hides the "add a Hub style" field
    max_added_styles: int = 16      # FASTNST_DEMO_MAX_ADDED: Hub styles that may be added at run time
    pulls_per_minute: int = 6       # FASTNST_DEMO_PULLS_PER_MIN: Hub pulls per minute, all visitors together
    pulls_per_session: int = 4      # FASTNST_DEMO_PULLS_PER_SESSION: Hub pulls per visitor (browser session)
    pull_disk_mb: int = 256         # FASTNST_DEMO_PULL_DISK_MB: disk for pulled styles; least recently used evicted
    decode_mp: int = 100            # FASTNST_DEMO_DECODE_MP: megapixels of uploads decoded at once (others wait)
    max_video_s: int = 20           # FASTNST_DEMO_MAX_VIDEO_S: longest clip the video tab accepts
    max_video_size: int = 480       # FASTNST_DEMO_MAX_VIDEO_SIZE: cap on a stylized clip's longest side (px)
    video_keyframes: int = 1        # FASTNST_DEMO_VIDEO_KEYFRAMES: the network on every N-th frame (fastnst.video)
    queue_size: int = 64            # FASTNST_DEMO_QUEUE: requests waiting in Gradio's queue before refusing more

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        env = os.environ
        s = cls(
            sources=env.get("FASTNST_STYLE_SOURCES") or None,
            device=env.get("FASTNST_DEVICE") or None,
            max_size=_env_int("FASTNST_DEMO_MAX_SIZE", cls.max_size),
            default_size=_env_int("FASTNST_DEMO_DEFAULT_SIZE", cls.default_size),
            cache_models=_env_int("FASTNST_DEMO_CACHE_MODELS", cls.cache_models),
            concurrency=_env_int("FASTNST_DEMO_CONCURRENCY", 0) or None,
            max_batch=_env_int("FASTNST_DEMO_MAX_BATCH", cls.max_batch),
            tmp_max_mb=_env_int("FASTNST_DEMO_TMP_MB", cls.tmp_max_mb),
            tmp_max_age_s=_env_int("FASTNST_DEMO_TMP_AGE", cls.tmp_max_age_s),
            allow_pull=env.get("FASTNST_DEMO_ALLOW_PULL", "1").strip().lower() not in ("0", "false", "no", "off"),
            max_added_styles=_env_int("FASTNST_DEMO_MAX_ADDED", cls.max_added_styles),
            pulls_per_minute=_env_int("FASTNST_DEMO_PULLS_PER_MIN", cls.pulls_per_minute),
            pulls_per_session=_env_int("FASTNST_DEMO_PULLS_PER_SESSION", cls.pulls_per_session),
            pull_disk_mb=_env_int("FASTNST_DEMO_PULL_DISK_MB", cls.pull_disk_mb),
            decode_mp=_env_int("FASTNST_DEMO_DECODE_MP", cls.decode_mp),
            max_video_s=_env_int("FASTNST_DEMO_MAX_VIDEO_S", cls.max_video_s),
            max_video_size=_env_int("FASTNST_DEMO_MAX_VIDEO_SIZE", cls.max_video_size),
            video_keyframes=max(1, _env_int("FASTNST_DEMO_VIDEO_KEYFRAMES", cls.video_keyframes)),
            queue_size=_env_int("FASTNST_DEMO_QUEUE", cls.queue_size),
        )
        if env.get("FASTNST_DEMO_TMP"):
            s.tmp_dir = Path(env["FASTNST_DEMO_TMP"])
        for k, v in overrides.items():
            if v is not None:
                setattr(s, k, v)
        s.tmp_dir = Path(s.tmp_dir).expanduser().resolve()
        if s.max_size < 16 or s.cache_models < 1 or s.max_batch < 1:
            raise DemoError("max size must be >= 16, cache_models and max_batch >= 1.")
        s.default_size = max(16, min(s.default_size, s.max_size))
        return s


# --- pieces -------------------------------------------------------------------------------


class ModelCache:
    """A small thread-safe LRU of loaded models; each key is loaded at most once at a time."""

    def __init__(self, capacity: int, loader: Callable[[str], Any]) -> None:
        self.capacity = max(1, int(capacity))
        self._loader = loader
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.loads = 0

    def get(self, key: str) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:  # another thread may have loaded it while we waited
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
            try:
                value = self._loader(key)
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            with self._lock:
                self.loads += 1
                self._items[key] = value
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
            return value

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._items)


@dataclass
class _Job:
    x: torch.Tensor
    fn: Callable[[torch.Tensor], torch.Tensor]
    done: threading.Event = field(default_factory=threading.Event)
    result: torch.Tensor | None = None
    error: BaseException | None = None


class DeviceBatcher:
    """Runs forward passes one at a time on a device; requests that pile up meanwhile with the same
    key (same model, same size) go through the network together as one batch.

    Nothing waits to fill a batch: a lone request runs at once. Images are decoded and checked by
    their own request before they get here, so one bad upload never fails someone else's batch.
    """

    def __init__(self, max_batch: int = 8) -> None:
        self.max_batch = max(1, int(max_batch))
        self._device = threading.Lock()
        self._mutex = threading.Lock()
        self._pending: dict[Any, list[_Job]] = {}
        self.batch_sizes: deque[int] = deque(maxlen=1000)

    def waiting(self, key: Any) -> int:
        """How many requests with ``key`` wait for the device now."""
        with self._mutex:
            return len(self._pending.get(key, []))

    def run(self, key: Any, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        job = _Job(x, fn)
        with self._mutex:
            self._pending.setdefault(key, []).append(job)
        while not job.done.is_set():
            with self._device:
                if job.done.is_set():
                    break
                with self._mutex:
                    queue = self._pending.get(key, [])
                    chunk, queue[:] = queue[:self.max_batch], queue[self.max_batch:]
                    if not queue:
                        self._pending.pop(key, None)
                if chunk:
                    self._execute(chunk)
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _execute(self, chunk: list[_Job]) -> None:
        self.batch_sizes.append(len(chunk))
        try:
            y = chunk[0].fn(torch.cat([j.x for j in chunk]))
            for j, out in zip(chunk, y):
                j.result = out.unsqueeze(0)
        except BaseException as e:  # every waiter gets the error, nobody hangs
            for j in chunk:
                j.error = e
        finally:
            for j in chunk:
                j.done.set()


def prune_folder(root: Path, max_bytes: int, max_age_s: float, now: float | None = None,
                 keep: Collection[str] = ()) -> int:
    """Delete files older than ``max_age_s``, then the oldest until ``root`` holds at most ``max_bytes``;
    never the paths in ``keep``. Returns the number of files deleted. Empty folders are removed too."""
    now = time.time() if now is None else now
    keep = {os.path.abspath(k) for k in keep}
    files = []
    for p in root.rglob("*") if root.is_dir() else []:
        try:
            if p.is_file() and not p.is_symlink() and os.path.abspath(p) not in keep:
                st = p.stat()
                files.append((st.st_mtime, st.st_size, p))
        except OSError:
            continue
    files.sort()
    total = sum(size for _, size, _ in files)
    deleted = 0
    for mtime, size, p in files:
        if now - mtime <= max_age_s and total <= max_bytes:
            break
        try:
            p.unlink()
            deleted += 1
            total -= size
        except OSError:
            pass
    # Empty sub-sub-folders (Gradio's per-file cache folders) go too, once they are a minute old.
    for d in sorted((d for d in root.glob("*/**/") if d.is_dir()), key=lambda d: len(d.parts), reverse=True):
        try:
            if d != root and d.parent != root and now - d.stat().st_mtime > 60:
                d.rmdir()  # only succeeds when empty
        except OSError:
            pass
    return deleted


class PixelBudget:
    """Decoded pixels in flight across requests: an image is decoded only when it fits the budget next to
    those being decoded; otherwise it waits, and after ``wait_s`` it is refused as a busy server. So
    concurrent large uploads cannot hold more memory than the budget, however many arrive at once."""

    def __init__(self, capacity: int, wait_s: float = 30.0) -> None:
        self.capacity, self.wait_s = int(capacity), float(wait_s)
        self.in_use = self.peak = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        pixels = min(int(pixels), self.capacity)  # one image larger than the budget runs alone
        with self._cond:
            if not self._cond.wait_for(lambda: self.in_use + pixels <= self.capacity, timeout=self.wait_s):
                raise DemoError("the server is busy decoding other large images; try again in a moment.")
            self.in_use += pixels
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= pixels
                self._cond.notify_all()


def header_pixels(src: ImageInput) -> int:
    """Width x height from the image's header, without decoding it (0 if it cannot be read: the decoder
    then names the problem)."""
    try:
        with Image.open(io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src) as im:
            return im.width * im.height
    except Exception:  # noqa: BLE001 - load_image gives the real error
        return 0


class FpsMeter:
    """Frames per second over a sliding window, and an adaptive working size for the live mode:
    the longest side shrinks or grows so that frames take about 1/target seconds."""

    def __init__(self, size: int = 256, target_fps: float = LIVE_TARGET_FPS, window_s: float = 3.0) -> None:
        self.size, self.target_fps, self.window_s = int(size), float(target_fps), float(window_s)
        self.stamps: deque[float] = deque(maxlen=256)
        self.frame_s: float | None = None   # exponential moving average of compute time per frame
        self.frames = 0
        self.blender = PixelBlender(motion=True)  # the video path's flicker stabiliser, per live stream

    def tick(self, compute_s: float, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self.frames += 1
        self.stamps.append(now)
        while self.stamps and now - self.stamps[0] > self.window_s:
            self.stamps.popleft()
        self.frame_s = compute_s if self.frame_s is None else 0.7 * self.frame_s + 0.3 * compute_s
        return self.fps

    @property
    def fps(self) -> float:
        if len(self.stamps) < 2:
            return 0.0
        span = self.stamps[-1] - self.stamps[0]
        return (len(self.stamps) - 1) / span if span > 0 else 0.0

    def adapt(self, lo: int = LIVE_SIZES[0], hi: int = LIVE_SIZES[1]) -> int:
        """New working size from the compute time (cost grows with pixels, so with size squared)."""
        if self.frame_s:
            scale = math.sqrt((1.0 / self.target_fps) / max(self.frame_s, 1e-4))
            scale = min(1.25, max(0.8, scale))
            self.size = int(min(hi, max(lo, round(self.size * scale / 16) * 16)))
        return self.size


def image_input(value: Any) -> ImageInput:
    """What Gradio hands over (a FileData dict, a data: URL, a path, PIL or NumPy) as an input for
    :func:`fastnst.images.load_image`. Raises ``ImageError`` for an empty or undecodable value."""
    if value is None or (isinstance(value, (str, dict)) and not value):
        raise ImageError("no image: upload one, take a webcam snapshot or paste one from the clipboard.")
    if isinstance(value, dict):
        if value.get("path"):
            return str(value["path"])
        value = value.get("url") or ""
        if not value:
            raise ImageError("no image: upload one, take a webcam snapshot or paste one from the clipboard.")
    if isinstance(value, str) and value.startswith("data:"):
        head, _, data = value.partition(",")
        if len(data) > MAX_FILE_BYTES * 4 // 3 + 4:
            raise ImageError(f"image data is over the {MAX_FILE_BYTES / 2**20:.0f} MiB limit.")
        try:
            return base64.b64decode(data, validate=True) if head.endswith(";base64") else data.encode()
        except (binascii.Error, ValueError):
            raise ImageError("image data is not valid base64.") from None
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        raise ImageError("image URLs are not fetched; upload the file instead.")
    return value


def labelled_grid(cells: Sequence[tuple[Image.Image, str]], cell: int | tuple[int, int], columns: int | None = None,
                  pad: int = 8, label_h: int = 24) -> Image.Image:
    """Images (each fitted into a ``cell`` box, centred) with a caption under each, on white; a caption
    wider than its cell wraps onto a second line (``label_h`` grows to hold two) before it is shortened."""
    cw, ch = (cell, cell) if isinstance(cell, int) else cell
    n = len(cells)
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    font = label_font(max(10, label_h - 10))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wrapped = [_wrap(label, lambda t: measure.textlength(t, font=font) <= cw) for _, label in cells]
    line_h = label_h - 6
    label_h += line_h * (max((len(w) for w in wrapped), default=1) - 1)
    sheet = Image.new("RGB", (pad + cols * (cw + pad), pad + rows * (ch + label_h + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (img, label) in enumerate(cells):
        x0 = pad + (i % cols) * (cw + pad)
        y0 = pad + (i // cols) * (ch + label_h + pad)
        img = img.convert("RGB")
        if img.width > cw or img.height > ch:
            scale = min(cw / img.width, ch / img.height)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                             Image.Resampling.LANCZOS)
        sheet.paste(img, (x0 + (cw - img.width) // 2, y0 + (ch - img.height) // 2))
        lines = wrapped[i]
        top = y0 + ch + (label_h - line_h * len(lines)) / 2
        for k, text in enumerate(lines):
            draw.text((x0 + cw / 2, top + line_h * (k + 0.5)), text, fill="black", font=font, anchor="mm")
    return sheet


def _wrap(text: str, fits: Callable[[str], bool], max_lines: int = 2) -> list[str]:
    """``text`` in at most ``max_lines`` lines that each ``fits``, broken at spaces; the last one shortened with …"""
    lines: list[str] = []
    words = text.split()
    while words and len(lines) < max_lines:
        line = words.pop(0)
        while words and fits(f"{line} {words[0]}"):
            line += " " + words.pop(0)
        lines.append(line)
    if words:
        lines[-1] += " " + " ".join(words)
    last = lines[-1] if lines else ""
    while last and not fits(last):
        last = last[:-2] + "…" if len(last) > 2 else ""
    return lines[:-1] + [last] if lines else [""]


def placeholder_thumbnail(name: str, size: int = THUMB_SIZE) -> Image.Image:
    """A coloured square with the style's initial, for styles without a style.jpg."""
    hue = int(hashlib.sha1(name.encode()).hexdigest()[:2], 16)
    img = Image.new("HSV", (size, size), (hue, 90, 200)).convert("RGB")
    draw = ImageDraw.Draw(img)
    draw.text((size / 2, size / 2), (name[:1] or "?").upper(), fill="white", font=label_font(size // 2), anchor="mm")
    return img


# --- the service --------------------------------------------------------------------------


@dataclass
class StyleEntry:
    key: str          # what the API and the dropdown use: a name, or a Hub repo id
    info: StyleInfo

    @property
    def caption(self) -> str:
        """The gallery's short caption under the thumbnail: the painting's title (the dropdown has the rest)."""
        return self.info.title or self.info.name


class StyleService:
    """Styles from the registry's sources, loaded lazily into an LRU of models, applied on one device."""

    def __init__(self, settings: Settings | None = None, *,
                 pull: Callable[..., Path] | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.device = pick_device(self.settings.device)
        self.concurrency = self.settings.concurrency or (2 if self.device.type == "cpu" else 4)
        self._pull = pull
        self._lock = threading.Lock()
        self.warnings: list[str] = []
        self._entries: dict[str, StyleEntry] = {}
        self.added = 0
        self._pull_locks: dict[str, threading.Lock] = {}    # one pull of a repo at a time; the others wait for it
        self._pull_times: deque[float] = deque()            # when the pulls of the last minute started
        self._session_pulls: dict[str, int] = {}
        self._pulled: OrderedDict[str, None] = OrderedDict()  # pulled repos, least recently used first
        self.evicted: list[str] = []
        for source in parse_sources(self.settings.sources):  # one broken source does not hide the others
            try:
                infos, warnings = available_styles([source])
            except FastNSTError as e:
                infos, warnings = [], [f"{source}: skipped ({e})"]
            self.warnings += warnings
            for info in infos:
                self._add_entry(info)
        self.models = ModelCache(self.settings.cache_models, self._load)
        self.batcher = DeviceBatcher(self.settings.max_batch)
        self.pixels = PixelBudget(self.settings.decode_mp * 1_000_000)
        for sub in ("thumbs", "outputs"):
            (self.settings.tmp_dir / sub).mkdir(parents=True, exist_ok=True)

    # --- styles -------------------------------------------------------------------------

    def _add_entry(self, info: StyleInfo, key: str | None = None) -> StyleEntry:
        """Register a style under a unique key (append-only: gallery indices stay valid)."""
        with self._lock:
            for e in self._entries.values():
                if e.info.ref == info.ref:
                    return e
            hub_id = info.meta.get("repo_id") or info.ref if info.source in ("hub", "cache") else None
            base = key or hub_id or info.name
            key, n = base, 2
            while key in self._entries:
                key, n = f"{base}-{n}", n + 1
            entry = self._entries[key] = StyleEntry(key, info)
            return entry

    @property
    def entries(self) -> list[StyleEntry]:
        with self._lock:
            return list(self._entries.values())

    def keys(self) -> list[str]:
        return [e.key for e in self.entries]

    def entry(self, key: str | None) -> StyleEntry:
        if not self._entries:
            raise StyleNotFoundError(self.no_styles_message())
        if not key:
            raise StyleNotFoundError("no style chosen: pick one in the gallery.")
        with self._lock:
            entry = self._entries.get(str(key))
        if entry is None:
            keys = self.keys()
            more = f" and {len(keys) - 10} more" if len(keys) > 10 else ""
            raise StyleNotFoundError(f"style {key!r} is not available here. Available: {', '.join(keys[:10])}{more}.")
        return entry

    def no_styles_message(self) -> str:
        spec = self.settings.sources or os.environ.get("FASTNST_STYLE_SOURCES") or "embedded"
        hint = " Add one from the Hub below." if self.settings.allow_pull else ""
        return (f"No styles are available from the sources {spec!r}. Set FASTNST_STYLE_SOURCES to a folder of "
                f"styles (or 'embedded', 'cache', 'hub:owner/name').{hint}")

    def thumbnail(self, entry: StyleEntry) -> Path:
        """A small JPEG of the style image (or a placeholder), made once in the temp folder."""
        digest = hashlib.sha1(entry.info.ref.encode()).hexdigest()[:16]
        path = self.settings.tmp_dir / "thumbs" / f"{digest}.jpg"
        if not path.is_file():
            img = None
            if entry.info.thumbnail:
                try:
                    img = load_image(entry.info.thumbnail).convert("RGB")
                    img.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
                except ImageError:
                    img = None
            save_image(img or placeholder_thumbnail(entry.info.name), path)
        return path

    def gallery(self) -> list[tuple[str, str]]:
        return [(str(self.thumbnail(e)), e.caption) for e in self.entries]

    def add_hub_style(self, repo_id: str, revision: str | None = None, session: str | None = None) -> StyleEntry:
        """Pull a style from the Hub (or the local cache when offline) and add it to the list.

        Bounded for a public server: a style already listed is not pulled again, concurrent requests
        for one repo wait for the first pull, pulls are limited per minute and per visitor ``session``,
        and pulled styles share a disk budget (:meth:`enforce_disk_budget`). What one pull may
        download is bounded by :class:`fastnst.hub.PullLimits`."""
        repo_id = (repo_id or "").strip()
        if not self.settings.allow_pull:
            raise DemoError("adding Hub styles is disabled on this server (FASTNST_DEMO_ALLOW_PULL=0).")
        if repo_id.startswith("hub:"):
            repo_id = repo_id[4:]
        if not is_repo_id(repo_id):
            raise DemoError(f"{repo_id!r} is not a Hub repo id; use the form 'owner/name'.")
        with self._lock:
            lock = self._pull_locks.setdefault(repo_id, threading.Lock())
        with lock:
            with self._lock:
                found = next((e for e in self._entries.values() if e.key == repo_id), None)
                if found is None:
                    self._admit_pull(session)
            if found is not None:
                return found
            folder = self._puller()(repo_id, revision=revision or None)
            info = style_from_folder(folder, "hub")
            info.meta = {**info.meta, "repo_id": repo_id, "path": str(folder)}
            entry = self._add_entry(info, key=repo_id)
            with self._lock:
                self.added += 1
                self._pulled[repo_id] = None
        self.enforce_disk_budget(keep=repo_id)
        return entry

    def _admit_pull(self, session: str | None) -> None:
        """Count a pull against the limits (under ``self._lock``), or refuse it saying when to try again."""
        s, now = self.settings, time.monotonic()
        if self.added >= s.max_added_styles:
            raise DemoError(f"this server already added {self.added} Hub styles, its limit.")
        while self._pull_times and now - self._pull_times[0] > 60:
            self._pull_times.popleft()
        if len(self._pull_times) >= s.pulls_per_minute:
            wait = 60 - (now - self._pull_times[0])
            raise DemoError(f"too many Hub pulls on this server right now ({s.pulls_per_minute} a minute); "
                            f"try again in {wait:.0f} s.")
        if session is not None and self._session_pulls.get(session, 0) >= s.pulls_per_session:
            raise DemoError(f"you have pulled {s.pulls_per_session} styles in this session, the limit per visitor.")
        self._pull_times.append(now)
        if session is not None:
            self._session_pulls[session] = self._session_pulls.get(session, 0) + 1

    def enforce_disk_budget(self, keep: str | None = None) -> list[str]:
        """Delete the cached files of the least recently used pulled styles until they fit ``pull_disk_mb``;
        never ``keep`` or a style whose model is loaded (embedded and local styles are not in the cache).
        An evicted style stays listed and is pulled again when next used. Returns the evicted repo ids."""
        from huggingface_hub import constants, scan_cache_dir
        from huggingface_hub.errors import CacheNotFound

        try:
            cache = scan_cache_dir(constants.HF_HUB_CACHE)
        except (CacheNotFound, OSError):
            return []
        repos = {r.repo_id: r for r in cache.repos if r.repo_type == "model"}
        with self._lock:
            order = [r for r in self._pulled if r in repos]
        budget, loaded = self.settings.pull_disk_mb * 2**20, set(self.models.keys())
        used = sum(repos[r].size_on_disk for r in order)
        evicted = []
        for repo_id in order:
            if used <= budget:
                break
            if repo_id == keep or repo_id in loaded:
                continue
            cache.delete_revisions(*(rev.commit_hash for rev in repos[repo_id].revisions)).execute()
            used -= repos[repo_id].size_on_disk
            evicted.append(repo_id)
            with self._lock:
                self._pulled.pop(repo_id, None)
                entry = self._entries.get(repo_id)
                if entry is not None:
                    entry.info.meta = {k: v for k, v in entry.info.meta.items() if k != "path"}
        if evicted:
            log.info("disk budget: evicted pulled styles %s", ", ".join(evicted))
            self.evicted += evicted
        return evicted

    # --- models -------------------------------------------------------------------------

    def _puller(self) -> Callable[..., Path]:
        if self._pull is not None:
            return lambda repo_id, revision=None: Path(self._pull(repo_id, revision=revision))
        from fastnst.hub import pull_style

        return lambda repo_id, revision=None: Path(pull_style(repo_id, revision=revision))

    def _folder(self, info: StyleInfo) -> str:
        """The style's folder on disk; a Hub style not downloaded yet is pulled now (from the cache
        when offline), checksummed and safetensors-only, by fastnst.hub."""
        for candidate in (info.meta.get("path"), info.ref):
            if candidate and Path(candidate).is_dir():
                return str(candidate)
        repo_id = info.meta.get("repo_id") or info.ref
        folder = str(self._puller()(repo_id, revision=info.meta.get("sha")))
        if info.source == "hub":  # pulled again (after an eviction): back under the disk budget
            info.meta = {**info.meta, "path": folder}
            with self._lock:
                self._pulled[repo_id] = None
            self.enforce_disk_budget(keep=repo_id)
        return folder

    def _load(self, key: str) -> Stylizer:
        return Stylizer.from_pretrained(self._folder(self.entry(key).info), device=self.device)

    def stylizer(self, key: str) -> Stylizer:
        entry = self.entry(key)
        with self._lock:
            if entry.key in self._pulled:
                self._pulled.move_to_end(entry.key)  # recently used: evicted last
        return self.models.get(entry.key)

    @property
    def device_label(self) -> str:
        d = self.device
        if d.type == "cuda":
            return f"{d} ({torch.cuda.get_device_name(d)})"
        if d.type == "cpu":
            return f"cpu ({torch.get_num_threads()} threads)"
        return str(d)

    # --- stylizing ----------------------------------------------------------------------

    def clamp_size(self, size: Any) -> int:
        try:
            size = int(float(size)) if size not in (None, "") else self.settings.default_size
        except (TypeError, ValueError):
            raise DemoError(f"output size must be a number of pixels, not {size!r}.") from None
        return max(16, min(size, self.settings.max_size))

    @staticmethod
    def check_strength(strength: Any) -> float:
        try:
            s = float(1.0 if strength is None else strength)
        except (TypeError, ValueError):
            raise DemoError(f"strength must be a number from 0 to 1, not {strength!r}.") from None
        if not 0.0 <= s <= 1.0:
            raise DemoError(f"strength must be from 0 to 1, not {s}.")
        return s

    def _apply(self, key: str, img: Image.Image, strength: float, preserve_color: bool,
               blender: PixelBlender | None = None) -> Image.Image:
        """One prepared (already resized) image through the style, batched with concurrent requests;
        ``blender``: a stream's flicker stabiliser, applied to the network's output as in video."""
        stylizer = self.stylizer(key)
        x = pil_to_tensor(img)
        y = self.batcher.run((id(stylizer), img.size), x, stylizer.stylize_tensor)[0]
        if blender is not None:
            y = blender(x[0], y)
        return stylizer.finish(img, y, strength, bool(preserve_color), x=x[0])

    def prepare(self, image: Any, size: int, resample: Image.Resampling = Image.Resampling.LANCZOS) -> Image.Image:
        """Decode and check an input (see :func:`image_input`) and fit it into ``size``."""
        src = image_input(image)
        with self.pixels.hold(header_pixels(src)):  # the full-size decode is the memory peak: bounded
            try:
                img = load_image(src)
            except ImageError as e:
                if isinstance(image, dict) and isinstance(src, str):  # name the upload, not the server's temp path
                    raise ImageError(str(e).replace(src, Path(str(image.get("orig_name") or "upload")).name)) from None
                raise
            target = fit_size(*img.size, size)
            return img.resize(target, resample) if target != img.size else img

    def stylize(self, image: Any, style: str, strength: Any = 1.0, preserve_color: bool = False,
                max_size: Any = None) -> tuple[Image.Image, Image.Image]:
        """(input resized to the output size, stylized output)."""
        strength = self.check_strength(strength)
        self.entry(style)  # unknown style: fail before decoding anything
        src = self.prepare(image, self.clamp_size(max_size))
        return src, self._apply(style, src, strength, preserve_color)

    def stylize_video(self, video: Any, style: str, strength: Any = 1.0, preserve_color: bool = False,
                      max_size: Any = None) -> Path:
        """A clip through the style (its sound kept, flicker smoothed), as an .mp4 in the bounded folder.

        Clips over ``max_video_s`` seconds are refused before any frame is stylized, and the output is
        at most ``max_video_size`` px on its longest side."""
        from fastnst.video import probe, stylize_video

        strength = self.check_strength(strength)
        self.entry(style)
        if isinstance(video, dict):  # Gradio's VideoData or FileData
            video = (video.get("video") or {}).get("path") if "video" in video else video.get("path")
        if not video or not isinstance(video, (str, os.PathLike)):
            raise DemoError("no clip: upload a video file first.")
        src = video
        info = probe(src)
        seconds = info.frames / float(info.fps or 1)
        if seconds > self.settings.max_video_s:
            raise DemoError(f"the clip is {seconds:.0f} s long; this server stylizes clips of up to "
                            f"{self.settings.max_video_s} s. Cut it first.")
        size = min(self.clamp_size(max_size), self.settings.max_video_size)
        out = self.settings.tmp_dir / "outputs" / f"{self.entry(style).key.replace('/', '-')}-{uuid.uuid4().hex[:12]}.mp4"
        stylize_video(src, out, self.stylizer(style), max_size=size, strength=strength, preserve_color=bool(preserve_color),
                      keyframe_interval=self.settings.video_keyframes)
        return out

    def live_meter(self) -> FpsMeter:
        """A fresh meter for one live stream: it starts small on a CPU, at the largest live size on a GPU."""
        return FpsMeter(size=256 if self.device.type == "cpu" else LIVE_SIZES[1])

    def stylize_frame(self, frame: Any, style: str, strength: Any, preserve_color: bool,
                      meter: FpsMeter, size: Any = "auto") -> Image.Image:
        """One webcam frame at the live working size; updates ``meter`` (fps, adaptive size)."""
        strength = self.check_strength(strength)
        self.entry(style)
        fixed = str(size).isdigit()
        target = self.clamp_size(size) if fixed else meter.size
        t0 = time.perf_counter()
        img = self.prepare(frame, target, Image.Resampling.BILINEAR)
        # as in video: blended with the previous frame's output, moved along the optical flow, where it matches
        out = self._apply(style, img, strength, preserve_color, meter.blender)
        meter.tick(time.perf_counter() - t0)
        if fixed:
            meter.size = target
        else:
            meter.adapt(hi=min(LIVE_SIZES[1], self.settings.max_size))
        return out

    def contact_sheet(self, image: Any, cell: int = 256, strength: Any = 1.0,
                      preserve_color: bool = False) -> Image.Image:
        """The input in every available style, as a labelled grid (the original first)."""
        strength = self.check_strength(strength)
        entries = self.entries
        if not entries:
            raise StyleNotFoundError(self.no_styles_message())
        src = self.prepare(image, min(int(cell), self.settings.max_size))
        cells = [(src, "original")]
        for e in entries:
            cells.append((self._apply(e.key, src, strength, preserve_color), e.info.label))
        return labelled_grid(cells, src.size)

    # --- files --------------------------------------------------------------------------

    def save_output(self, img: Image.Image, stem: str = "stylized", suffix: str = ".png") -> Path:
        """Write a result under a unique name in the bounded folder (atomically) and return its path.

        The UI hands Gradio these paths rather than PIL images: Gradio writes PIL outputs to a
        content-addressed path without renaming, so two concurrent requests with identical
        results could serve each other a half-written file; its copy of a file is atomic.
        """
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem)[:60] or "stylized"
        return save_image(img, self.settings.tmp_dir / "outputs" / f"{safe}-{uuid.uuid4().hex[:12]}{suffix}")

    def prune_tmp(self, keep: Collection[str] = ()) -> int:
        s = self.settings
        return prune_folder(s.tmp_dir, s.tmp_max_mb * 2**20, s.tmp_max_age_s, keep=keep)

    def start_janitor(self, every_s: float = 60.0, keep: Callable[[], Collection[str]] = set) -> threading.Thread:
        """Keep the temp folder bounded in a daemon thread; ``keep()`` names files to leave alone
        (Gradio's copies of default values and examples)."""
        def loop() -> None:
            while True:
                time.sleep(every_s)
                try:
                    self.prune_tmp(keep())
                except Exception:  # never let the janitor die
                    pass
        t = threading.Thread(target=loop, name="fastnst-demo-janitor", daemon=True)
        t.start()
        return t


def example_images() -> list[Path]:
    return sorted(p for p in EXAMPLES_DIR.glob("*.jpg"))
