"""Stylizing video: decoded and encoded with PyAV (FFmpeg), frames stylized in batches, audio copied.

A network applied frame by frame flickers: small changes between frames (sensor noise, compression,
light) change what the network paints. The stabilisers, measured in ``benchmarks/bench_video.py``:
``flow`` (the default) blends each output with the previous one, moved along the optical flow between
the input frames, per pixel where the input matches it, so still and moving parts keep their look
and what the flow gets wrong (and what came into view) is not blended and does not ghost; ``blend``
the same without motion (still shots only); ``stats`` smooths the instance-norm statistics over the
frames of a shot (a moving average, reset at a cut), which did not help the shipped styles, whose
input skip passes brightness changes straight through. The clip streams through: memory stays flat whatever its length.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ImageError
from .files import atomic_path
from .images import MAX_PIXELS, fit_size
from .stylizer import Stylizer

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")
#: Longest clip accepted, in frames (10 minutes at 30 frames/s by default).
MAX_FRAMES = int(os.environ.get("FASTNST_MAX_VIDEO_FRAMES", 18_000))
STABILIZERS = ("flow", "blend", "stats", "both", "none")  # "both": stats and flow
#: OpenCV DIS optical flow settings by name: its preset, and its variational refinement iterations (None: the
#: preset's). "precise": medium's finer patch search without the refinement, which gained nothing on the
#: clips of benchmarks/bench_video.py for twice the time.
FLOW_PRESETS = {"ultrafast": ("ULTRAFAST", None), "fast": ("FAST", None), "medium": ("MEDIUM", None),
                "precise": ("MEDIUM", 0)}
#: Side of the downscaled frame the statistics are measured on (cheap next to the full frame).
STATS_SIDE = 256
NormStats = list[tuple[torch.Tensor, torch.Tensor]]


class VideoError(ImageError):
    """A clip that cannot be read or written (corrupt, no video stream, too large or too long)."""


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frames: int          # from the container (an estimate for some formats)
    has_audio: bool


@dataclass
class VideoReport:
    path: Path
    frames: int
    width: int
    height: int
    fps: Fraction
    seconds: float
    network_share: float = 1.0  # of the frames' pixels, what went through the network (< 1 with key frames)

    @property
    def frames_per_s(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, rate, frame count and audio of a clip; ``VideoError`` naming the problem if it is not one."""
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such file.")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: has no video stream (audio only?); give a video clip.")
            v = container.streams.video[0]
            fps = v.average_rate or v.guessed_rate or Fraction(25)
            frames = v.frames or int(round(float(container.duration or 0) / 1e6 * float(fps)))
            info = VideoInfo(v.codec_context.width, v.codec_context.height, Fraction(fps), frames,
                             bool(container.streams.audio))
    except VideoError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VideoError(f"{path}: not a video file FFmpeg can read ({type(e).__name__}: {e}).") from None
    if info.width * info.height > MAX_PIXELS or info.width < 1 or info.height < 1:
        raise VideoError(f"{path}: frames of {info.width}x{info.height} px are over the limit of "
                         f"{MAX_PIXELS / 1e6:.0f} megapixels (FASTNST_MAX_PIXELS).")
    if info.frames > MAX_FRAMES:
        raise VideoError(f"{path}: {info.frames} frames is over the limit of {MAX_FRAMES} "
                         "(FASTNST_MAX_VIDEO_FRAMES); cut the clip first.")
    return info


class PixelBlender:
    """Recursive blend of each stylized frame with the previous (already blended) one, per pixel, where the
    input frames barely differ: the weight of the past is ``strength * exp(-(d / still)^2)``, ``d`` the
    input's local mean absolute change (0-1). Where the input changed (motion, a cut) the weight
    falls to zero, so moving objects do not ghost.

    With ``motion`` the previous frame (input and output) is first warped onto this one along the
    optical flow between the inputs (OpenCV's DIS, a few ms a frame with ``flow_preset`` ultrafast),
    so a pan or a moving object is blended with where it was; where the flow is wrong the warped input
    does not match, ``d`` is large and nothing is blended, and pixels that came into view are never
    blended."""

    def __init__(self, strength: float = 0.8, still: float = 0.03, blur: int = 5, motion: bool = False,
                 flow_preset: str = "ultrafast") -> None:
        if flow_preset not in FLOW_PRESETS:
            raise ValueError(f"flow_preset must be one of {', '.join(FLOW_PRESETS)}, not {flow_preset!r}.")
        self.strength, self.still, self.blur = float(strength), float(still), int(blur)
        self.motion, self.flow_preset = bool(motion), flow_preset
        self._flow = None  # the DIS flow estimator, created on first use (with motion)
        self._x: torch.Tensor | None = None
        self._y: torch.Tensor | None = None
        self._grey: np.ndarray | None = None  # the previous input as the flow estimator takes it
        self._grey_now: np.ndarray | None = None  # this one's, between past() and remember()
        self.flow: np.ndarray | None = None  # with motion, the last flow estimated (flow_to_previous)
        self._pixels: torch.Tensor | None = None  # 1xHxWx2 pixel coordinates (x, y) of the frame size

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``y`` (3xHxW, the stylization of input frame ``x``) blended with the past."""
        return self.blend(x, y, self.past(x))

    def past(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The previous output as seen from input frame ``x`` (moved along the flow where that matches
        better, with ``motion``) and, per pixel (1xHxW), the local change between ``x`` and the previous
        input seen the same way; None at the first frame (or after a change of size)."""
        self._grey_now = _grey(x) if self.motion else None
        if self._x is None or self._x.shape != x.shape:
            return None
        py, d = self._y, self._change(x, self._x)
        if self.motion:  # per pixel, the past that matches better: where it was, or moved along the flow
            wx, wy, valid = self._previous_on(x, self._grey_now)
            dw = torch.where(valid > 0, self._change(x, wx), torch.full_like(d, float("inf")))
            moved = dw < 0.7 * d  # a clear gain: on a still shot, noise alone makes some flows look better
            py, d = torch.where(moved, wy, py), torch.where(moved, dw, d)
        return py, d

    def blend(self, x: torch.Tensor, y: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """``y`` blended with ``past`` (:meth:`past` of ``x``), and kept as the past of the next frame."""
        if past is not None:
            py, d = past
            w = self.strength * torch.exp(-(d / self.still) ** 2)
            y = y + w * (py - y)
        return self.remember(x, y)

    def remember(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Keep ``y``, the output for ``x`` (after :meth:`past` of ``x``), as the past of the next frame."""
        self._x, self._y, self._grey = x, y, self._grey_now
        return y

    def _change(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        """1xHxW: the local mean absolute difference between ``x`` and ``past``."""
        import cv2  # its box filter: several times faster than avg_pool2d on one channel

        d = (x - past).abs().mean(0).float().numpy()
        return torch.from_numpy(cv2.blur(d, (self.blur, self.blur), borderType=cv2.BORDER_REFLECT))[None]

    def _previous_on(self, x: torch.Tensor, grey: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The previous input and output warped onto frame ``x`` (``grey``: its grey copy) along the flow,
        and where they are valid."""
        h, w = x.shape[1:]
        if self._pixels is None or self._pixels.shape[1:3] != (h, w):
            gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                    indexing="ij")
            self._pixels = torch.stack([gx, gy], -1)[None]
        self.flow = self.flow_to_previous(grey, self._grey)
        flow = torch.from_numpy(self.flow)[None]
        scale = torch.tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)])
        grid = (self._pixels + flow) * scale - 1  # grid_sample's coordinates, -1..1
        stack = torch.cat([self._x.float(), self._y.float(), torch.ones_like(x[:1], dtype=torch.float32)])[None]
        warped = F.grid_sample(stack, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]
        return warped[:3].to(x.dtype), warped[3:6].to(self._y.dtype), (warped[6:] > 0.999).to(x.dtype)

    def flow_to_previous(self, grey: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """HxWx2 displacement (dx, dy) between two grey frames (:func:`_grey`): pixel (i, j) of ``grey``
        shows what ``previous`` showed at (i + dy, j + dx)."""
        import cv2

        if self._flow is None:
            preset, refinement = FLOW_PRESETS[self.flow_preset]
            self._flow = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset}"))
            if refinement is not None:
                self._flow.setVariationalRefinementIterations(refinement)
        return self._flow.calc(grey, previous, None)


def _grey(x: torch.Tensor) -> np.ndarray:
    """A 3xHxW image in [0, 1] as an 8-bit grey numpy array (what the flow estimator takes)."""
    g = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    return np.ascontiguousarray(g.float().clamp(0, 1).mul(255).round().to(torch.uint8).numpy())


class KeyframePropagator:
    """Stylizes every ``interval``-th frame (a key frame) with the network and the frames between by
    moving the previous output along the optical flow (:class:`PixelBlender`'s), so the network runs
    about ``interval`` times less often. Only what the moved past does not show (what came into
    view, around a moving object, where the flow is wrong: a local input change over ``stale``) is
    stylized in between, in crops normalised with the key frame's instance-norm statistics so that
    they continue it. So is where the flow changes by more than ``stretch`` pixels within 4: behind a
    moving object the flow drags the past over what it uncovers, which a smooth input hides but the
    stylized texture shows as streaks. A frame with more than ``full`` of it stale becomes a key
    frame. Key frames are blended with the moved past as by the ``flow`` stabiliser. The cost: a
    change of light (no motion) reaches the output only at the next key frame."""

    def __init__(self, stylizer: Stylizer, interval: int = 4, *, stale: float = 0.05, stretch: float = 1.5,
                 full: float = 0.5, margin: int | None = None, cell: int = 8) -> None:
        if interval < 1:
            raise ValueError(f"the key-frame interval must be >= 1, not {interval}.")
        self.stylizer, self.interval = stylizer, int(interval)
        self.stale, self.stretch = float(stale), float(stretch)
        if margin is None:  # what the crops' edges need, and as far again as dilated blocks reach
            margin = 24 + stylizer.model.dilation_reach
        self.full, self.margin, self.cell = float(full), int(margin), int(cell)
        # the flow moves the picture between key frames: precise flow (ultrafast's errors of a tenth of a
        # pixel make the moved strokes shimmer; README, "Video")
        self.blender = PixelBlender(motion=True, flow_preset="precise")
        self._stats: NormStats | None = None
        self._since_key = 0
        self.key_frames = self.frames = 0
        self.stylized_share = 0.0  # of the pixels of all frames, what went through the network

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The stylization of input frame ``x`` (3xHxW in [0, 1]), the frames before it given in order."""
        self.frames += 1
        past = self.blender.past(x)
        if past is not None and self._stats is not None and self._since_key + 1 < self.interval:
            import cv2

            py, d = past
            # regions whose past input does not match (what came into view, around a moving object, where the
            # flow is wrong), not specks: an opening by 3x3 drops lines 1-2 px wide, where the flow misses a
            # whisker's fine detail
            d = d[0].numpy()
            stale = (d > self.stale).astype(np.uint8) | _stretched(self.blender.flow, self.stretch)
            stale = cv2.morphologyEx(stale, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
            boxes = self._boxes(stale)
            h, w = x.shape[1:]
            area = sum((b - t) * (r - l) for t, b, l, r in boxes)
            if area <= self.full * h * w:
                self._since_key += 1
                self.stylized_share += area / (h * w)
                return self.blender.remember(x, self._patched(x, py, stale, boxes))
        y, self._stats = self.stylizer.stylize_recording(x[None])
        self._since_key, self.key_frames, self.stylized_share = 0, self.key_frames + 1, self.stylized_share + 1
        return self.blender.blend(x, y[0], past)

    def _patched(self, x: torch.Tensor, py: torch.Tensor, stale: np.ndarray,
                 boxes: list[tuple[int, int, int, int]]) -> torch.Tensor:
        """The moved past ``py`` with its ``stale`` pixels (HxW, 0/1) and a feathered rim taken from crops of
        ``x`` stylized with the key frame's statistics."""
        import cv2

        if not boxes:
            return py
        y = py.clone()
        k = np.ones((9, 9), np.uint8)  # feathering: dilated by 4 px, then a 9 px ramp
        for t, b, l, r in boxes:
            crop = self.stylizer.stylize_tensor(x[None, :, t:b, l:r], norm_stats=self._stats)[0]
            m = cv2.blur(cv2.dilate(stale[t:b, l:r], k).astype(np.float32), (9, 9))
            y[:, t:b, l:r] += torch.from_numpy(m) * (crop - y[:, t:b, l:r])
        return y

    def _boxes(self, stale: np.ndarray) -> list[tuple[int, int, int, int]]:
        """(top, bottom, left, right) of crops covering the ``stale`` pixels (HxW, 0/1) with ``margin`` around
        them, starting on the network's stride (multiples of 4), merged where they overlap. A crop's
        output differs from the whole frame's near its edges only (the network pads there): measured on
        ``starry_night``, 4-8 grey levels at the edge, under 0.3 from 16 px in, where the feathered
        patch ends at a margin of 24 (more for a network with dilated blocks, which reach further)."""
        import cv2

        h, w = stale.shape
        c = self.cell
        padded = np.pad(stale, ((0, -h % c), (0, -w % c)))
        cells = padded.reshape(padded.shape[0] // c, c, padded.shape[1] // c, c).max(axis=(1, 3))
        if not cells.any():
            return []
        n, _, boxes, _ = cv2.connectedComponentsWithStats(cells, connectivity=8)
        found = []
        for left, top, bw, bh, _ in boxes[1:n]:
            t, l = max(0, top * c - self.margin) // 4 * 4, max(0, left * c - self.margin) // 4 * 4
            found.append((t, min(h, (top + bh) * c + self.margin), l, min(w, (left + bw) * c + self.margin)))
        merged = True
        while merged:  # overlapping crops would stylize the same pixels twice: one crop around both
            merged = False
            for i in range(len(found)):
                for j in range(i + 1, len(found)):
                    a, b = found[i], found[j]
                    if a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]:
                        found[i] = (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))
                        del found[j]
                        merged = True
                        break
                if merged:
                    break
        return found


def _stretched(flow: np.ndarray, limit: float, span: int = 4) -> np.ndarray:
    """HxW uint8: 1 where the flow (HxWx2) changes by more than ``limit`` pixels within ``span`` pixels
    (measured on 480p clips: DIS's noise on a still shot stays under 1 px within 4 at the 99.9th
    percentile; a 6 px/frame object's edge reaches 3.6-5.5)."""
    import cv2

    torn = np.zeros(flow.shape[:2], bool)
    for c in cv2.split(flow):  # per component, with OpenCV's vector code (numpy's took 10x longer)
        torn[:, span:] |= cv2.absdiff(c[:, span:], c[:, :-span]) > limit
        torn[span:] |= cv2.absdiff(c[span:], c[:-span]) > limit
    return torn.view(np.uint8)


class NormSmoother:
    """Exponential moving average of per-frame instance-norm statistics, restarted at a cut.

    ``momentum`` is the weight of the past (0: every frame its own statistics, the flickering
    baseline); a cut is a mean absolute change of more than ``cut`` between consecutive
    downscaled frames (values in [0, 1])."""

    def __init__(self, momentum: float = 0.9, cut: float = 0.12) -> None:
        self.momentum, self.cut = float(momentum), float(cut)
        self._stats: NormStats | None = None
        self._last: torch.Tensor | None = None
        self.cuts = 0

    def update(self, stats: NormStats, small: torch.Tensor) -> NormStats:
        """The smoothed statistics for a frame whose own are ``stats`` (batch of 1) and downscaled copy ``small``."""
        if self._last is not None and self._last.shape == small.shape and \
                float((small - self._last).abs().mean()) > self.cut:
            self._stats, self.cuts = None, self.cuts + 1
        self._last = small
        if self._stats is None:
            self._stats = [(m.clone(), v.clone()) for m, v in stats]
        else:
            k = self.momentum
            self._stats = [(k * m0 + (1 - k) * m, k * v0 + (1 - k) * v) for (m0, v0), (m, v) in zip(self._stats, stats)]
        return self._stats


def output_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """The stylized frame size: fitted into ``max_size``, even (H.264's 4:2:0 needs it)."""
    w, h = fit_size(width, height, max_size)
    return max(2, w - w % 2), max(2, h - h % 2)


def stylize_video(src: str | os.PathLike, dst: str | os.PathLike, stylizer: Stylizer, *, max_size: int | None = 1024,
                  strength: float = 1.0, preserve_color: bool = False, stabilize: str = "flow",
                  batch_size: int = 4, crf: int = 18, keyframe_interval: int = 1,
                  on_frames: Callable[[int], None] | None = None) -> VideoReport:
    """Stylize the clip ``src`` into ``dst`` (H.264 in MP4/MKV/MOV; the input's frame rate and timing,
    its audio stream copied unchanged, or re-encoded to AAC where the container cannot hold it).

    ``stabilize``: ``flow`` (each output blended with the previous one moved along the optical flow, where
    the input matches it: the default), ``blend`` (the same without motion), ``stats`` (instance-norm
    statistics smoothed over the frames of a shot), ``both`` (stats and flow) or ``none`` (each frame
    on its own). ``keyframe_interval`` > 1 (with ``flow``): the network runs on every such frame and
    the frames between are the output moved along the flow, with only what that does not show
    stylized (:class:`KeyframePropagator`): faster, less flicker, light changes show at key frames
    only. ``on_frames(n)`` is called after every batch of ``n`` frames (progress).
    Raises ``VideoError`` for a clip that cannot be read, is too large or too long."""
    import av

    if stabilize not in STABILIZERS:
        raise ValueError(f"stabilize must be one of {', '.join(STABILIZERS)}, not {stabilize!r}.")
    if keyframe_interval != 1 and stabilize != "flow":
        raise ValueError(f"a key-frame interval ({keyframe_interval}) needs the flow stabiliser, not {stabilize!r}.")
    info = probe(src)
    width, height = output_size(info.width, info.height, max_size)
    dst = Path(dst)
    smoother = NormSmoother() if stabilize in ("both", "stats") else None  # (measured: no help with input-skip styles)
    blender = PixelBlender(motion=stabilize in ("flow", "both")) if stabilize in ("flow", "both", "blend") else None
    if keyframe_interval != 1:
        blender = KeyframePropagator(stylizer, keyframe_interval)
    t0, done = time.perf_counter(), 0
    try:
        with atomic_path(dst, keep_suffix=True) as tmp, av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
            vin = inp.streams.video[0]
            ain = inp.streams.audio[0] if inp.streams.audio else None
            vout = out.add_stream("libx264", rate=info.fps)
            vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
            # x264's medium preset: `veryfast`'s coarse motion search re-encodes even a flicker-free pan with
            # change from frame to frame, about as much as the stabiliser leaves (README, "Video"); medium
            # costs little next to the network
            vout.options = {"crf": str(crf), "preset": "medium"}
            aout, resampler = _audio_stream(out, ain)
            for item in _stylized(inp, vin, ain, stylizer, width, height, strength, preserve_color, smoother,
                                  blender, batch_size):
                if isinstance(item, av.Packet):  # audio: copied, or re-encoded where the container needs it
                    if resampler is None:
                        item.stream = aout
                        out.mux(item)
                    else:
                        for decoded in item.decode():
                            for frame in resampler.resample(decoded):
                                out.mux(aout.encode(frame))
                    continue
                frames = item
                for vf in frames:
                    out.mux(vout.encode(vf))
                done += len(frames)
                if done > MAX_FRAMES:
                    raise VideoError(f"{src}: more than {MAX_FRAMES} frames (FASTNST_MAX_VIDEO_FRAMES); cut the clip.")
                if on_frames:
                    on_frames(len(frames))
            out.mux(vout.encode(None))
            if resampler is not None:
                out.mux(aout.encode(None))
            if done == 0:
                raise VideoError(f"{src}: no frame could be decoded (empty or truncated clip).")
    except av.error.FFmpegError as e:
        raise VideoError(f"{src}: FFmpeg could not decode or encode it ({e}).") from None
    share = blender.stylized_share / max(blender.frames, 1) if isinstance(blender, KeyframePropagator) else 1.0
    return VideoReport(dst, done, width, height, info.fps, time.perf_counter() - t0, share)


def _audio_stream(out, ain):  # noqa: ANN001, ANN202 - PyAV types
    """The output's audio stream for ``ain``: a copy of it, else AAC (with the resampler to feed it)."""
    import av

    if ain is None:
        return None, None
    try:
        return out.add_stream_from_template(ain), None
    except (ValueError, av.error.FFmpegError):
        aout = out.add_stream("aac", rate=ain.rate or 48_000)
        return aout, av.AudioResampler(format="fltp", layout=ain.layout.name if ain.layout else "stereo",
                                       rate=ain.rate or 48_000)


def _stylized(inp, vin, ain, stylizer: Stylizer, width: int, height: int, strength: float, preserve_color: bool,
              smoother: NormSmoother | None, blender: PixelBlender | KeyframePropagator | None,
              batch_size: int) -> Iterator:  # noqa: ANN001 - PyAV types
    """Audio packets as they come, and batches of stylized VideoFrames."""
    import av

    pending: list = []
    for packet in inp.demux(*(s for s in (vin, ain) if s is not None)):
        if packet.stream is ain:
            if packet.dts is not None:
                yield packet
            continue
        try:
            decoded = packet.decode()
        except av.error.InvalidDataError:  # a damaged packet: skip it, as players do
            continue
        for frame in decoded:
            pending.append(frame)
            if len(pending) == batch_size:
                yield _stylize_batch(pending, stylizer, width, height, strength, preserve_color, smoother, blender)
                pending = []
    if pending:
        yield _stylize_batch(pending, stylizer, width, height, strength, preserve_color, smoother, blender)


def _stylize_batch(frames: list, stylizer: Stylizer, width: int, height: int, strength: float,
                   preserve_color: bool, smoother: NormSmoother | None,
                   blender: PixelBlender | KeyframePropagator | None) -> list:
    """Stylized VideoFrames (with the input frames' timestamps) of decoded ``frames``; ``blender``: the
    stabiliser, or the propagator that stylizes them itself."""
    import av

    rgb = np.stack([f.reformat(width=width, height=height, format="rgb24").to_ndarray() for f in frames])
    x = torch.from_numpy(rgb).permute(0, 3, 1, 2).float().div_(255)
    stats = None
    if smoother is not None:
        scale = min(1.0, STATS_SIDE / max(width, height))
        small = F.interpolate(x, size=(max(4, round(height * scale)), max(4, round(width * scale))), mode="area")
        per_frame = [smoother.update(stylizer.norm_stats(small[i:i + 1]), small[i]) for i in range(len(frames))]
        stats = [(torch.cat([p[k][0] for p in per_frame]), torch.cat([p[k][1] for p in per_frame]))
                 for k in range(len(per_frame[0]))]
    if isinstance(blender, KeyframePropagator):
        y = torch.stack([blender(x[i]) for i in range(len(frames))])
    else:
        y = stylizer.stylize_tensor(x, norm_stats=stats)
        if blender is not None:
            y = torch.stack([blender(x[i], y[i]) for i in range(len(frames))])
    if strength < 1.0 or preserve_color:
        from PIL import Image

        y = torch.stack([torch.from_numpy(np.asarray(stylizer.finish(
            Image.fromarray(rgb[i]), y[i], strength, preserve_color, x=x[i]).convert("RGB"))).permute(2, 0, 1)
            .float().div_(255) for i in range(len(frames))])
    out = (y.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy())
    result = []
    for frame, arr in zip(frames, out):
        vf = av.VideoFrame.from_ndarray(arr, format="rgb24")
        vf.pts, vf.time_base = frame.pts, frame.time_base
        result.append(vf)
    return result
