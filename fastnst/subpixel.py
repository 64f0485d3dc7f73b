"""The style network's decoder rewritten in sub-pixel form: the same function, cheaper to run.

The decoder (two upsampling layers and the 9x9 output convolution) is the slow part of inference
on CPUs, out of proportion to its share of the FLOPs (measured in ``benchmarks/bench_inference.py``
and the README's "Speed"). Nearest-neighbour upsampling writes every value four times before a 3x3 convolution reads
it, and the 9x9 output convolution has only 3 output channels, which convolution kernels compute
at a fraction of their peak. :class:`SubpixelNet` computes the same function with

* upsample + reflection pad + 3x3 convolution as one stride-2 4x4 **transposed convolution** of
  the replicate-padded input (reflecting a nearest-upsampled map by one pixel is replicating the
  original; each output pixel then sees 2x2 input pixels: 16 instead of 36 multiply-adds per
  input pixel and output channel), and
* the 9x9 output convolution as a stride-2 10x10 convolution with 12 output channels, the four
  2x2 phases of each RGB output pixel, put back in place by ``pixel_shuffle`` (sub-pixel
  convolution): 4x the output channels at a quarter of the positions.

It holds no weights of its own: every module is the original network's, shared (the decoder's
weights are rearranged on each call, in microseconds), so it follows any change to the network's
weights, and recorded instance-norm statistics (video frames) work unchanged. The output
equals :class:`~fastnst.model.TransformerNet`'s up to float rounding (``tests/test_subpixel.py``).
Inference only: training runs the plain network (the VGG16 loss network, not the style network,
takes most of a training step: ``benchmarks/bench_train.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .model import TransformerNet, UpsampleConv, pad_input


def transposed_upsample_weight(w: torch.Tensor) -> torch.Tensor:
    """(Cout, Cin, 3, 3) weight of upsample-then-conv to the (Cin, Cout, 4, 4) weight of the
    equivalent stride-2 transposed convolution (input replicate-padded by 1, output cropped by 3).

    Output pixel ``o = 2i + a - 1`` (a in 0..3) gets input pixel ``i`` through the 3x3 taps ``d``
    with ``(o + d - 1) // 2 == i``, i.e. ``d in {2 - a, 3 - a}``: sums of adjacent taps, reversed.
    """
    wp = F.pad(w.float(), (1, 1, 1, 1))
    pairs = wp[..., :-1, :] + wp[..., 1:, :]
    pairs = pairs[..., :-1] + pairs[..., 1:]
    return pairs.flip(-2, -1).transpose(0, 1).to(w.dtype)


def subpixel_output_weight(w: torch.Tensor) -> torch.Tensor:
    """(Cout, Cin, k, k) stride-1 weight to the (4*Cout, Cin, k+1, k+1) stride-2 weight whose output
    channel ``4c + 2py + px`` is output channel ``c`` at pixel phase (py, px) (``pixel_shuffle`` order)."""
    phases = [F.pad(w, (px, 1 - px, py, 1 - py)) for py in range(2) for px in range(2)]
    return torch.stack(phases, 1).flatten(0, 1)


def _like(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    return w.contiguous(memory_format=fmt)


class TransposedUpsampleConv(nn.Module):
    """:class:`~fastnst.model.UpsampleConv` as one transposed convolution (its weights, norm and ReLU)."""

    def __init__(self, layer: UpsampleConv) -> None:
        super().__init__()
        self.layer = layer
        self.frozen: torch.Tensor | None = None

    def weight(self) -> torch.Tensor:
        # Rearranged on every call (microseconds; constant-folded when compiled), so never stale
        # when the network's weights change, unless frozen (for export).
        return self.frozen if self.frozen is not None else transposed_upsample_weight(self.layer.conv[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.layer.conv[1]
        y = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), _like(self.weight(), x), conv.bias,
                               stride=2, padding=3)
        for module in list(self.layer.conv)[2:]:  # instance norm, ReLU
            y = module(y)
        return y


class SubpixelOutputConv(nn.Module):
    """The 9x9 output :class:`~fastnst.model.ConvLayer` (no norm, no ReLU) as a stride-2 sub-pixel convolution."""

    def __init__(self, layer: nn.Sequential) -> None:
        super().__init__()
        self.layer = layer
        self.frozen: tuple[torch.Tensor, torch.Tensor] | None = None

    def weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        conv = self.layer[1]
        return self.frozen or (subpixel_output_weight(conv.weight), conv.bias.repeat_interleave(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.layer[1].kernel_size[0] // 2
        w, b = self.weight()
        return F.pixel_shuffle(F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), _like(w, x), b, stride=2), 2)


class SubpixelNet(nn.Module):
    """:class:`~fastnst.model.TransformerNet`'s function with the decoder in sub-pixel form.

    ``SubpixelNet(model)`` shares all of ``model``'s modules (weights, dtype, device) and does not
    change it. Takes and returns what ``model`` does in eval mode: any size (padded and cropped as
    :func:`~fastnst.model.pad_input` does), output clamped to [0, 1].
    """

    def __init__(self, model: TransformerNet) -> None:
        super().__init__()
        up1, up2, out = model.decoder
        if not (isinstance(up1, UpsampleConv) and isinstance(up2, UpsampleConv)):
            raise TypeError("SubpixelNet needs a TransformerNet decoder (two UpsampleConv layers, a ConvLayer).")
        if up1.mode != "nearest" or up2.mode != "nearest":
            raise TypeError("SubpixelNet is the same function only for nearest-neighbour upsampling.")
        self.input_skip, self.skip = model.input_skip, model.skip
        self.encoder, self.residuals = model.encoder, model.residuals
        self.decoder = nn.Sequential(TransposedUpsampleConv(up1), TransposedUpsampleConv(up2), SubpixelOutputConv(out))

    def freeze(self) -> "SubpixelNet":
        """Rearrange the decoder's weights once and keep them (ONNX export needs constant weights);
        later changes to the network's weights are then not followed."""
        with torch.no_grad():
            for m in self.decoder:
                m.frozen = None
                m.frozen = m.weight()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return self.forward_padded(pad_input(x))[..., :h, :w].clamp(0, 1)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """On an input padded by :func:`~fastnst.model.pad_input` (no crop, no clamp)."""
        y = self.decoder(self.residuals(self.encoder(x)))
        return y + self.skip(x) if self.input_skip else y
