"""Style folders: their layout, reading and checking them, and finding a style by name.

A style is a folder (on disk or a Hub model repo, same layout) holding ``config.json``,
``model.safetensors`` and optionally ``README.md``, ``style.jpg``, ``example.jpg`` and
``evaluation.jpg``. Everything here reads files only: the network is :mod:`fastnst.model`, the
Hub is :mod:`fastnst.hub`. Weights are only ever read as safetensors; pickles are refused by
their first bytes, before anything parses them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidStyleError, StyleNotFoundError, UnsafeWeightsError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
PICKLE_NAMES = ("pytorch_model.bin", "model.pth", "model.pt", "model.ckpt")
MAX_CHANNELS = 256
MAX_RESIDUAL_BLOCKS = 32
#: Largest dilation of a residual block: at a quarter of the smallest padded input (16 px) its reflection pad still fits.
MAX_DILATION = 3
#: Styles shipped inside the package (trained with train_scripts/, see their model cards).
EMBEDDED_DIR = Path(__file__).parent / "embedded"
_FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
#: Hub tags of a style repo; "fastnst" is how styles are found on the Hub.
TAGS = ["fastnst", "style-transfer", "fast-neural-style", "image-to-image"]


# --- finding a style ------------------------------------------------------------------------------

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
    style = read_config(folder).get("style") or {}
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


def embedded_styles() -> dict[str, Path]:
    """Name -> folder of every style shipped with fastnst."""
    if not EMBEDDED_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(EMBEDDED_DIR.iterdir()) if (p / WEIGHTS_NAME).is_file()}


def is_repo_id(spec: str) -> bool:
    """Whether ``spec`` is a Hub model repo id (``owner/name``, by the Hub's own rules) and not a local path."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not isinstance(spec, str) or spec.count("/") != 1 or os.path.exists(spec):
        return False
    try:
        validate_repo_id(spec)
    except HFValidationError:
        return False
    return True


def resolve_style(spec: str | os.PathLike) -> str:
    """Turn a style spec into what ``TransformerNet.from_pretrained`` takes: a folder path or a repo id.

    Order: an existing folder, then an embedded style name, then a Hub repo id (``owner/name``).
    """
    s = str(spec)
    path = Path(s).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise StyleNotFoundError(
            f"{s}: is a file; a style is a folder with {CONFIG_NAME} and {WEIGHTS_NAME} (or a Hub repo id)."
        )
    embedded = embedded_styles()
    if s in embedded:
        return str(embedded[s])
    if is_repo_id(s):
        return s
    known = ", ".join(embedded) or "none installed"
    raise StyleNotFoundError(
        f"unknown style {s!r}: not a folder, an embedded style ({known}) or a Hub repo id like 'user/style'."
    )


# --- reading and checking a style folder ----------------------------------------------------------

def read_config(folder: str | Path) -> dict[str, Any]:
    """The parsed config.json of a style folder (raises InvalidStyleError)."""
    path = Path(folder) / CONFIG_NAME
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidStyleError(f"{folder}: no {CONFIG_NAME}. A style folder needs {CONFIG_NAME} and {WEIGHTS_NAME}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidStyleError(f"{path}: not valid JSON ({e}).") from None
    if not isinstance(cfg, dict):
        raise InvalidStyleError(f"{path}: must hold a JSON object.")
    return cfg


#: The decoder's 2x upsampling modes (config.json's ``upsample``; absent: nearest, as every earlier style).
UPSAMPLE_MODES = ("nearest", "bilinear")
#: config.json's keys that shape the network (TransformerNet's keyword arguments besides style and training).
ARCHITECTURE_KEYS = ("channels", "num_residual", "input_skip", "centred_skip", "skip_gain", "upsample", "dilations")


def validate_architecture(channels: Any, num_residual: Any) -> None:
    """Refuse architecture values out of range before anything is allocated."""
    for name, value, hi in (("channels", channels, MAX_CHANNELS), ("num_residual", num_residual, MAX_RESIDUAL_BLOCKS)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
            raise InvalidStyleError(f"config.json: {name}={value!r} is out of range (an integer from 1 to {hi}).")


def dilations_fit(values: list[Any] | tuple[Any, ...], num_residual: int) -> bool:
    """Whether ``values`` give one integer dilation from 1 to ``MAX_DILATION`` per residual block, or none (all 1)."""
    return (not values or len(values) == num_residual) and all(
        isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_DILATION for d in values)


def validated_dilations(dilations: Any, num_residual: int) -> tuple[int, ...]:
    """``dilations`` (one per residual block, or empty or null: all 1) as a tuple, empty where every block is
    undilated; ``InvalidStyleError`` for anything else."""
    values = [] if dilations is None else list(dilations) if isinstance(dilations, (list, tuple)) else None
    if values is None or not dilations_fit(values, num_residual):
        raise InvalidStyleError(f"config.json: dilations={dilations!r} must list one integer from 1 to {MAX_DILATION} "
                                f"per residual block ({num_residual}), or be empty (every block undilated).")
    return tuple(values) if any(d != 1 for d in values) else ()


def refuse_missing_weights(where: str, names: list[str]) -> None:
    """Raise the error for a style without ``model.safetensors``: pickles named as such, else what is missing."""
    pickles = [n for n in names if n in PICKLE_NAMES or n.endswith((".pth", ".pt", ".bin", ".ckpt", ".pkl"))]
    if pickles:
        raise UnsafeWeightsError(
            f"{where}: has only pickled weights ({', '.join(pickles)}), which fastnst never loads because "
            f"unpickling can run arbitrary code. Convert them to {WEIGHTS_NAME} with safetensors in a trusted environment."
        )
    raise InvalidStyleError(f"{where}: no {WEIGHTS_NAME} found. A style needs {CONFIG_NAME} and {WEIGHTS_NAME}.")


def verify_safetensors(path: str | Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Check that ``path`` is a complete, well-formed safetensors file of float tensors, reading its header only.

    Returns name -> (dtype, shape). Raises ``UnsafeWeightsError`` for a pickle or zip checkpoint
    (never parsed further), a bad or truncated file, or non-float tensors.
    """
    from safetensors import SafetensorError, safe_open

    with open(path, "rb") as f:
        head, size = f.read(9), os.fstat(f.fileno()).st_size
    # safetensors: an 8-byte little-endian header length, then the JSON header. Its first byte may be anything
    # (a header of 0x280 bytes starts like a pickle), so the pickle and zip magic are read only where that fails.
    header_fits = len(head) == 9 and head[8:9] == b"{" and 8 + int.from_bytes(head[:8], "little") <= size
    if not header_fits and (head[:2] == b"PK" or head[:1] == b"\x80"):
        raise UnsafeWeightsError(f"{path}: is a pickle/zip checkpoint, not safetensors; it is never unpickled.")
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {name: (str(s.get_dtype()), tuple(s.get_shape()))
                       for name in f.keys() for s in [f.get_slice(name)]}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UnsafeWeightsError(f"{path}: not a valid safetensors file ({e}). Re-download or re-export it.") from None
    odd = sorted(name for name, (dtype, _) in tensors.items() if dtype not in _FLOAT_DTYPES)
    if odd:
        raise UnsafeWeightsError(f"{path}: tensors {odd[:3]} are not floating point ({tensors[odd[0]][0]}); "
                                 "a style's weights are F16, BF16 or F32.")
    return tensors


def load_weights(model: Any, weights: str | Path, map_location: str = "cpu") -> None:
    """Load a safetensors file into ``model``, refusing pickles, wrong shapes, missing tensors and NaNs.

    Names and shapes are checked against the file's header before any tensor is read.
    """
    import torch
    from safetensors.torch import load_file

    header = verify_safetensors(weights)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing or unexpected:
        raise InvalidStyleError(
            f"{weights}: tensors do not match config.json's architecture "
            f"(missing: {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected: {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})."
        )
    for k, (_, shape) in header.items():
        if shape != tuple(expected[k].shape):
            raise InvalidStyleError(f"{weights}: tensor {k} has shape {shape}, expected {tuple(expected[k].shape)}.")
    state = load_file(str(weights), device=str(map_location))
    for k, v in state.items():
        if not torch.isfinite(v).all():
            raise InvalidStyleError(f"{weights}: tensor {k} holds NaN or infinite values.")
    model.load_state_dict(state, strict=True)
