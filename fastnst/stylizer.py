"""Inference: apply a trained style to images."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from .images import ImageInput, fit_size, load_image, pil_to_tensor, tensor_to_pil
from .model import TransformerNet
from .styles import resolve_style
from .subpixel import SubpixelNet

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: Images with more pixels than this are stylized in overlapping tiles to bound memory.
DEFAULT_TILE_PIXELS = int(os.environ.get("FASTNST_TILE_PIXELS", 2048 * 2048))


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, else CUDA, else Apple MPS, else CPU. Raises ValueError for one that is not usable here."""
    if device not in (None, "auto"):
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps.") from None
        cuda_missing = dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count()
        if cuda_missing or (dev.type == "mps" and not _mps_available()):
            raise ValueError(f"device {device!r} is not available on this machine; use cpu or leave the device unset.")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def pick_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """The dtype of a precision setting.

    ``auto``: fp16 on CUDA/MPS; on CPUs bf16 where they compute it natively (AVX-512 BF16, AMX:
    1.6-2.6x faster than fp32 in ``benchmarks/bench_inference.py``, and a trained style's output
    within a few grey levels of fp32's, see ``tests/test_fast_paths.py``), else fp32 (emulated bf16
    would be slower).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    if precision == "auto":
        if device.type in ("cuda", "mps"):
            return torch.float16
        return torch.bfloat16 if cpu_supports_bf16() else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


@functools.cache
def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX); read from /proc/cpuinfo (Linux)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def compile_network(model: torch.nn.Module, device: torch.device, mode: bool | str = True):
    """``torch.compile`` of the network for inference on ``device``.

    ``True`` picks the mode: ``reduce-overhead`` (CUDA graphs) on CUDA, ``default`` elsewhere; on CPUs
    the weights are frozen into the graph (prepacked for oneDNN). Shapes are compiled as they come
    (a new image size compiles again), so it pays off for many images of one size (video, webcam,
    a folder of camera photos), not for a single image: compiling takes tens of seconds on a CPU.
    """
    if mode is True:
        mode = "reduce-overhead" if device.type == "cuda" else "default"
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be True, False or one of {', '.join(COMPILE_MODES)}, not {mode!r}.")
    options = {"freezing": True} if device.type == "cpu" else None
    return torch.compile(model, mode=None if options else mode, options=options, dynamic=False)


class Stylizer:
    """Stylizes images with one style network.

    >>> stylizer = Stylizer.from_pretrained("starry_night")   # embedded name, folder or Hub repo id
    >>> stylizer("photo.jpg", strength=0.8).save("out.png")
    """

    def __init__(self, model: TransformerNet, device: str | torch.device | None = None, precision: str = "auto",
                 tile_pixels: int = DEFAULT_TILE_PIXELS, tile_overlap: int = 128, *, compile: bool | str = False,
                 threads: int | None = None) -> None:
        """``precision``: auto (see :func:`pick_dtype`), fp32, fp16 or bf16 (fastest on CPUs with
        AVX-512 BF16/AMX). ``compile``: ``torch.compile`` the network (see :func:`compile_network`).
        ``threads``: intra-op threads of the process (``torch.set_num_threads``, a global setting).

        The network runs in its sub-pixel form (:class:`~fastnst.subpixel.SubpixelNet`: the same
        function with a cheaper decoder; 1.25-1.5x faster in ``benchmarks/bench_inference.py``),
        channels_last."""
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, precision)
        if threads is not None:
            torch.set_num_threads(max(1, int(threads)))
        self.model = model.eval().to(self.device, dtype=self.dtype, memory_format=torch.channels_last)
        self.tile_pixels, self.tile_overlap = int(tile_pixels), int(tile_overlap)
        self.fast = SubpixelNet(self.model)
        self.net = compile_network(self.fast, self.device, compile) if compile else self.fast
        self._tiling = False  # tiles replay recorded statistics: always eager (a compiled graph would bake them in)

    @classmethod
    def from_pretrained(cls, style: str | os.PathLike, *, device: str | torch.device | None = None,
                        precision: str = "auto", revision: str | None = None, token: str | bool | None = None,
                        local_files_only: bool = False, **kwargs: Any) -> "Stylizer":
        """Load a style by embedded name, local folder or Hub repo id."""
        model = TransformerNet.from_pretrained(resolve_style(style), revision=revision, token=token,
                                               local_files_only=local_files_only)
        return cls(model, device=device, precision=precision, **kwargs)

    @property
    def name(self) -> str:
        return str(self.model.style.get("name", "style"))

    # --- public API -----------------------------------------------------------------------

    def __call__(self, image: ImageInput, *, strength: float = 1.0, preserve_color: bool = False,
                 max_size: int | None = 1024) -> Image.Image:
        """Stylize one image (path, bytes, PIL image or NumPy array); returns RGB, or RGBA if the input had alpha.

        ``max_size`` caps the longest side (None: keep the size); ``strength`` in [0, 1] blends the
        original (0) with the full stylization (1); ``preserve_color`` keeps the input's colours and
        takes only the luminance of the stylization.
        """
        return self.stylize_batch([image], strength=strength, preserve_color=preserve_color, max_size=max_size)[0]

    stylize = __call__

    def stylize_batch(self, images: Sequence[ImageInput], *, strength: float = 1.0, preserve_color: bool = False,
                      max_size: int | None = 1024, batch_size: int = 8) -> list[Image.Image]:
        """Stylize many images; images of equal size run through the network together."""
        if not 0.0 <= float(strength) <= 1.0:
            raise ValueError(f"strength must be in [0, 1], not {strength}.")
        prepared = [self._prepare(img, max_size) for img in images]
        results: list[Image.Image | None] = [None] * len(prepared)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(prepared):
            groups.setdefault(img.size, []).append(i)
        for idxs in groups.values():
            for start in range(0, len(idxs), batch_size):
                chunk = idxs[start:start + batch_size]
                x = torch.cat([pil_to_tensor(prepared[i]) for i in chunk])
                y = self.stylize_tensor(x)
                for i, out in zip(chunk, y):
                    results[i] = self._finish(prepared[i], out, float(strength), preserve_color)
        return [r for r in results if r is not None]

    @torch.inference_mode()
    def stylize_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Bx3xHxW float in [0, 1] to the same; tiled when larger than ``tile_pixels``. Returns float32 on CPU."""
        h, w = x.shape[-2:]
        if h * w <= self.tile_pixels:
            return self._run(x)
        return torch.cat([self._run_tiled(x[i:i + 1]) for i in range(x.shape[0])])

    # --- internals ------------------------------------------------------------------------

    def _prepare(self, image: ImageInput, max_size: int | None) -> Image.Image:
        img = load_image(image)
        size = fit_size(*img.size, max_size)
        if size != img.size:
            img = img.resize(size, Image.Resampling.LANCZOS)
        return img

    def _finish(self, src: Image.Image, y: torch.Tensor, strength: float, preserve_color: bool) -> Image.Image:
        x = pil_to_tensor(src)[0]
        if strength < 1.0:
            y = strength * y + (1.0 - strength) * x
        out = tensor_to_pil(y)
        if preserve_color:
            _, cb, cr = src.convert("RGB").convert("YCbCr").split()
            out = Image.merge("YCbCr", (out.convert("YCbCr").split()[0], cb, cr)).convert("RGB")
        if src.mode == "RGBA":
            out.putalpha(src.getchannel("A"))
        return out

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """The network on a batch (a whole image or a tile); float32 on the CPU."""
        x = x.to(self.device, dtype=self.dtype, non_blocking=True).contiguous(memory_format=torch.channels_last)
        return (self.fast if self._tiling else self.net)(x).float().cpu()

    def _run_tiled(self, x: torch.Tensor) -> torch.Tensor:
        """Overlapping tiles blended with linear ramps; every tile is normalised with the
        instance-norm statistics of the whole image (downscaled to fit), so tiles agree."""
        _, _, h, w = x.shape
        side = max(64, int(math.sqrt(self.tile_pixels)) // 4 * 4)
        overlap = min(self.tile_overlap, side // 4)
        scale = min(1.0, math.sqrt(self.tile_pixels / (h * w)))
        ref = F.interpolate(x, size=(max(4, round(h * scale)), max(4, round(w * scale))), mode="area")
        out = torch.zeros(1, 3, h, w)
        weight = torch.zeros(1, 1, h, w)
        ref = ref.to(self.device, dtype=self.dtype).contiguous(memory_format=torch.channels_last)
        with self.model.shared_norm_stats(ref, self.fast), self._tiles():
            for top, bottom in _spans(h, side, overlap):
                for left, right in _spans(w, side, overlap):
                    tile = x[..., top:bottom, left:right]
                    th, tw = tile.shape[-2:]
                    ramp = _ramp(th, top > 0, bottom < h, overlap)[:, None] * _ramp(tw, left > 0, right < w, overlap)[None, :]
                    out[..., top:bottom, left:right] += self._run(tile) * ramp
                    weight[..., top:bottom, left:right] += ramp
        return out / weight.clamp_min(1e-8)

    @contextmanager
    def _tiles(self) -> Iterator[None]:
        self._tiling = True
        try:
            yield
        finally:
            self._tiling = False


def _spans(length: int, side: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) of overlapping tiles covering ``range(length)``.

    Every start is a multiple of 4, the network's total stride, so each tile is sampled on the same
    stride-2 grids as the whole image (a tile off that grid gives a visibly different output);
    the last tile is up to 3 px longer than ``side`` for that.
    """
    if length <= side:
        return [(0, length)]
    step = max(4, (side - overlap) // 4 * 4)
    spans = [(s, s + side) for s in range(0, length - side, step)]
    last = (length - side) // 4 * 4
    if spans[-1][0] == last:
        spans.pop()
    return spans + [(last, length)]


def _ramp(n: int, fade_in: bool, fade_out: bool, overlap: int) -> torch.Tensor:
    """1 in the middle, rising/falling linearly over ``overlap`` pixels at tile edges shared with neighbours."""
    r = torch.ones(n)
    k = min(overlap, n // 2)
    if k > 0:
        ramp = (torch.arange(k, dtype=torch.float32) + 0.5) / k
        if fade_in:
            r[:k] = torch.minimum(r[:k], ramp)
        if fade_out:
            r[n - k:] = torch.minimum(r[n - k:], ramp.flip(0))
    return r


def save_image(img: Image.Image, path: str | os.PathLike) -> Path:
    """Save with a format chosen by suffix (JPEG drops alpha onto white), creating folders; atomic."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image suffix {path.suffix!r}; use .png, .jpg, .webp or .tif.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg") and img.mode == "RGBA":
        bg = Image.new("RGB", img.size, (255, 255, 255))
        bg.paste(img, mask=img.getchannel("A"))
        img = bg
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        img.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only left when saving failed
    return path
