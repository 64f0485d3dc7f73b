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
from huggingface_hub import ModelCard, PyTorchModelHubMixin, hf_hub_download
from huggingface_hub.errors import RemoteEntryNotFoundError
from torch import nn

from .card import DEFAULT_LICENSE, MODEL_CARD_TEMPLATE, card_variables
from .errors import InvalidStyleError, translate_hub_errors
from .styles import (ARCHITECTURE_KEYS, CONFIG_NAME, TAGS, UPSAMPLE_MODES, WEIGHTS_NAME, load_weights, read_config,
                     refuse_missing_weights, validate_architecture, validated_dilations)


AVERAGE_PHOTO_RGB = (0.485, 0.456, 0.406)  # ImageNet's mean colour, in [0, 1]


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


class RecordsStats:
    """A layer whose per-image statistics can be recorded on one image and replayed on another
    (``mode``: normal, record or replay)."""

    mode: str = "normal"
    stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def recorded_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``'s per-channel (mean, variance) in ``record`` mode (and kept), the kept ones in ``replay``."""
        if self.mode == "record":
            var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, correction=0)
            self.stats = (mean, var)
        assert self.stats is not None, "replay needs recorded statistics"
        mean, var = self.stats
        return mean.to(x.dtype), var.to(x.dtype)

    @staticmethod
    @contextmanager
    def replaying(layer_stats: list[tuple["RecordsStats", tuple[torch.Tensor, torch.Tensor]]]) -> Iterator[None]:
        """Within the block, each listed layer uses its given (mean, variance) instead of its own; others are untouched."""
        try:
            for m, st in layer_stats:
                m.mode, m.stats = "replay", st
            yield
        finally:
            for m, _ in layer_stats:
                m.mode, m.stats = "normal", None


class InstanceNorm(nn.InstanceNorm2d, RecordsStats):
    """Affine instance norm that can reuse statistics recorded on another image.

    Video frames share statistics recorded on one frame, so the texture does not flicker; the bands
    of a large image (:mod:`fastnst.bands`) share the whole image's, measured band by band.
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one_image = x.shape[0] == 1 and not torch.is_grad_enabled() and not torch.onnx.is_in_onnx_export()
        if one_image and self.mode != "replay" and self.batch_norm_drifts(x):
            # measure the statistics apart (pairwise sums), then normalise with them in one fused pass
            var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
            if self.mode == "record":
                self.stats = (mean.view(1, -1, 1, 1), var.view(1, -1, 1, 1))
            return self._normalised(x, mean, var)
        if self.mode == "normal":
            if one_image:
                # Inference on one image: batch norm with batch statistics is the same operation, and
                # runs on channels_last directly, where instance_norm reshapes through two copies.
                return F.batch_norm(x, None, None, self.weight.to(x.dtype), self.bias.to(x.dtype), True, 0.0, self.eps)
            return super().forward(x)
        if self.mode == "record" and one_image:
            # one image: batch norm's own pass gives the statistics with the output (var_mean on a copy
            # in float32 cost a video key frame 3x the plain pass)
            y, mean, invstd = torch.native_batch_norm(x, self.weight.to(x.dtype), self.bias.to(x.dtype), None, None,
                                                      True, 0.0, self.eps)
            self.stats = (mean.float().view(1, -1, 1, 1), (invstd.float().pow(-2) - self.eps).view(1, -1, 1, 1))
            return y
        mean, var = self.recorded_stats(x)
        if mean.shape[0] == 1 and not torch.onnx.is_in_onnx_export():  # one set for all: batch norm's fused kernel
            return self._normalised(x, *self.stats)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        return y * self.weight.view(1, -1, 1, 1).to(x.dtype) + self.bias.view(1, -1, 1, 1).to(x.dtype)

    def _normalised(self, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """``x`` normalised with the given per-channel (mean, variance), as float32, by batch norm's fused kernel."""
        m, v = mean.float().reshape(-1), var.float().reshape(-1)
        return F.batch_norm(x, m, v, self.weight.float(), self.bias.float(), False, 0.0, self.eps)

    @staticmethod
    def batch_norm_drifts(x: torch.Tensor) -> bool:
        """Whether torch's batch norm would measure one image's statistics inaccurately: on the CPU, float32 in
        channels_last, its single sweep sums in float32 and drifts with the pixel count. Measuring them apart takes
        several more sweeps (``benchmarks/bench_bands.py`` times the whole pass both ways), so it is done only above
        the Stylizer's band size (4 MP), which images reach whole only when a caller raises ``tile_pixels``."""
        return (x.device.type == "cpu" and x.dtype == torch.float32 and x.shape[2] * x.shape[3] > 2048 * 2048
                and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())


class MeanCentre(nn.Module, RecordsStats):
    """The photo minus its per-channel mean colour: the centred input skip.

    The network's residual cannot see the photo's mean colour (its first instance norm removes
    any per-channel offset of the input), so a plain skip passes that colour to the output
    untouched and a bright photo stays bright whatever the painting. With the mean taken out of
    the skip, the network alone sets the output's mean colour, as in the paper's network. Like
    :class:`InstanceNorm`, the mean can be recorded on one image and replayed on another, or on a band of it.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True) if self.mode == "normal" else self.recorded_stats(x)[0]
        return x - mean


class SkipGain(nn.Module):
    """A learnt factor per colour channel on the input skip, ``1 + 10 * gain`` with ``gain`` starting at 0.

    The residual cannot see the photo's contrast (its first instance norm removes any global scaling),
    so with a fixed skip nothing can turn the photo's own detail down. Starting at 1, a network
    warm-started without the factor begins as the same function; the 10 lets Adam, whose steps are
    about the learning rate whatever the gradient, move it by a useful amount in a few hundred steps.
    """

    def __init__(self, skip: nn.Module) -> None:
        super().__init__()
        self.inner = skip
        self.gain = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (1 + 10 * self.gain.to(x.dtype)) * self.inner(x)


class ConvLayer(nn.Sequential):
    """Reflection padding + convolution (+ optional instance norm and ReLU)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm: bool = True, relu: bool = True,
                 dilation: int = 1):
        layers: list[nn.Module] = [nn.ReflectionPad2d(dilation * (kernel // 2)),
                                   nn.Conv2d(cin, cout, kernel, stride, dilation=dilation)]
        if norm:
            layers.append(InstanceNorm(cout))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class UpsampleConv(nn.Module):
    """2x upsampling (nearest-neighbour or bilinear) then a convolution: no transposed-convolution checkerboard."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, mode: str = "nearest") -> None:
        super().__init__()
        self.conv = ConvLayer(cin, cout, kernel)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.upsampled(x))

    def upsampled(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` at twice the size, as this layer's convolution sees it."""
        align = None if self.mode == "nearest" else False  # nearest takes no align_corners
        return F.interpolate(x, scale_factor=2, mode=self.mode, align_corners=align)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions added to their input; ``dilation`` spreads their taps (same weights, wider reach)."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3, dilation=dilation),
                                  ConvLayer(channels, channels, 3, relu=False, dilation=dilation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformerNet(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="fastnst",
    tags=list(TAGS),  # a copy: the mixin appends its own tags to it
    pipeline_tag="image-to-image",
    license=DEFAULT_LICENSE,
    model_card_template=MODEL_CARD_TEMPLATE,
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
        upsample: the decoder's 2x upsampling, ``nearest`` (pytorch/examples) or ``bilinear``. Trained
            on 256 px crops, the nearest-neighbour decoder learnt a 4-pixel grid in flat areas (its
            lattice); bilinear upsampling has no lattice to lock texture to.
        centred_skip: with ``input_skip``, add the photo minus its mean colour (:class:`MeanCentre`),
            so the network rather than the photo sets the output's mean colour.
        skip_gain: with ``input_skip``, multiply the skip by a learnt factor per colour channel
            (:class:`SkipGain`), so the network can turn the photo's own detail down.
        dilations: one per residual block (empty: all 1). A block of dilation d reaches d times as far
            with the same weights: the trunk's receptive field grows without a larger file, for the
            painting's large forms (the style error at relu4_3, whose field is 92 px).

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
        upsample: str = "nearest",
        centred_skip: bool = False,
        skip_gain: bool = False,
        dilations: list[int] | tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        validate_architecture(channels, num_residual)
        self.dilations = validated_dilations(dilations, int(num_residual))
        for key, value in (("style", style), ("training", training)):
            if value is not None and not isinstance(value, dict):
                raise InvalidStyleError(f"config.json: {key} must be a JSON object, not {type(value).__name__}.")
        self.channels, self.num_residual = int(channels), int(num_residual)
        self.style, self.training_info = dict(style or {}), dict(training or {})
        if not isinstance(input_skip, bool):
            raise InvalidStyleError(f"config.json: input_skip must be true or false, not {input_skip!r}.")
        for key, value in (("centred_skip", centred_skip), ("skip_gain", skip_gain)):  # options of the skip
            if not isinstance(value, bool) or (value and not input_skip):
                raise InvalidStyleError(f"config.json: {key} must be true or false, and true only with input_skip "
                                        f"(input_skip={input_skip!r}, {key}={value!r}).")
        self.input_skip, self.centred_skip, self.skip_gain = input_skip, centred_skip, skip_gain
        self.skip = MeanCentre() if centred_skip else nn.Identity()
        if skip_gain:
            self.skip = SkipGain(self.skip)
        if upsample not in UPSAMPLE_MODES:
            raise InvalidStyleError(f"config.json: upsample must be one of {', '.join(UPSAMPLE_MODES)}, not {upsample!r}.")
        self.upsample = upsample
        c = self.channels
        self.encoder = nn.Sequential(ConvLayer(3, c, 9), ConvLayer(c, 2 * c, 3, 2), ConvLayer(2 * c, 4 * c, 3, 2))
        self.residuals = nn.Sequential(*[ResidualBlock(4 * c, d) for d in self.block_dilations])
        self.decoder = nn.Sequential(
            UpsampleConv(4 * c, 2 * c, mode=upsample), UpsampleConv(2 * c, c, mode=upsample),
            ConvLayer(c, 3, 9, norm=False, relu=False)
        )
        with torch.no_grad():
            if input_skip:  # start as the exact identity: training only has to learn what the style changes
                self.decoder[-1][1].weight.zero_()
                self.decoder[-1][1].bias.zero_()
            else:  # start from mid-grey rather than black: early training converges faster
                self.decoder[-1][1].bias.fill_(0.5)

    @property
    def architecture(self) -> dict[str, Any]:
        """The network's shape as keyword arguments of this class (``config`` less style and training)."""
        return {k: getattr(self, k) for k in ARCHITECTURE_KEYS}

    @property
    def block_dilations(self) -> tuple[int, ...]:
        """Each residual block's dilation (``dilations`` with the default 1s written out)."""
        return self.dilations or (1,) * self.num_residual

    @property
    def dilation_reach(self) -> int:
        """Pixels (at full size, on each side) the dilated blocks reach beyond the same blocks undilated: a 3x3
        convolution of dilation d at a quarter of the resolution reaches 4 (d - 1) further, two per block."""
        return 8 * sum(d - 1 for d in self.block_dilations)

    @property
    def config(self) -> dict[str, Any]:
        return {**self.architecture, "style": self.style, "training": self.training_info}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.forward_padded(pad_input(x))[..., :h, :w]
        return y if self.training else y.clamp(0, 1)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The network on an input already padded by :func:`pad_input` (no cropping, no clamping).

        Free of Python-level shape logic, so it exports to ONNX with dynamic height and width.
        """
        y = self.decoder(self.residuals(self.encoder(x)))
        return y + self.skip(x) if self.input_skip else y

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

    @torch.no_grad()
    def switch_skip_centring(self, was_centred: bool) -> None:
        """Adapt weights trained with the other kind of input skip (``was_centred``) to this network's:
        the output layer's bias takes over (or gives back) an average photo's mean colour, so a warm
        start begins close to the function it was trained to be."""
        shift = torch.tensor(AVERAGE_PHOTO_RGB, device=self.decoder[-1][1].bias.device)
        self.decoder[-1][1].bias.add_(shift if not was_centred else -shift)

    def recorded_layers(self) -> list[RecordsStats]:
        """The layers whose per-image statistics :meth:`norm_stats` records, in order."""
        return [m for m in self.modules() if isinstance(m, RecordsStats)]

    def norm_stats(self, x: torch.Tensor, net: nn.Module | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each instance norm's (and a centred skip's) per-image (mean, variance) on ``x`` (Bx3xHxW), in
        layer order, from one forward pass through ``net`` (default: this network): for video
        frames to share them."""
        with self.recording_norm_stats() as stats, torch.inference_mode():
            (net or self)(x)
        return stats

    @contextmanager
    def recording_norm_stats(self) -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
        """Within the block, the instance norms (and a centred skip) record their per-image statistics;
        the list it yields holds them, in layer order, when the block ends (see :meth:`norm_stats`)."""
        norms, stats = self.recorded_layers(), []
        try:
            for m in norms:
                m.mode = "record"
            yield stats
            stats.extend(m.stats for m in norms)
        finally:
            for m in norms:
                m.mode, m.stats = "normal", None

    @contextmanager
    def replaying_norm_stats(self, stats: list[tuple[torch.Tensor, torch.Tensor]]) -> Iterator[None]:
        """Within the block, the instance norms use ``stats`` (from :meth:`norm_stats`; a batch of 1
        applies to every image, a batch of B to the B images of each call) instead of their own."""
        norms = self.recorded_layers()
        if len(stats) != len(norms):
            raise ValueError(f"{len(stats)} recorded statistics for {len(norms)} recorded layers.")
        with RecordsStats.replaying(list(zip(norms, stats))):
            yield

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

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The card ``save_pretrained`` writes: fastnst's template filled from this network's config."""
        data, variables = card_variables(self.config)
        return ModelCard.from_template(data, template_str=MODEL_CARD_TEMPLATE, **variables)

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
        model = cls(**{k: v for k, v in model_kwargs.items() if k in (*ARCHITECTURE_KEYS, "style", "training")})
        path = Path(model_id)
        if path.is_dir():
            weights = path / WEIGHTS_NAME
            if not weights.is_file():
                refuse_missing_weights(model_id, [p.name for p in path.iterdir()])
        else:
            try:
                weights = Path(hf_hub_download(model_id, WEIGHTS_NAME, revision=revision, cache_dir=cache_dir,
                                               force_download=force_download, local_files_only=local_files_only,
                                               token=token))
            except RemoteEntryNotFoundError:  # (not cached while offline is translate_hub_errors' job)
                refuse_missing_weights(model_id, [])
        load_weights(model, weights, map_location=map_location)
        return model
