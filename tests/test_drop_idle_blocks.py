"""train_scripts/drop_idle_blocks.py: a trained style without its idle last blocks, as a complete style folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from fastnst import TransformerNet
from fastnst.grow import deepened

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "train_scripts" / "drop_idle_blocks.py"


def _style_folder(path: Path, scale: float) -> Path:
    """A 3-block fp16 style whose third block was added by deepening at ``scale`` and never trained."""
    net = TransformerNet(channels=4, num_residual=2, input_skip=True, style={"name": "tiny"},
                         training={"steps": 7, "num_residual": 3})
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g) + (1.0 if p.dim() == 1 and p.numel() > 3 else 0.0))
    deep = deepened(net, 3, scale=scale)
    folder = TransformerNet(**deep.config)
    folder.load_state_dict(deep.state_dict())  # a fresh instance: the mixin saves the config it was built with
    folder.half().save_pretrained(path)
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_idle_blocks_are_dropped_into_a_complete_style_folder(tmp_path):
    src = _style_folder(tmp_path / "deep", scale=0.0)
    out = tmp_path / "shallow"
    done = _run(str(src), "--num-residual", "2", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "3: 0.00%" in done.stdout and "3 -> 2 residual blocks" in done.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["num_residual"] == 2 and config["style"] == {"name": "tiny"}
    assert config["training"]["steps"] == 7 and config["training"]["blocks_dropped"].startswith("3 of 3 (adding 0.00%")
    assert "| residual blocks dropped after training | 3 of 3" in (out / "README.md").read_text()
    assert (out / "example.jpg").is_file()
    assert {t.dtype for t in load_file(out / "model.safetensors").values()} == {torch.float16}  # as the source
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        a, b = (TransformerNet.from_pretrained(p).eval()(x) for p in (out, src))
    assert (a - b).abs().max() < 2e-3  # a block at scale 0 computed nothing (fp16 rounding aside)


def test_a_block_that_adds_signal_is_kept(tmp_path):
    src = _style_folder(tmp_path / "deep", scale=0.5)
    out = tmp_path / "shallow"
    done = _run(str(src), "--num-residual", "2", "-o", str(out))
    assert done.returncode == 2 and "limit --max-share 1.00%" in done.stderr and not out.exists()
    missing = _run(str(tmp_path / "nowhere"), "--num-residual", "2", "-o", str(out))
    assert missing.returncode == 2 and "unknown style" in missing.stderr and not out.exists()
    for keep in ("0", "3"):  # none kept, or all of them: nothing to drop
        odd = _run(str(src), "--num-residual", keep, "-o", str(out))
        assert odd.returncode == 2 and "has 3 residual blocks" in odd.stderr and not out.exists()
