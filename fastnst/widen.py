"""Widen a trained network to more channels while keeping the function it computes (Net2WiderNet).

Chen, Goodfellow and Shlens, *Net2Net* (ICLR 2016): every channel of a layer is copied, and the next
layer's weights on the copies are divided among them, so the wider network starts as the trained one
and training continues from there instead of from scratch. With instance norm after every convolution
a copied channel is normalised exactly like its original. Copies get a little noise on their incoming
weights: identical copies receive identical gradients and would stay identical for ever.
"""

from __future__ import annotations

import torch

from .errors import TrainingError
from .model import TransformerNet


def widened(net: TransformerNet, channels: int, noise: float = 0.02, seed: int = 0) -> TransformerNet:
    """``net`` at width ``channels`` (a multiple of its own): channel ``j`` of every layer is a copy of
    channel ``j mod width``; ``noise`` (relative to each layer's weight spread) on the copies' incoming
    weights lets them part during training. Style and training metadata are kept."""
    if channels == net.channels:
        return net
    if channels < net.channels or channels % net.channels:
        raise TrainingError(f"cannot widen a network of width {net.channels} to {channels}: "
                            f"the new width must be a multiple of the old one.")
    wide = TransformerNet(**{**net.architecture, "channels": channels}, style=net.style, training=net.training_info)
    old = net.state_dict()
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, new in wide.state_dict().items():
        src = old[key].float()
        if src.shape == new.shape:  # the skip's gain, and anything of fixed width
            state[key] = src
            continue
        w = src[torch.arange(new.shape[0]) % src.shape[0]]  # output channel j: a copy of j mod width
        if w.dim() == 4:  # a convolution: its inputs are copies too; the copies share the original's weight
            copies = new.shape[1] // src.shape[1]
            w = w[:, torch.arange(new.shape[1]) % src.shape[1]] / copies
            fresh = torch.arange(new.shape[0]) >= src.shape[0]
            w[fresh] += noise * w.std() * torch.randn(w[fresh].shape, generator=gen)
        state[key] = w
    wide.load_state_dict(state)
    return wide
