"""The training objective of a style, as one object shared by the trainer and the evaluator.

``PerceptualObjective(loss_net, style_grams, settings)`` holds everything the loss of Johnson et
al. needs (the loss network, the style's Gram matrices, the layers and weights); calling it on
an output batch and its content batch returns the three weighted terms ``(content, style, tv)``.
``fastnst.train`` minimises their sum over the transformation network's weights,
``fastnst.evaluate`` measures it for a trained network and for Gatys et al.'s optimisation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch

from .images import ImageInput, load_image, pil_to_tensor
from .loss_network import LossNetwork
from .losses import feature_loss, gram_matrix, relative_layer_weights, style_layer_losses, style_loss, total_variation
from .settings import ObjectiveSettings


class LossTerms(NamedTuple):
    """The three weighted terms of the objective (scalar tensors); their sum is the loss."""

    content: torch.Tensor
    style: torch.Tensor
    tv: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.content + self.style + self.tv

    def as_floats(self) -> dict[str, float]:
        c, s, t = (float(v) for v in self)
        return {"content": c, "style": s, "tv": t, "total": c + s + t}


def style_targets(image: ImageInput, loss_net: LossNetwork, style_layers: Sequence[str], style_size: int,
                  device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Gram matrices of the style image resized to ``style_size`` on its longest side (computed once)."""
    img = load_image(image).convert("RGB")
    scale = style_size / max(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), resample=3)
    with torch.no_grad():
        feats = loss_net(pil_to_tensor(img).to(device))
    return {name: gram_matrix(feats[name]) for name in style_layers}


class PerceptualObjective:
    """Content + style + total-variation loss of Johnson et al. with a style's settings.

    ``settings``: an :class:`~fastnst.settings.ObjectiveSettings` (a ``TrainConfig`` is one). With ``loss_scaling="relative"`` the content error is
    divided by the mean square of the content target (over the batch) and each style layer's
    error by ``||G(style)||^2``; with ``"paper"`` the raw sums are used.
    """

    def __init__(self, loss_net: LossNetwork, style_grams: Mapping[str, torch.Tensor],
                 settings: ObjectiveSettings) -> None:
        self.loss_net, self.style_grams = loss_net, dict(style_grams)
        self.content_layer, self.style_layers = settings.content_layer, tuple(settings.style_layers)
        self.content_weight, self.style_weight = float(settings.content_weight), float(settings.style_weight)
        self.tv_weight = float(settings.tv_weight)
        relative = settings.loss_scaling == "relative"
        self.layer_weights = relative_layer_weights(self.style_grams) if relative else None

    @classmethod
    def for_style(cls, settings: ObjectiveSettings, style_image: ImageInput, *, loss_network_path: str | None = None,
                  device: torch.device | str = "cpu", loss_net: LossNetwork | None = None) -> "PerceptualObjective":
        """The objective of ``settings`` and a style image; builds the loss network unless one is given
        (several styles trained together share one)."""
        if loss_net is None:
            path = loss_network_path or os.environ.get("FASTNST_LOSS_NETWORK_PATH") or None
            loss_net = LossNetwork(settings.loss_network, path=path,
                                   layers=tuple(set(settings.style_layers) | {settings.content_layer})).to(device)
        grams = style_targets(style_image, loss_net, settings.style_layers, settings.style_size, device)
        return cls(loss_net, grams, settings)

    @torch.no_grad()
    def content_target(self, content: torch.Tensor) -> torch.Tensor:
        """Features of the content images at the content layer (the target of the content term)."""
        return self.loss_net(content, layers=(self.content_layer,))[self.content_layer]

    def terms(self, output: torch.Tensor, content_target: torch.Tensor) -> LossTerms:
        """The weighted terms for ``output`` given a precomputed :meth:`content_target`."""
        scale = content_target.float().pow(2).mean() if self.layer_weights is not None else 1.0
        feats = self.loss_net(output)
        content = self.content_weight * feature_loss(feats[self.content_layer], content_target) / scale
        grams = {n: gram_matrix(feats[n]) for n in self.style_layers}
        style = self.style_weight * style_loss(grams, self.style_grams, self.layer_weights)
        tv = self.tv_weight * total_variation(output)
        return LossTerms(content, style, tv)

    @torch.no_grad()
    def style_layer_terms(self, output: torch.Tensor) -> dict[str, float]:
        """The style term of ``output`` split by layer (weighted as in :meth:`terms`, so they sum to its style term):
        the scale at which an image falls short of the painting, from colour and fine texture (relu1_2) to large
        forms (relu4_3)."""
        feats = self.loss_net(output, layers=self.style_layers)
        grams = {n: gram_matrix(feats[n]) for n in self.style_layers}
        return {n: self.style_weight * float(v)
                for n, v in style_layer_losses(grams, self.style_grams, self.layer_weights).items()}

    def __call__(self, output: torch.Tensor, content: torch.Tensor) -> LossTerms:
        """The weighted terms (content, style, tv) for ``output`` made from the ``content`` images."""
        return self.terms(output, self.content_target(content))
