"""The image transformation network of Johnson et al. (2016), with the usual improvements.

Reflection padding, instance normalisation and nearest-neighbour upsampling followed by a
convolution (instead of transposed convolutions, which leave checkerboard artefacts), as in
pytorch/examples' ``fast_neural_style``. The class is hub-native: ``save_pretrained`` writes
``config.json`` + ``model.safetensors`` and ``from_pretrained`` reads a local style folder or a
Hub repo through one code path. Only safetensors weights are ever loaded.
"""

from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from huggingface_hub.errors import RemoteEntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from .errors import HubError, InvalidStyleError, StyleNotFoundError, UnsafeWeightsError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
PICKLE_NAMES = ("pytorch_model.bin", "model.pth", "model.pt", "model.ckpt")
MAX_CHANNELS = 256
MAX_RESIDUAL_BLOCKS = 32


def pad_input(x: torch.Tensor) -> torch.Tensor:
    """Pad Bx3xHxW on the bottom/right to a multiple of 4 (two stride-2 stages) and at least 16 px
    (the 9x9 reflection pads); :class:`TransformerNet` crops its output back to HxW."""
    h, w = x.shape[-2:]
    ph, pw = max(16, h + (-h) % 4) - h, max(16, w + (-w) % 4) - w
    if not (ph or pw):
        return x
    # Reflection needs the pad to be smaller than the side; replicate covers tiny inputs.
    mode = "reflect" if h > ph and w > pw else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class InstanceNorm(nn.InstanceNorm2d):
    """Affine instance norm that can reuse statistics recorded on another image.

    Tiled stylization records each layer's per-channel mean/variance on a whole (downscaled)
    image first, then normalises every tile with those, so tiles agree and no seams appear.
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels, affine=True)
        self.mode: str = "normal"  # "normal" | "record" | "replay"
        self.stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "normal":
            if x.shape[0] == 1 and not torch.is_grad_enabled() and not torch.onnx.is_in_onnx_export():
                # Inference on one image: batch norm with batch statistics is the same operation, and
                # runs on channels_last directly, where instance_norm reshapes through two copies
                # (a third of the eager CPU time at 1024 px).
                return F.batch_norm(x, None, None, self.weight.to(x.dtype), self.bias.to(x.dtype), True, 0.0, self.eps)
            return super().forward(x)
        if self.mode == "record":
            var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, correction=0)
            self.stats = (mean, var)
        assert self.stats is not None, "replay needs recorded statistics"
        mean, var = (s.to(x.dtype) for s in self.stats)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        return y * self.weight.view(1, -1, 1, 1).to(x.dtype) + self.bias.view(1, -1, 1, 1).to(x.dtype)


class ConvLayer(nn.Sequential):
    """Reflection padding + convolution (+ optional instance norm and ReLU)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm: bool = True, relu: bool = True):
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride)]
        if norm:
            layers.append(InstanceNorm(cout))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class UpsampleConv(nn.Module):
    """Nearest-neighbour 2x upsampling then a convolution: no checkerboard artefacts."""

    def __init__(self, cin: int, cout: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = ConvLayer(cin, cout, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3), ConvLayer(channels, channels, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformerNet(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="fastnst",
    tags=["fastnst", "style-transfer", "fast-neural-style", "image-to-image"],
    pipeline_tag="image-to-image",
    license="mit",
):
    """Feed-forward style network: RGB float image in [0, 1] (Bx3xHxW) to RGB float image in [0, 1].

    Args:
        channels: width of the first layer; the network is ``channels``-2x-4x wide. 32 is the
            paper's 32-64-128; 16 is the "small" variant for CPUs.
        num_residual: number of residual blocks at 1/4 resolution (the paper uses 5).
        style: metadata of the style image (name, title, artist, year, licence) saved in config.json.
        training: how the weights were made (command, steps, losses...) saved in config.json.
        input_skip: add the input to the output, so the network learns only the change a style
            makes. Off in the paper; on, a short CPU training keeps the photo recognisable from the
            first steps instead of spending thousands of steps learning to reproduce it.

    Any H and W work: the input is reflection-padded to a multiple of 4 and the output cropped
    back, so the output always has the input's size. In training mode the output is not clamped
    (so gradients flow); in eval mode it is clamped to [0, 1].
    """

    def __init__(
        self,
        channels: int = 32,
        num_residual: int = 5,
        style: dict[str, Any] | None = None,
        training: dict[str, Any] | None = None,
        input_skip: bool = False,
    ) -> None:
        super().__init__()
        validate_architecture(channels, num_residual)
        for key, value in (("style", style), ("training", training)):
            if value is not None and not isinstance(value, dict):
                raise InvalidStyleError(f"config.json: {key} must be a JSON object, not {type(value).__name__}.")
        self.channels, self.num_residual = int(channels), int(num_residual)
        self.style, self.training_info = dict(style or {}), dict(training or {})
        if not isinstance(input_skip, bool):
            raise InvalidStyleError(f"config.json: input_skip must be true or false, not {input_skip!r}.")
        self.input_skip = input_skip
        c = self.channels
        self.encoder = nn.Sequential(ConvLayer(3, c, 9), ConvLayer(c, 2 * c, 3, 2), ConvLayer(2 * c, 4 * c, 3, 2))
        self.residuals = nn.Sequential(*[ResidualBlock(4 * c) for _ in range(self.num_residual)])
        self.decoder = nn.Sequential(
            UpsampleConv(4 * c, 2 * c), UpsampleConv(2 * c, c), ConvLayer(c, 3, 9, norm=False, relu=False)
        )
        with torch.no_grad():
            if input_skip:  # start as the exact identity: training only has to learn what the style changes
                self.decoder[-1][1].weight.zero_()
                self.decoder[-1][1].bias.zero_()
            else:  # start from mid-grey rather than black: early training converges faster
                self.decoder[-1][1].bias.fill_(0.5)

    @property
    def config(self) -> dict[str, Any]:
        return {"channels": self.channels, "num_residual": self.num_residual, "input_skip": self.input_skip,
                "style": self.style, "training": self.training_info}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.forward_padded(pad_input(x))[..., :h, :w]
        return y if self.training else y.clamp(0, 1)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The network on an input already padded by :func:`pad_input` (no cropping, no clamping).

        Free of Python-level shape logic, so it exports to ONNX with dynamic height and width.
        """
        y = self.decoder(self.residuals(self.encoder(x)))
        return y + x if self.input_skip else y

    def flops(self, height: int, width: int) -> int:
        """Multiply-adds x2 of one forward pass at HxW (convolutions only)."""
        h, w = math.ceil(height / 4) * 4, math.ceil(width / 4) * 4
        return sum(2 * c.in_channels * c.out_channels * c.kernel_size[0] * c.kernel_size[1] * (h // s) * (w // s)
                   for c, s in self._conv_scales())

    def _conv_scales(self) -> Iterator[tuple[nn.Conv2d, int]]:
        enc = [m for m in self.encoder.modules() if isinstance(m, nn.Conv2d)]
        yield enc[0], 1
        yield enc[1], 2
        yield enc[2], 4
        for m in self.residuals.modules():
            if isinstance(m, nn.Conv2d):
                yield m, 4
        dec = [m for m in self.decoder.modules() if isinstance(m, nn.Conv2d)]
        yield dec[0], 2
        yield dec[1], 1
        yield dec[2], 1

    @contextmanager
    def shared_norm_stats(self, reference: torch.Tensor, net: nn.Module | None = None) -> Iterator[None]:
        """Within the block, every instance norm uses the statistics of ``reference``'s forward pass
        (through ``net``, a module sharing these norms such as the sub-pixel form; default: this network)."""
        norms = [m for m in self.modules() if isinstance(m, InstanceNorm)]
        try:
            for m in norms:
                m.mode = "record"
            with torch.inference_mode():
                (net or self)(reference)
            for m in norms:
                m.mode = "replay"
            yield
        finally:
            for m in norms:
                m.mode, m.stats = "normal", None

    # --- hub mixin -------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs: Any) -> "TransformerNet":
        """Load a style from a local folder or a Hub repo id (safetensors only).

        Raises ``StyleNotFoundError`` for a repo that does not exist or is not cached while
        offline, ``InvalidStyleError``/``UnsafeWeightsError`` for a broken or pickled style.
        """
        name = str(pretrained_model_name_or_path)
        if Path(name).is_dir():
            read_config(name)  # a config.json that is not a JSON object: InvalidStyleError, not a crash
        with translate_hub_errors(name):
            try:
                return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:  # a Hub repo's config.json
                raise InvalidStyleError(f"{name}: {CONFIG_NAME} is not valid JSON ({e}).") from None

    def _save_pretrained(self, save_directory: Path) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        path = Path(save_directory) / WEIGHTS_NAME
        save_file(state, str(path), metadata={"format": "pt", "library": "fastnst"})
        umask = os.umask(0)
        os.umask(umask)
        path.chmod(0o666 & ~umask)  # safetensors creates it 0600; the other files of a style folder are 0644

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs: Any,
    ) -> "TransformerNet":
        model = cls(**{k: v for k, v in model_kwargs.items() if k in ("channels", "num_residual", "style", "training", "input_skip")})
        path = Path(model_id)
        if path.is_dir():
            weights = path / WEIGHTS_NAME
            if not weights.is_file():
                _refuse_missing_weights(model_id, [p.name for p in path.iterdir()])
        else:
            try:
                weights = Path(hf_hub_download(model_id, WEIGHTS_NAME, revision=revision, cache_dir=cache_dir,
                                               force_download=force_download, local_files_only=local_files_only,
                                               token=token))
            except RemoteEntryNotFoundError:  # (not cached while offline is translate_hub_errors' job)
                _refuse_missing_weights(model_id, [])
        load_weights(model, weights, map_location=map_location)
        return model


@contextmanager
def translate_hub_errors(repo_id: str) -> Iterator[None]:
    """Turn huggingface_hub's exceptions into fastnst's, with what to do next."""
    import httpx2
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, HFValidationError, LocalEntryNotFoundError,
                                        OfflineModeIsEnabled, RepositoryNotFoundError, RevisionNotFoundError)

    try:
        yield
    except (RepositoryNotFoundError, GatedRepoError) as e:
        raise StyleNotFoundError(
            f"{repo_id}: no such style on the Hub, or it is private/gated (HTTP {_status(e)}). "
            "Check the repo id, or log in with `hf auth login` if it is private."
        ) from None
    except RevisionNotFoundError:
        raise StyleNotFoundError(f"{repo_id}: the requested revision does not exist on the Hub.") from None
    except LocalEntryNotFoundError:
        raise StyleNotFoundError(
            f"{repo_id}: not in the local cache and the Hub cannot be reached (offline or HF_HUB_OFFLINE=1). "
            "Connect to the network (and unset HF_HUB_OFFLINE) and try again: once downloaded, it works offline."
        ) from None
    except HFValidationError as e:
        raise StyleNotFoundError(f"{repo_id}: not a valid style folder or Hub repo id ({e}).") from None
    except HfHubHTTPError as e:
        raise HubError(f"{repo_id}: {_http_error_hint(e)}") from None
    except OfflineModeIsEnabled:
        raise HubError(f"{repo_id}: the Hub is switched off (HF_HUB_OFFLINE=1); unset it to reach the Hub.") from None
    except (httpx2.TransportError, ConnectionError, TimeoutError) as e:  # unreachable, dropped, timed out
        raise HubError(f"{repo_id}: the Hub could not be reached or dropped the connection ({type(e).__name__}: "
                       f"{str(e)[:200]}). Check your network (and HF_ENDPOINT), then try again.") from None


def _http_error_hint(e: Exception) -> str:
    """What an HTTP error from the Hub means for the user, and what to do."""
    status = _status(e)
    server = (getattr(e, "server_message", None) or "").strip().splitlines()
    said = f" The Hub said: {server[0][:200]}" if server else ""
    if status == "401":
        return ("the Hub rejected the token (HTTP 401). Log in with `hf auth login` or set HF_TOKEN to a valid "
                "token (with write access, to push)." + said)
    if status == "403":
        return ("the token may not do this (HTTP 403): it needs write access to this namespace. "
                "Use a write token of the owner, or push to your own namespace." + said)
    if status in ("409", "412"):
        return (f"conflict (HTTP {status}): the repo changed on the Hub meanwhile, or exists with other content. "
                "Pull or inspect it, then try again." + said)
    if status == "429":
        return "rate limited by the Hub (HTTP 429); wait a little and try again." + said
    if status.startswith("5"):
        return f"the Hub had a server error (HTTP {status}); try again later." + said
    return f"the Hub refused the request (HTTP {status})." + said


def _status(e: Exception) -> str:
    response = getattr(e, "response", None)
    return str(getattr(response, "status_code", "?"))


def validate_architecture(channels: Any, num_residual: Any) -> None:
    """Refuse architecture values out of range before anything is allocated."""
    for name, value, hi in (("channels", channels, MAX_CHANNELS), ("num_residual", num_residual, MAX_RESIDUAL_BLOCKS)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
            raise InvalidStyleError(f"config.json: {name}={value!r} is out of range (an integer from 1 to {hi}).")


def _refuse_missing_weights(model_id: str, names: list[str]) -> None:
    pickles = [n for n in names if n in PICKLE_NAMES or n.endswith((".pth", ".pt", ".bin", ".ckpt", ".pkl"))]
    if pickles:
        raise UnsafeWeightsError(
            f"{model_id}: has only pickled weights ({', '.join(pickles)}), which fastnst never loads because "
            f"unpickling can run arbitrary code. Convert them to {WEIGHTS_NAME} with safetensors in a trusted environment."
        )
    raise InvalidStyleError(f"{model_id}: no {WEIGHTS_NAME} found. A style needs {CONFIG_NAME} and {WEIGHTS_NAME}.")


def load_weights(model: nn.Module, weights: Path, map_location: str = "cpu") -> None:
    """Load a safetensors file into ``model``, refusing pickles, wrong shapes, missing tensors and NaNs."""
    with open(weights, "rb") as f:
        head = f.read(8)
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise UnsafeWeightsError(f"{weights}: is a pickle/zip checkpoint, not safetensors; it is never unpickled.")
    try:
        state = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UnsafeWeightsError(f"{weights}: not a valid safetensors file ({e}). Re-download or re-export it.") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise InvalidStyleError(
            f"{weights}: tensors do not match config.json's architecture "
            f"(missing: {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected: {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})."
        )
    for k, v in state.items():
        if v.shape != expected[k].shape:
            raise InvalidStyleError(f"{weights}: tensor {k} has shape {tuple(v.shape)}, expected {tuple(expected[k].shape)}.")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise InvalidStyleError(f"{weights}: tensor {k} holds NaN or infinite values.")
    model.load_state_dict(state, strict=True)


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
