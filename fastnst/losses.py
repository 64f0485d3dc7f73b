"""The perceptual losses of Johnson et al. (2016). Each is a small pure function of tensors."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Batched Gram matrix normalised by C*H*W.

    ``G[b, c, c'] = sum_{h,w} phi[b, c, h, w] * phi[b, c', h, w] / (C * H * W)`` for features
    ``phi`` of shape BxCxHxW. Computed in float32 for stability under mixed precision.
    """
    b, c, h, w = features.shape
    f = features.float().reshape(b, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def feature_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Feature reconstruction loss ``||phi(y) - phi(y_c)||_2^2 / (C*H*W)``, averaged over the batch."""
    return F.mse_loss(output.float(), target.float())


def style_layer_losses(output_grams: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
                       layer_weights: Mapping[str, float] | None = None) -> dict[str, torch.Tensor]:
    """Each layer's ``w_l ||G(y) - G(y_s)||_F^2``, averaged over the batch (``w_l`` = 1 by default): the terms of
    :func:`style_loss`. ``target_grams`` (one per layer, 1xCxC or BxCxC) broadcast against the batch of outputs."""
    losses = {}
    for name, g in output_grams.items():
        diff = g - target_grams[name].to(g.dtype)
        w = 1.0 if layer_weights is None else float(layer_weights[name])
        losses[name] = w * diff.pow(2).sum(dim=(1, 2)).mean()
    return losses


def style_loss(output_grams: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
               layer_weights: Mapping[str, float] | None = None) -> torch.Tensor:
    """Style loss ``sum_layers w_l ||G(y) - G(y_s)||_F^2``, averaged over the batch (``w_l`` = 1 by default)."""
    total = torch.zeros((), device=next(iter(output_grams.values())).device)
    for loss in style_layer_losses(output_grams, target_grams, layer_weights).values():
        total = total + loss
    return total


def relative_layer_weights(target_grams: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """``w_l = 1 / ||G(y_s)||_F^2``: every layer's style error counts relative to its target.

    With raw Gram distances the shallowest layer outweighs the deepest by about 10^5 (so only
    colour is learnt, no brush strokes), and the scale depends on the loss network's input range.
    """
    return {name: 1.0 / max(float(g.float().pow(2).sum(dim=(1, 2)).mean()), 1e-12) for name, g in target_grams.items()}


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Total variation ``mean (y[i+1,j] - y[i,j])^2 + mean (y[i,j+1] - y[i,j])^2``; favours smooth output."""
    dh = image[..., 1:, :] - image[..., :-1, :]
    dw = image[..., :, 1:] - image[..., :, :-1]
    return dh.float().pow(2).mean() + dw.float().pow(2).mean()
