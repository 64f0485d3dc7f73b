"""Reading images safely and converting between PIL, NumPy and tensors.

Every image that enters fastnst goes through :func:`load_image`: it refuses what is not an
image (with an :class:`~fastnst.errors.ImageError` naming the file and the problem), checks the
declared size before decoding so decompression bombs never allocate, applies the EXIF
orientation and converts every Pillow mode to RGB or RGBA.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from collections.abc import Collection
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageFont, ImageOps, UnidentifiedImageError

ImageInput = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
#: The only Pillow decoders ever run on files and bytes, whatever their name says: fewer decoders,
#: less attack surface (and never EPS, which Pillow hands to Ghostscript). JPEG includes MPO.
DECODE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")

#: Largest image (in pixels) that is decoded at all; larger ones are refused before decoding.
MAX_PIXELS = int(os.environ.get("FASTNST_MAX_PIXELS", 50_000_000))
#: Largest encoded file accepted, in bytes.
MAX_FILE_BYTES = int(os.environ.get("FASTNST_MAX_FILE_BYTES", 50 * 1024 * 1024))

# Pillow's own bomb check runs at open(); ours (MAX_PIXELS) is stricter and gives a better message.
Image.MAX_IMAGE_PIXELS = max(MAX_PIXELS, Image.MAX_IMAGE_PIXELS or 0)

from .errors import ImageError  # noqa: E402


def _describe(src: ImageInput) -> str:
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    if isinstance(src, bytes):
        return "<uploaded bytes>"
    return f"<{type(src).__name__}>"


def load_image(src: ImageInput, *, max_pixels: int | None = None) -> Image.Image:
    """Read ``src`` (path, bytes, PIL image or NumPy array) into an RGB or RGBA PIL image.

    EXIF orientation is applied; the first frame of an animation is used; 16-bit and float
    images are scaled (not clipped) to 8 bits; alpha is kept as RGBA. Raises ``ImageError``.
    """
    limit = max_pixels or MAX_PIXELS
    name = _describe(src)
    if isinstance(src, np.ndarray):
        return _check_size(array_to_pil(src), name, limit)
    if isinstance(src, Image.Image):
        _check_size(src, name, limit)
        return to_rgb(ImageOps.exif_transpose(src) or src)
    if isinstance(src, bytes):
        data = src
    else:
        path = Path(src)
        if not path.exists():
            raise ImageError(f"{name}: no such file. Check the path.")
        if path.is_dir():
            raise ImageError(f"{name}: is a folder, not an image file.")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageError(
                f"{name}: file is {size / 2**20:.0f} MiB, over the {MAX_FILE_BYTES / 2**20:.0f} MiB limit. "
                "Downscale it first or raise FASTNST_MAX_FILE_BYTES."
            )
        data = path.read_bytes()
    if not data:
        raise ImageError(f"{name}: file is empty (0 bytes). Use a JPEG, PNG, WebP, GIF, BMP or TIFF image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=DECODE_FORMATS)
            _check_size(img, name, limit)  # header only: nothing decoded yet
            img.seek(0)
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: image is too large to decode safely ({e}).") from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{name}: not an image file Pillow can read. Use a JPEG, PNG, WebP, GIF, BMP or TIFF image."
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{name}: image is corrupt or truncated ({e}). Re-export or re-download it.") from None
    img = ImageOps.exif_transpose(img) or img
    try:
        return to_rgb(img)
    except ImageError as e:
        raise ImageError(f"{name}: {e}") from None


def _check_size(img: Image.Image, name: str, limit: int) -> Image.Image:
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(f"{name}: image has no pixels ({w}x{h}).")
    if w * h > limit:
        raise ImageError(
            f"{name}: image is {w}x{h} = {w * h / 1e6:.0f} megapixels, over the limit of "
            f"{limit / 1e6:.0f} megapixels. Downscale it first or raise FASTNST_MAX_PIXELS."
        )
    return img


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB, or RGBA where the image has transparency."""
    mode = img.mode
    if mode in ("L", "RGB") and "transparency" in img.info:  # a transparent colour (PNG tRNS)
        return img.convert("RGBA")
    if mode in ("RGB", "RGBA"):
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return array_to_pil(np.asarray(img))
    if mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if mode in ("LA", "PA", "La", "RGBa"):
        return img.convert("RGBA")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def array_to_pil(arr: np.ndarray) -> Image.Image:
    """NumPy HxW, HxWx1, HxWx3 or HxWx4 array (uint8, uint16, or float in [0, 1]) to a PIL image.

    16-bit values are scaled (not clipped) to 8 bits; so are floats beyond [0, 1] (as 0-255 when
    at most 255, else by their maximum)."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(f"array of shape {a.shape} is not an image (expected HxW, HxWx3 or HxWx4).")
    if a.dtype == np.uint8:
        pass
    elif (a.dtype.kind == "u" and a.dtype.itemsize == 2) or (a.dtype.kind in "iu" and a.size and a.max() > 255):
        # 16 bits in either byte order (I;16, I;16B), or wider integers holding 16-bit values
        a = np.clip(a.astype(np.float64) / 65535.0 * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif a.dtype.kind in "iu":
        a = np.clip(a, 0, 255).astype(np.uint8)
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ImageError("array holds NaN or infinite values.")
        # floats are [0, 1]; a float image beyond that (Pillow's mode F from 8-bit data is 0-255)
        # is scaled from 0-255, or by its maximum, rather than clipped to white
        top = float(a.max()) if a.size else 1.0
        scale = 255.0 if top <= 1.0 + 1e-3 else 1.0 if top <= 255.0 else 255.0 / top
        a = np.clip(a.astype(np.float64) * scale + 0.5, 0, 255).astype(np.uint8)
    elif a.dtype == bool:
        a = a.astype(np.uint8) * 255
    else:
        raise ImageError(f"array of dtype {a.dtype} is not an image.")
    if a.ndim == 2:
        return Image.fromarray(a, "L").convert("RGB")
    return Image.fromarray(a, "RGBA" if a.shape[2] == 4 else "RGB")


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image to a float tensor 1x3xHxW in [0, 1]."""
    a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """Float tensor 3xHxW or 1x3xHxW in [0, 1] to an RGB PIL image (rounded, clamped)."""
    if t.dim() == 4:
        t = t[0]
    a = (t.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(a), "RGB")


def fit_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """Size with the longest side at most ``max_size``, keeping the aspect as closely as pixels allow."""
    if not max_size or max(width, height) <= max_size:
        return width, height
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def list_images(paths: list[str | os.PathLike], suffixes: Collection[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Expand files and folders (recursively, sorted) into the paths of files with ``suffixes`` (images)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes))
        else:
            out.append(p)
    return out


def label_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """DejaVu Sans at ``size`` px where the system has it (Debian's fonts-dejavu-core): Pillow's built-in font
    has no accented letters, so "Léger" came out with a box. Else the built-in font, else its fixed bitmap font
    (Pillow without FreeType)."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        pass
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()
