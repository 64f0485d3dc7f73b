"""Several styles in one network: conditional instance normalisation (Dumoulin et al., 2017).

*A Learned Representation for Artistic Style*: the convolutions are shared by every style, and
each style has only its own scale and shift in every instance norm. Training N styles together
costs little more than training one, and the shared convolutions learn from all of them.

A trained :class:`MultiStyleNet` is never shipped as such: :meth:`MultiStyleNet.export` gives
one ordinary :class:`~fastnst.model.TransformerNet` per style (the shared convolutions plus that
style's norm parameters), so the Hub format and every loader stay as they are, and
:meth:`MultiStyleNet.from_styles` rebuilds the joint network from such exported folders to
continue training.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import TrainingError
from .model import InstanceNorm, TransformerNet
from .grow import grown


class ConditionalInstanceNorm(nn.Module):
    """Instance norm whose scale and shift are rows of an ``N x C`` table, picked per image."""

    def __init__(self, num_styles: int, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_styles, channels))
        self.bias = nn.Parameter(torch.zeros(num_styles, channels))
        self.style: torch.Tensor | None = None  # B style indices, set by MultiStyleNet.forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert self.style is not None, "MultiStyleNet.forward sets the style indices"
        y = F.instance_norm(x, eps=self.eps)
        w, b = self.weight[self.style], self.bias[self.style]
        return y * w[:, :, None, None].to(y.dtype) + b[:, :, None, None].to(y.dtype)


class MultiStyleNet(nn.Module):
    """A :class:`TransformerNet` whose instance norms are conditional on a style index."""

    def __init__(self, base: TransformerNet, num_styles: int) -> None:
        super().__init__()
        if num_styles < 1:
            raise TrainingError("a multi-style network needs at least one style")
        self.num_styles = num_styles
        self.net = copy.deepcopy(base)
        self.norm_names: list[str] = []
        for name, module in list(self.net.named_modules()):
            if isinstance(module, InstanceNorm):
                cin = ConditionalInstanceNorm(num_styles, module.num_features, module.eps)
                with torch.no_grad():  # every style starts from the base network's own scale and shift
                    cin.weight.copy_(module.weight.detach().expand(num_styles, -1))
                    cin.bias.copy_(module.bias.detach().expand(num_styles, -1))
                parent_name, _, child = name.rpartition(".")
                setattr(self.net.get_submodule(parent_name), child, cin)
                self.norm_names.append(name)

    def norms(self) -> list[ConditionalInstanceNorm]:
        return [self.net.get_submodule(n) for n in self.norm_names]

    def forward(self, x: torch.Tensor, style: torch.Tensor | int) -> torch.Tensor:
        """Stylize the batch ``x``, image ``i`` in style ``style[i]`` (or all in one style index)."""
        ids = torch.as_tensor(style, device=x.device).long()
        if ids.dim() == 0:
            ids = ids.expand(x.shape[0])
        for m in self.norms():
            m.style = ids
        try:
            return self.net(x)
        finally:
            for m in self.norms():
                m.style = None

    @torch.no_grad()
    def export(self, index: int, **config: object) -> TransformerNet:
        """Style ``index`` as an ordinary TransformerNet (fp32, on the CPU); ``config`` as its ``style``/``training``."""
        net = self.net
        single = TransformerNet(**net.architecture, **config)  # type: ignore[arg-type]
        norm_params = {f"{n}.{p}" for n in self.norm_names for p in ("weight", "bias")}
        state = {k: (v[index] if k in norm_params else v).detach().float().cpu() for k, v in net.state_dict().items()}
        single.load_state_dict(state)
        return single

    @classmethod
    def from_styles(cls, styles: Sequence[TransformerNet | None], like: TransformerNet) -> "MultiStyleNet":
        """A joint network from exported styles (``None``: a new style, starting from the first given one's norms).

        The shared convolutions are taken from the first given style; styles exported from one
        joint network share them exactly (up to their saved precision). The upsampling may differ
        from ``like``'s (the weights fit either): a nearest-neighbour style can be continued as bilinear.
        So may the skip's centring: a plain-skip style continued with a centred skip starts from nearly
        the same function (:meth:`~fastnst.model.TransformerNet.switch_skip_centring`).
        A style without a skip gain continued with one starts with the gain at 1, and a narrower or shallower
        style (width a divisor of ``like``'s, fewer residual blocks, the same dilations on those) starts grown to
        ``like``'s shape, computing nearly the same function; a deeper one starts without its last blocks, with a
        warning (:func:`~fastnst.grow.grown`).
        """
        if not any(s is not None for s in styles):
            raise TrainingError("from_styles needs at least one trained style")
        styles = [grown(s, like) if s is not None else s for s in styles]
        given = [s for s in styles if s is not None]
        for s in given:
            shape, wanted = (s.channels, s.num_residual, s.dilations, s.input_skip), \
                (like.channels, like.num_residual, like.dilations, like.input_skip)
            if shape != wanted:
                flags = f"--channels {s.channels} --num-residual {s.num_residual}"
                if s.dilations:
                    flags += " --dilations " + ",".join(map(str, s.dilations))
                if s.input_skip != like.input_skip:  # --no-input-skip overrides a preset that sets it
                    flags += " --input-skip" if s.input_skip else " --no-input-skip"
                raise TrainingError(
                    f"cannot warm-start from a style with channels={s.channels}, num_residual={s.num_residual}, "
                    f"dilations={list(s.block_dilations)}, input_skip={s.input_skip}: this run trains "
                    f"channels={like.channels}, num_residual={like.num_residual}, "
                    f"dilations={list(like.block_dilations)}, input_skip={like.input_skip}. To continue it as it is, "
                    f"train with {flags}.")
            if s.skip_gain and not like.skip_gain:
                raise TrainingError("cannot warm-start from a style with a skip gain without one: add --skip-gain.")
        base = copy.deepcopy(like)
        state = {k: v.float() for k, v in given[0].state_dict().items()}
        if like.skip_gain and not given[0].skip_gain:  # the gain starts at 1: the same function
            state.update({k: v for k, v in base.state_dict().items() if k not in state})
        base.load_state_dict(state)
        if given[0].centred_skip != like.centred_skip:
            base.switch_skip_centring(given[0].centred_skip)
        joint = cls(base, len(styles))
        with torch.no_grad():
            for i, s in enumerate(styles):
                src = dict((s or given[0]).named_modules())
                for name, m in zip(joint.norm_names, joint.norms()):
                    m.weight[i] = src[name].weight.float()
                    m.bias[i] = src[name].bias.float()
        return joint
