"""Inference: apply a trained style to images."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .bands import stylize_in_bands
from .device import pick_device, pick_dtype
from .files import atomic_path
from .images import ImageInput, fit_size, load_image, pil_to_tensor, tensor_to_pil
from .model import TransformerNet
from .styles import resolve_style
from .subpixel import SubpixelNet

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: Images with more pixels than this are stylized in bands of about as many pixels, to bound memory.
DEFAULT_TILE_PIXELS = int(os.environ.get("FASTNST_TILE_PIXELS", 2048 * 2048))


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
                 tile_pixels: int = DEFAULT_TILE_PIXELS, *, compile: bool | str = False,
                 threads: int | None = None, decoder: str = "subpixel", channels_last: bool = True) -> None:
        """``precision``: auto (see :func:`fastnst.device.pick_dtype`), fp32, fp16 or bf16 (fastest on CPUs with
        AVX-512 BF16/AMX). ``compile``: ``torch.compile`` the network (see :func:`compile_network`).
        ``threads``: intra-op threads of the process (``torch.set_num_threads``, a global setting).
        ``tile_pixels``: larger images are stylized in bands of about this many pixels
        (:func:`~fastnst.bands.stylize_in_bands`: the same output, in bounded memory).

        ``decoder``: ``subpixel`` runs the network's sub-pixel form (:class:`~fastnst.subpixel.SubpixelNet`,
        the same function with a cheaper decoder, faster in ``benchmarks/bench_inference.py``);
        ``upsample`` the network as trained (always, for a bilinear-upsampling network: the sub-pixel form
        is the same function only for nearest-neighbour upsampling). ``channels_last``: the memory format (faster on CPUs and GPUs)."""
        if decoder not in ("subpixel", "upsample"):
            raise ValueError(f"decoder must be subpixel or upsample, not {decoder!r}.")
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, precision)
        if threads is not None:
            torch.set_num_threads(max(1, int(threads)))
        self._format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.eval().to(self.device, dtype=self.dtype, memory_format=self._format)
        self.tile_pixels = int(tile_pixels)
        subpixel = decoder == "subpixel" and model.upsample == "nearest"
        self._eager: torch.nn.Module = SubpixelNet(self.model) if subpixel else self.model
        self._net = compile_network(self._eager, self.device, compile) if compile else self._eager
        self._replaying = False  # replaying recorded statistics: always eager (a compiled graph would bake them in)

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

    @property
    def network(self) -> torch.nn.Module:
        """The module that stylizes whole images: the chosen decoder form of :attr:`model`, compiled if asked."""
        return self._net

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
        _check_strength(strength)
        prepared = [self.prepare(img, max_size) for img in images]
        results: list[Image.Image | None] = [None] * len(prepared)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(prepared):
            groups.setdefault(img.size, []).append(i)
        for idxs in groups.values():
            for start in range(0, len(idxs), batch_size):
                chunk = idxs[start:start + batch_size]
                x = torch.cat([pil_to_tensor(prepared[i]) for i in chunk])
                y = self.stylize_tensor(x)
                for i, src, out in zip(chunk, x, y):
                    results[i] = self.finish(prepared[i], out, strength, preserve_color, x=src)
        return [r for r in results if r is not None]

    @torch.inference_mode()
    def stylize_tensor(self, x: torch.Tensor, norm_stats: list[tuple[torch.Tensor, torch.Tensor]] | None = None
                       ) -> torch.Tensor:
        """Bx3xHxW float in [0, 1] to the same; in bands when larger than ``tile_pixels``. Returns float32 on CPU.

        ``norm_stats`` (from :meth:`norm_stats`): instance-norm statistics to use instead of each image's
        own, e.g. smoothed across video frames so the texture does not flicker."""
        h, w = x.shape[-2:]
        if norm_stats is not None:
            with self.model.replaying_norm_stats(norm_stats), self._eager_only():  # eager: a graph would bake them in
                return self._run(x)
        if h * w <= self.tile_pixels:
            return self._run(x)
        return torch.cat([self._run_in_bands(x[i:i + 1]) for i in range(x.shape[0])])

    @torch.inference_mode()
    def norm_stats(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-image instance-norm statistics of ``x`` (Bx3xHxW in [0, 1]) in every layer, on this device."""
        x = x.to(self.device, dtype=self.dtype).contiguous(memory_format=self._format)
        return self.model.norm_stats(x, self._eager)

    @torch.inference_mode()
    def stylize_recording(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """:meth:`stylize_tensor` of ``x`` (untiled, eager) and the instance-norm statistics it used, in one
        pass: for parts of related images (the next frames of a video) to be stylized alike."""
        with self.model.recording_norm_stats() as stats, self._eager_only():
            y = self._run(x)
        return y, stats

    @staticmethod
    def prepare(image: ImageInput, max_size: int | None = 1024) -> Image.Image:
        """Step 1 of :meth:`stylize_batch`: read an image safely and fit its longest side into ``max_size``."""
        img = load_image(image)
        size = fit_size(*img.size, max_size)
        if size != img.size:
            img = img.resize(size, Image.Resampling.LANCZOS)
        return img

    @staticmethod
    def finish(src: Image.Image, y: torch.Tensor, strength: float = 1.0, preserve_color: bool = False, *,
               x: torch.Tensor | None = None) -> Image.Image:
        """Step 3, after :meth:`stylize_tensor`: the network's output ``y`` (3xHxW) of the prepared image ``src``
        as a PIL image, blended with ``src`` by ``strength``, in ``src``'s colours if ``preserve_color``, with
        ``src``'s alpha. ``x``: ``src`` as the tensor already made of it (else made here, only to blend)."""
        _check_strength(strength)
        if strength < 1.0:
            x = pil_to_tensor(src)[0] if x is None else x
            y = strength * y + (1.0 - strength) * x
        out = tensor_to_pil(y)
        if preserve_color:
            _, cb, cr = src.convert("RGB").convert("YCbCr").split()
            out = Image.merge("YCbCr", (out.convert("YCbCr").split()[0], cb, cr)).convert("RGB")
        if src.mode == "RGBA":
            out.putalpha(src.getchannel("A"))
        return out

    # --- internals ------------------------------------------------------------------------

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """The network on a batch of whole images; float32 on the CPU."""
        x = x.to(self.device, dtype=self.dtype, non_blocking=True).contiguous(memory_format=self._format)
        if self._replaying or self._net is self._eager:
            return self._eager(x).float().cpu()
        try:
            return self._net(x).float().cpu()
        except torch._dynamo.exc.TorchDynamoException as e:  # a torch whose compiler cannot lower this network
            warnings.warn(f"torch.compile failed on {self.device.type} with torch {torch.__version__} "
                          f"({type(e).__name__}: {str(e).strip().splitlines()[0][:200]}); stylizing without "
                          "compiling from now on (same images, slower).", RuntimeWarning, stacklevel=3)
            self._net = self._eager
            return self._eager(x).float().cpu()

    def _run_in_bands(self, x: torch.Tensor) -> torch.Tensor:
        """One image larger than ``tile_pixels``: the network's output computed in horizontal bands of
        about ``tile_pixels``, every instance norm with the whole image's statistics (:mod:`fastnst.bands`)."""
        x = x.to(self.device, dtype=self.dtype).contiguous(memory_format=self._format)
        return stylize_in_bands(self.model, x, self.tile_pixels // x.shape[-1], self._format)

    @contextmanager
    def _eager_only(self) -> Iterator[None]:
        """Within the block the network runs eagerly: it replays recorded statistics, which a compiled graph would bake in."""
        self._replaying = True
        try:
            yield
        finally:
            self._replaying = False


def _check_strength(strength: float) -> None:
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"strength must be in [0, 1], not {strength}.")


def save_image(img: Image.Image, path: str | os.PathLike) -> Path:
    """Save with a format chosen by suffix (JPEG drops alpha onto white), creating folders; atomic."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image suffix {path.suffix!r}; use .png, .jpg, .webp or .tif.")
    if path.suffix.lower() in (".jpg", ".jpeg") and img.mode == "RGBA":
        bg = Image.new("RGB", img.size, (255, 255, 255))
        bg.paste(img, mask=img.getchannel("A"))
        img = bg
    with atomic_path(path) as tmp:
        img.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return path
