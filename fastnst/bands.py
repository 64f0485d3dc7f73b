"""Stylizing an image too large for one pass: in horizontal bands, with the whole image's statistics.

Instance norm makes every output pixel depend on statistics of the whole image, so pieces stylized
on their own disagree (seams), and statistics measured on downscaled copies are only close to the
full-resolution ones: the shared-statistics tiles this replaced were 1-12 grey levels off the
untiled output, more the stronger a style paints (docs/quality §8, §18, §25). Here every norm uses
the whole image's own statistics. The layers at full and half resolution, where the memory is, run
band by band, one pass per norm to measure its statistics (each band reads ``HALO`` rows beyond its
own, more than the receptive field, and is cropped back, so the activations are exactly the whole
image's); the residual trunk, at a quarter of the resolution (a 16th of the pixels), runs whole.
The output is the untiled network's up to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from .model import MeanCentre, RecordsStats, TransformerNet, UpsampleConv, pad_input

#: Rows (at full resolution) each band reads beyond its own on either side: over the receptive field of
#: the layers run in bands (the encoder's 7 px, the decoder's 13 px), and a multiple of the network's stride 4.
HALO = 16

Stats = tuple[torch.Tensor, torch.Tensor]


def stylize_in_bands(model: TransformerNet, x: torch.Tensor, band_rows: int,
                     memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """``model(x)`` (eval mode, so clamped to [0, 1]) for one image ``x`` (1x3xHxW, on the model's device and
    dtype), with the full- and half-resolution layers run on bands of ``band_rows`` rows and the trunk in
    ``memory_format``; float32 on the CPU."""
    if x.shape[0] != 1:
        raise ValueError(f"stylize_in_bands takes one image at a time, not a batch of {x.shape[0]}.")
    h, w = x.shape[-2:]
    xp = pad_input(x)
    rows = max(4, int(band_rows) // 4 * 4)
    var, mean = torch.var_mean(xp.float(), dim=(2, 3), keepdim=True, correction=0)
    known: list[tuple[RecordsStats, Stats]] = [(m, (mean, var)) for m in model.skip.modules() if isinstance(m, MeanCentre)]

    # Encoder: each norm's statistics from one pass over the bands; the last layer's input to its norm,
    # a quarter of the resolution, is kept whole and normalised as usual, then the residual trunk runs whole.
    scale = 1.0
    for k, layer in enumerate(model.encoder):
        scale /= layer[1].stride[0]
        pre_norm = nn.Sequential(*model.encoder[:k], *list(layer)[:2])
        with RecordsStats.replaying(known):
            if k < len(model.encoder) - 1:
                known.append((layer[2], _moments(_bands(pre_norm, xp, 1.0, scale, rows))))
            else:
                trunk_in = torch.cat([y for _, _, y in _bands(pre_norm, xp, 1.0, scale, rows)], dim=2
                                     ).contiguous(memory_format=memory_format)
    trunk = model.residuals(nn.Sequential(*list(model.encoder[-1])[2:])(trunk_in))
    del trunk_in

    # Decoder: the same, from the trunk's output, then the output band by band with the input skip.
    ups = [m for m in model.decoder if isinstance(m, UpsampleConv)]
    up_scale = scale
    for j, up in enumerate(ups):
        up_scale *= 2
        conv = nn.Sequential(*list(up.conv)[:2])  # the layer's padding and convolution, before its norm

        def pre_norm(t: torch.Tensor, j: int = j, up: UpsampleConv = up, conv: nn.Module = conv) -> torch.Tensor:
            for u in ups[:j]:
                t = u(t)
            return conv(up.upsampled(t))

        with RecordsStats.replaying(known):
            known.append((up.conv[2], _moments(_bands(pre_norm, trunk, scale, up_scale, rows))))
    out = torch.empty(1, 3, *xp.shape[-2:])
    with RecordsStats.replaying(known):
        for top, bottom, y in _bands(model.decoder, trunk, scale, 1.0, rows):
            if model.input_skip:
                y = y + model.skip(xp[..., top:bottom, :])
            out[..., top:bottom, :] = y.float().cpu()
    return out[..., :h, :w].clamp_(0, 1)


def _bands(fn: Callable[[torch.Tensor], torch.Tensor], t: torch.Tensor, t_scale: float, out_scale: float,
           rows: int) -> Iterator[tuple[int, int, torch.Tensor]]:
    """``fn`` on horizontal bands of ``t`` (a padded image at ``t_scale`` of full resolution, or a layer's
    activations), each read with ``HALO`` rows more on either side; yields each band's rows
    (top, bottom, at full resolution) and ``fn``'s output there, at ``out_scale``, halo cropped off."""
    height = round(t.shape[-2] / t_scale)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        lo, hi = max(0, top - HALO), min(height, bottom + HALO)
        y = fn(t[..., round(lo * t_scale):round(hi * t_scale), :])
        yield top, bottom, y[..., round((top - lo) * out_scale):round((bottom - lo) * out_scale), :]


def _moments(bands: Iterator[tuple[int, int, torch.Tensor]]) -> Stats:
    """Per-channel (mean, variance) over all the bands' pixels together, as an instance norm records them."""
    total = squares = None
    count = 0
    for _, _, y in bands:
        y = y.double()
        s, sq = y.sum(dim=(0, 2, 3)), y.square().sum(dim=(0, 2, 3))
        total, squares = (s, sq) if total is None else (total + s, squares + sq)
        count += y.shape[-2] * y.shape[-1]
    mean = total / count
    var = (squares / count - mean.square()).clamp_min(0)
    return mean.float().view(1, -1, 1, 1), var.float().view(1, -1, 1, 1)
