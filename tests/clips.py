"""Small video clips made on the spot (PyAV), for the video tests and benchmarks/bench_video.py."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image


def make_clip(path: Path, image: Image.Image, *, frames: int = 24, size: tuple[int, int] = (160, 96),
              fps: int = 12, pan_px: float = 0.5, noise: float = 3.0, light: float = 0.0, audio: bool = True,
              object_px: int = 0, seed: int = 0) -> Path:
    """An H.264 clip of a window panning ``pan_px`` pixels a frame across ``image``, with Gaussian
    sensor noise of ``noise`` grey levels and a random brightness change of up to ``light`` (a
    fraction) per frame (what makes a per-frame network flicker), and, with ``audio``, a 440 Hz AAC
    tone as long as the clip. With ``object_px``, a square (a third of the height, the photo's centre
    upside down) crosses the frame left to right at ``object_px`` pixels a frame: a moving object
    on which blending with the past would leave a ghost."""
    import av

    rng = np.random.default_rng(seed)
    w, h = size
    base = np.asarray(image.convert("RGB").resize((w + int(pan_px * frames) + 2, h)), dtype=np.float32)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.options = {"crf": "12"}
        a = out.add_stream("aac", rate=44_100) if audio else None
        for i in range(frames):
            x0 = pan_px * i
            lo = int(x0)
            t = x0 - lo
            window = (1 - t) * base[:, lo:lo + w] + t * base[:, lo + 1:lo + 1 + w]
            if object_px:
                side = h // 3
                patch = base[h // 2 - side // 2:h // 2 - side // 2 + side, w // 2:w // 2 + side][::-1]
                left, top = (object_px * i) % max(1, w - side), h // 3
                window = window.copy()
                window[top:top + side, left:left + side] = patch
            gain = 1 + rng.uniform(-light, light)
            arr = np.clip(window * gain + rng.normal(0, noise, window.shape), 0, 255).astype(np.uint8)
            out.mux(v.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")))
        out.mux(v.encode(None))
        if a is not None:
            samples = int(44_100 * frames / fps)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44_100)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = tone[start:start + 1024][None, :]
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = 44_100, start, Fraction(1, 44_100)
                out.mux(a.encode(frame))
            out.mux(a.encode(None))
    return path


def read_frames(path: Path) -> np.ndarray:
    """All frames of a clip as uint8 RGB (N x H x W x 3)."""
    import av

    with av.open(str(path)) as inp:
        return np.stack([f.to_ndarray(format="rgb24") for f in inp.decode(video=0)])


def flicker(stylized: np.ndarray, original: np.ndarray, still: float = 4.0, pan_px: float = 0.0) -> float:
    """Mean absolute change between consecutive stylized frames (grey levels) where the input frames
    changed by less than ``still`` grey levels: change the network adds, not the scene's. For a clip
    of :func:`make_clip` panning ``pan_px`` a frame, the previous frames are first moved along the
    known motion (the warping error, with the true flow instead of an estimate)."""
    s, o = stylized.astype(np.float32), original.astype(np.float32)
    ps, po = shifted(s[:-1], pan_px), shifted(o[:-1], pan_px)
    ds = np.abs(s[1:] - ps).mean(-1)
    do = np.abs(o[1:] - po).mean(-1)
    mask = do < still
    if pan_px:
        mask[:, :, s.shape[2] - int(np.ceil(pan_px)) - 1:] = False  # came into view: nothing to compare with
    return float(ds[mask].mean()) if mask.any() else float("nan")


def ghosting(stabilized: np.ndarray, per_frame: np.ndarray, original: np.ndarray, moved: float = 20.0) -> float:
    """Mean absolute difference (grey levels) between a stabilised and the per-frame stylization where
    the input changed by more than ``moved`` grey levels from the previous frame (a moving object and
    what it uncovered): what blending with the past smeared over the present."""
    o = original.astype(np.float32)
    mask = np.abs(o[1:] - o[:-1]).mean(-1) > moved
    diff = np.abs(stabilized[1:].astype(np.float32) - per_frame[1:].astype(np.float32)).mean(-1)
    return float(diff[mask].mean()) if mask.any() else float("nan")


def shifted(frames: np.ndarray, pan_px: float) -> np.ndarray:
    """Frames (N x H x W x C) resampled at x + ``pan_px`` (linear): where a pan of ``pan_px`` a frame
    moves their content in the next frame."""
    if not pan_px:
        return frames
    w = frames.shape[2]
    x = np.minimum(np.arange(w) + pan_px, w - 1)
    lo = np.floor(x).astype(int)
    hi = np.minimum(lo + 1, w - 1)
    t = (x - lo)[None, None, :, None]
    return (1 - t) * frames[:, :, lo] + t * frames[:, :, hi]
