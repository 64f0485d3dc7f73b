"""Shared by the app tests: tiny random styles with thumbnails, and the environment the app runs in."""

from __future__ import annotations

from pathlib import Path

from conftest import make_style, smooth_image

#: (folder/name, title, artist) of the test styles; random weights, so outputs look like noise.
TEST_STYLES = [("alpha", "Alpha Waves", "A. Painter"), ("beta", "Beta Lines", "B. Drawer")]


def make_demo_styles(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for seed, (name, title, artist) in enumerate(TEST_STYLES):
        folder = make_style(root / name, seed=seed + 1, name=name, title=title, artist=artist)
        smooth_image(160, 120, seed=20 + seed).save(folder / "style.jpg", quality=90)
    return root


def app_env(tmp: Path, sources: str, **extra: str) -> dict[str, str]:
    """Offline, CPU, everything under ``tmp``."""
    env = {"FASTNST_STYLE_SOURCES": sources, "FASTNST_DEMO_TMP": str(tmp / "app-tmp"), "HF_HOME": str(tmp / "hf"),
           "FASTNST_DEVICE": "cpu", "HF_HUB_OFFLINE": "1"}
    env.update(extra)
    return env


def cache_style(hf_home: Path, repo_id: str, style_folder: Path, commit: str = "0" * 40) -> Path:
    """Put a style into a Hugging Face cache as if it had been pulled before (for offline tests)."""
    import shutil

    storage = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = storage / "snapshots" / commit
    shutil.copytree(style_folder, snapshot)
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(commit)
    return snapshot
