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
- Shallower: trailing residual blocks dropped, for blocks that learnt to add next to nothing (deepened ones
  whose scale never grew carry a quarter of a 7-block file and of its trunk's time). A dropped block's shift
  never mattered: every path from it meets a convolution followed by an instance norm, which removes any
  per-channel constant; the function changes by the dropped blocks' scaled features only (:func:`block_shares`).
"""

from __future__ import annotations

import warnings

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
                            f"deepening only adds blocks (shallowed drops them).")
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


def shallowed(net: TransformerNet, num_residual: int) -> TransformerNet:
    """``net`` with only its first ``num_residual`` residual blocks (and their dilations): nearly the same function
    where the dropped blocks add little (:func:`block_shares`), exactly the same where their last norms' scales are
    0. Style and training metadata are kept."""
    if num_residual == net.num_residual:
        return net
    if not 1 <= num_residual < net.num_residual:
        raise TrainingError(f"cannot keep {num_residual} of a network's {net.num_residual} residual blocks: "
                            f"keep at least 1 and fewer than it has.")
    dilations = net.block_dilations[:num_residual]
    small = TransformerNet(**{**net.config, "num_residual": num_residual,
                              "dilations": dilations if set(dilations) != {1} else ()})
    dropped = tuple(f"residuals.{i}." for i in range(num_residual, net.num_residual))
    small.load_state_dict({k: v.float() for k, v in net.state_dict().items() if not k.startswith(dropped)})
    return small


@torch.no_grad()
def block_shares(net: TransformerNet, image: torch.Tensor) -> list[float]:
    """Each residual block's output over its input on ``image`` (1x3xHxW in [0, 1]), L2 norms less each channel's
    mean (a per-channel constant in the trunk never reaches the output): the share of the trunk's signal the block
    adds; a block near 0 can be dropped (:func:`shallowed`) without changing the output."""
    def varying(t: torch.Tensor) -> torch.Tensor:
        return (t - t.mean(dim=(2, 3), keepdim=True)).norm()

    h = net.encoder(image.float())
    shares = []
    for block in net.residuals:
        d = block.body(h)
        shares.append(float(varying(d) / varying(h)))
        h = h + d
    return shares


def last_norm_scales(net: TransformerNet) -> list[float]:
    """Each residual block's last instance norm's mean |scale| (a trained block's is about 1): how much the block
    can add, without an image (:func:`block_shares` measures it on one)."""
    return [float(block.body[-1][-1].weight.detach().abs().mean()) for block in net.residuals]


def block_span(first: int, last: int) -> str:
    """Residual blocks ``first``..``last`` (1-based) as a reader writes them: "6" or "6-7"."""
    return f"{first}" if first == last else f"{first}-{last}"


def grown(net: TransformerNet, like: TransformerNet) -> TransformerNet:
    """``net`` widened, deepened or made shallower towards ``like``'s shape where it can be (width a divisor of
    ``like``'s, the same dilations on the blocks both have); otherwise as it is, for the caller to refuse the
    mismatch. Dropping blocks warns with their scales: unlike growing, it may change what the network computes."""
    if like.channels % net.channels == 0:
        net = widened(net, like.channels)
    if like.num_residual > net.num_residual and like.block_dilations[:net.num_residual] == net.block_dilations:
        net = deepened(net, like.num_residual, like.block_dilations)
    if (like.num_residual < net.num_residual and net.block_dilations[:like.num_residual] == like.block_dilations
            and net.channels == like.channels):  # dropping trained blocks for a run that is refused anyway helps no one
        scales, first = last_norm_scales(net), like.num_residual + 1
        span = block_span(first, net.num_residual)
        dropped = f"block {span} is" if first == net.num_residual else f"blocks {span} are"
        warnings.warn(f"starting from the first {like.num_residual} of the network's {net.num_residual} residual "
                      f"blocks: {dropped} dropped (mean |scale| of their last norms: "
                      f"{', '.join(f'{s:.3f}' for s in scales[like.num_residual:])}; of the kept blocks': "
                      f"{min(scales[:like.num_residual]):.2f}-{max(scales[:like.num_residual]):.2f}). Near 0 they "
                      f"added next to nothing; otherwise the network starts off what it had learnt.", stacklevel=2)
        net = shallowed(net, like.num_residual)
    return net
