"""Grow a trained network, wider or deeper, while keeping the function it computes (Net2Net).

Chen, Goodfellow and Shlens, *Net2Net* (ICLR 2016): the bigger network starts as the trained one and
training continues from there instead of from scratch.

- Wider (Net2WiderNet): every channel of a layer is copied, and the next layer's weights on the copies
  are divided among them. With instance norm after every convolution a copied channel is normalised
  exactly like its original. Copies get a little noise on their incoming weights: identical copies
  receive identical gradients and would stay identical for ever.
- Deeper (Net2DeeperNet): new residual blocks after the trained ones, each starting close to the identity:
  the scale of its last instance norm small (``scale``, 0.03: 0.2 grey levels off at 256 px), its shift zero.
  At a scale of exactly 0 the block computes nothing and its convolutions get no gradient at all until the
  scale moves, which with random features it hardly does: after 600 steps the scales were 0.001-0.003 and the
  blocks added 0.2% to the trunk's signal (docs/quality §30). New blocks may be dilated.
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
    wide = TransformerNet(**{**net.config, "channels": channels})
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


def deepened(net: TransformerNet, num_residual: int, dilations: tuple[int, ...] | list[int] = (),
             scale: float = 0.03) -> TransformerNet:
    """``net`` with ``num_residual`` residual blocks (at least its own): the new blocks follow the trained ones, their
    last instance norm's scale at ``scale`` and shift at 0, so the deeper network computes nearly the same function
    (exactly at ``scale`` 0, where the new blocks cannot learn). ``dilations`` (one per block of the deeper network;
    empty: all 1) must keep the trained blocks' own. Style and training metadata are kept."""
    dilations = tuple(dilations) or (1,) * num_residual
    if num_residual == net.num_residual and dilations == net.block_dilations:
        return net
    if num_residual < net.num_residual:
        raise TrainingError(f"cannot deepen a network of {net.num_residual} residual blocks to {num_residual}: "
                            f"blocks are only added, never dropped.")
    if len(dilations) != num_residual or dilations[:net.num_residual] != net.block_dilations:
        raise TrainingError(f"cannot deepen a network whose blocks have dilations {list(net.block_dilations)} to "
                            f"{list(dilations)}: the trained blocks keep theirs (only new blocks may differ).")
    deep = TransformerNet(**{**net.config, "num_residual": num_residual, "dilations": dilations})
    state = deep.state_dict()
    state.update({k: v.float() for k, v in net.state_dict().items()})
    deep.load_state_dict(state)
    with torch.no_grad():
        for block in deep.residuals[net.num_residual:]:
            norm = block.body[-1][-1]  # the last ConvLayer (no ReLU) ends in its instance norm
            norm.weight.fill_(scale)
            norm.bias.zero_()
    return deep


def grown(net: TransformerNet, like: TransformerNet) -> TransformerNet:
    """``net`` widened and deepened towards ``like``'s shape where it can be (width a divisor of ``like``'s, fewer
    blocks); otherwise as it is, for the caller to refuse the mismatch."""
    if like.channels % net.channels == 0:
        net = widened(net, like.channels)
    if like.num_residual > net.num_residual and like.block_dilations[:net.num_residual] == net.block_dilations:
        net = deepened(net, like.num_residual, like.block_dilations)
    return net
