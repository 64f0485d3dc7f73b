"""Small video clips made on the spot (PyAV), for the video tests and benchmarks/bench_video.py."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image


def make_clip(path: Path, image: Image.Image, *, frames: int = 24, size: tuple[int, int] = (160, 96),
              fps: int = 12, pan_px: float = 0.5, noise: float = 3.0, light: float = 0.0, audio: bool = True,
              seed: int = 0) -> Path:
    """An H.264 clip of a window panning ``pan_px`` pixels a frame across ``image``, with Gaussian
    sensor noise of ``noise`` grey levels and a random brightness change of up to ``light`` (a
    fraction) per frame (what makes a per-frame network flicker), and, with ``audio``, a 440 Hz AAC
    tone as long as the clip."""
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


def flicker(stylized: np.ndarray, original: np.ndarray, still: float = 4.0) -> float:
    """Mean absolute change between consecutive stylized frames (grey levels) where the input frames
    changed by less than ``still`` grey levels: change the network adds, not the scene's."""
    s, o = stylized.astype(np.float32), original.astype(np.float32)
    ds = np.abs(s[1:] - s[:-1]).mean(-1)
    do = np.abs(o[1:] - o[:-1]).mean(-1)
    mask = do < still
    return float(ds[mask].mean()) if mask.any() else float("nan")
