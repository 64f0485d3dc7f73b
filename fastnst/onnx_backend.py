"""ONNX export of a style network and an onnxruntime backend with the :class:`~fastnst.Stylizer` interface.

``fastnst export STYLE --format onnx -o style.onnx`` writes one self-contained ``.onnx`` file
(weights inside, opset 17, dynamic batch, height and width; the style's config.json in its
metadata), the network in its sub-pixel form (:mod:`fastnst.subpixel`: a transposed convolution
for each upsampling layer, ``DepthToSpace`` after the output convolution). The graph takes an
input already padded by :func:`fastnst.model.pad_input` (height and width multiples of 4, at
least 16) and returns the clamped output at that size: padding and cropping stay outside the
graph, where they are plain array slicing, so every H and W works.

:class:`OnnxStylizer` runs such a graph with onnxruntime and shares everything else (loading,
resizing, strength, colour preservation, batching, bands) with :class:`~fastnst.Stylizer`.
Install it with ``pip install fastnst[onnx]`` (onnx, onnxruntime).
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .files import atomic_path
from .model import TransformerNet, pad_input
from .stylizer import DEFAULT_TILE_PIXELS, Stylizer
from .subpixel import SubpixelNet

from .settings import ONNX_OPSET as OPSET
INPUT, OUTPUT = "image", "stylized"
#: Metadata key of the style's config.json inside an exported file.
CONFIG_KEY = "fastnst.config"


class _Exported(torch.nn.Module):
    """What goes into the graph: the padded-input network in sub-pixel form, clamped to [0, 1]."""

    def __init__(self, model: TransformerNet) -> None:
        super().__init__()
        self.model = SubpixelNet(model).freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_padded(x).clamp(0, 1)


def export_bytes(model: TransformerNet, opset: int = OPSET) -> bytes:
    """The serialised ONNX model of ``model`` (float32, dynamic batch/height/width)."""
    import onnx

    net = _Exported(_float32_copy(model)).eval()
    buf = io.BytesIO()
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        # the TorchScript exporter's deprecation notice and its note that instance norm ignores
        # running statistics (fastnst's norms never keep any)
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, 64, 64),), buf, dynamo=False, opset_version=opset,
                          input_names=[INPUT], output_names=[OUTPUT], dynamic_axes={INPUT: axes, OUTPUT: axes},
                          do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.helper.set_model_props(proto, {CONFIG_KEY: json.dumps(model.config), "producer": "fastnst"})
    return proto.SerializeToString()


def export_onnx(model: TransformerNet, path: str | os.PathLike, opset: int = OPSET) -> Path:
    """Write ``model`` as one self-contained .onnx file (atomically); returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(export_bytes(model, opset))
    return path


def _float32_copy(model: TransformerNet) -> TransformerNet:
    """A float32, contiguous-format, eval-mode copy (styles are often saved in fp16; the caller's model is untouched)."""
    copy = TransformerNet(**model.config)
    copy.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    return copy.eval()


def session_options(threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
    return opts


def pick_providers(device: str | None = None) -> list[str]:
    """onnxruntime execution providers for ``device`` (None/auto: CUDA when this onnxruntime has it, else CPU)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    kind = str(device or "auto").split(":")[0]
    if kind in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if kind == "cuda":
        raise ValueError("device 'cuda' needs onnxruntime-gpu (this onnxruntime has "
                         f"{', '.join(available)}); use --device cpu or --backend torch.")
    if kind not in ("auto", "cpu"):
        raise ValueError(f"the onnx backend runs on cpu or cuda, not {device!r}.")
    return ["CPUExecutionProvider"]


class OnnxStylizer(Stylizer):
    """:class:`~fastnst.Stylizer` whose network runs in onnxruntime (float32).

    >>> stylizer = OnnxStylizer.from_pretrained("starry_night")     # or an exported .onnx file
    >>> stylizer("photo.jpg", max_size=1024).save("out.png")

    Images larger than ``tile_pixels`` are stylized in bands like the torch backend's, which needs the
    network's layers one by one, so they run through the torch network (float32, CPU); so do images
    with recorded statistics to replay. A Stylizer built from a bare .onnx file has no torch network
    and runs every image whole.
    """

    def __init__(self, model: TransformerNet | None = None, onnx_model: bytes | str | os.PathLike | None = None, *,
                 device: str | None = None, threads: int | None = None, tile_pixels: int = DEFAULT_TILE_PIXELS,
                 config: dict[str, Any] | None = None) -> None:
        import onnxruntime as ort

        if model is None and onnx_model is None:
            raise ValueError("OnnxStylizer needs a TransformerNet, an ONNX model, or both.")
        if model is not None:
            super().__init__(model, device="cpu", precision="fp32", tile_pixels=tile_pixels)
        else:  # a bare .onnx file: no torch network, so no bands
            self.device, self.dtype, self.model, self.fast, self.net = torch.device("cpu"), torch.float32, None, None, None
            self._replaying = False
            self.tile_pixels = 2**62
        if onnx_model is None:
            onnx_model = export_bytes(self.model)
        elif not isinstance(onnx_model, bytes):
            onnx_model = str(onnx_model)
        self.session = ort.InferenceSession(onnx_model, session_options(threads), providers=pick_providers(device))
        meta = self.session.get_modelmeta().custom_metadata_map
        self.config = config or (model.config if model is not None else json.loads(meta.get(CONFIG_KEY, "{}")))

    @classmethod
    def from_pretrained(cls, style: str | os.PathLike, *, revision: str | None = None, token: str | bool | None = None,
                        local_files_only: bool = False, device: str | None = None, precision: str = "auto",
                        **kwargs: Any) -> "OnnxStylizer":
        """Load a style (embedded name, folder or Hub repo id: exported on the fly) or an exported .onnx file."""
        if precision not in ("auto", "fp32"):
            raise ValueError(f"the onnx backend runs in fp32; precision {precision!r} needs --backend torch.")
        if str(style).endswith(".onnx") and Path(style).is_file():
            return cls(None, Path(style), device=device, **kwargs)
        from .styles import resolve_style

        model = TransformerNet.from_pretrained(resolve_style(style), revision=revision, token=token,
                                               local_files_only=local_files_only)
        return cls(model, device=device, **kwargs)

    @property
    def name(self) -> str:
        return str((self.config.get("style") or {}).get("name", "style"))

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if self._replaying:
            return super()._run(x)
        h, w = x.shape[-2:]
        padded = pad_input(x.float()).contiguous().numpy()
        y = self.session.run([OUTPUT], {INPUT: padded})[0]
        return torch.from_numpy(np.ascontiguousarray(y[..., :h, :w]))


# --- command line ----------------------------------------------------------------------------------
