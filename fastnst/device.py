"""Where and in which precision the networks run: one device picker and one precision table for training and inference."""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

import torch

from .settings import PRECISIONS

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


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


def pick_dtype(device: torch.device, precision: str = "auto", *, training: bool = False) -> torch.dtype:
    """The compute dtype of a precision setting (for training: the autocast dtype; float32 means no autocast).

    ``auto`` on CPUs: bf16 where they compute it natively (AVX-512 BF16, AMX), else fp32 (emulated
    bf16 is slower). On CUDA: fp16 for inference; bf16 for training where supported, since fp16
    training needs loss scaling. On MPS: fp16 for inference, fp32 for training.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    if precision != "auto":
        return _DTYPES[precision]
    if device.type == "cuda":
        return torch.bfloat16 if training and torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float32 if training else torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


@functools.cache
def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX); read from /proc/cpuinfo (Linux)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def hardware_description() -> str:
    """The GPUs, or the CPU, its cores and torch's threads: for model cards and evaluation reports."""
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    world = int(os.environ.get("WORLD_SIZE", 1))
    return (f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
            f"{torch.get_num_threads()}" + (f" in each of {world} processes" if world > 1 else ""))
