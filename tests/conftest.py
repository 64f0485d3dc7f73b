"""Shared fixtures: tiny random-init styles and test images made on the fly (nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fastnst import TransformerNet

REPO = Path(__file__).resolve().parents[1]


def smooth_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like (smooth, colourful, with edges) RGB test image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    chans = []
    for c in range(3):
        fx, fy, ph = rng.uniform(1, 4, 3)
        chans.append(0.5 + 0.35 * np.sin(xx / width * fx * np.pi + ph) * np.cos(yy / height * fy * np.pi))
    img = np.stack(chans, -1)
    # a few hard-edged shapes
    for _ in range(4):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(5, max(6, min(width, height) / 4))
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        img[mask] = rng.uniform(0, 1, 3)
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), "RGB")


def levels(a: Image.Image, b: Image.Image) -> np.ndarray:
    """Per-value absolute difference of two same-size images, in grey levels (0-255)."""
    return np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int))


def make_style(folder: Path, channels: int = 8, seed: int = 0, name: str = "tiny", **style) -> Path:
    torch.manual_seed(seed)
    model = TransformerNet(channels=channels, num_residual=2, style={"name": name, **style})
    model.save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """No test touches the user's Hub cache or token; HED weights may use the shared fastnst cache."""
    from huggingface_hub import constants

    hf = tmp_path_factory.mktemp("hf_home")
    monkeypatch.setenv("HF_HOME", str(hf))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("FASTNST_STYLE_SOURCES", raising=False)
    # huggingface_hub read these at import time, before the env vars above were set.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(hf / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(hf / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture(scope="session")
def tiny_style(tmp_path_factory) -> Path:
    return make_style(tmp_path_factory.mktemp("styles") / "tiny")


@pytest.fixture(scope="session")
def photo() -> Image.Image:
    return smooth_image(160, 120)


@pytest.fixture
def photo_file(tmp_path, photo) -> Path:
    p = tmp_path / "photo.jpg"
    photo.save(p, quality=95)
    return p
