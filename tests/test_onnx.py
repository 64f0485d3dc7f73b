"""ONNX export and the onnxruntime backend: dynamic sizes, agreement with fp32 eager, the CLI.

Tolerance: the exported graph computes the same float32 operations as PyTorch (onnxruntime's
kernels sum in another order), so outputs agree to float32 rounding: measured at most 6e-6 on
[0, 1] outputs (full-width network, 512 px); the tests allow 1e-4 (0.03 grey levels), and at most
one grey level (a rounding flip) on 8-bit images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from conftest import smooth_image  # noqa: E402
from fastnst import Stylizer, TransformerNet  # noqa: E402
from fastnst.cli import main  # noqa: E402
from fastnst.onnx_backend import CONFIG_KEY, INPUT, OnnxStylizer, export_onnx  # noqa: E402

ATOL = 1e-4


@pytest.fixture(scope="module")
def model() -> TransformerNet:
    torch.manual_seed(1)
    return TransformerNet(channels=8, num_residual=2, style={"name": "tiny"}).eval()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx")


@pytest.fixture(scope="module")
def onnx_stylizer(model, exported) -> OnnxStylizer:
    return OnnxStylizer(model, exported)


def eager(model: TransformerNet, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.float()(x.contiguous())


def test_export_has_dynamic_axes_and_metadata(exported):
    proto = onnx.load(str(exported))
    onnx.checker.check_model(proto)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert proto.graph.input[0].name == INPUT
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert '"channels": 8' in meta[CONFIG_KEY]
    assert not list(exported.parent.glob("*.data"))  # weights inside: one self-contained file


@pytest.mark.parametrize("h,w", [(67, 45), (13, 101), (3, 5)])
def test_odd_sizes_agree_with_fp32_eager(model, onnx_stylizer, h, w):
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h))  # a batch of two, sizes not multiples of 4
    y = onnx_stylizer.stylize_tensor(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    torch.testing.assert_close(y, eager(model, x), atol=ATOL, rtol=0)


@pytest.mark.parametrize("skip_gain", [False, True])
def test_a_centred_skip_network_exports_as_the_same_function(skip_gain):
    torch.manual_seed(2)
    net = TransformerNet(channels=8, num_residual=2, input_skip=True, centred_skip=True, skip_gain=skip_gain).eval()
    with torch.no_grad():
        if skip_gain:
            net.skip.gain.fill_(-0.03)
        net.decoder[-1][1].weight.normal_(0, 0.05)  # a zero output layer would hide the skip's mean
        net.decoder[-1][1].bias.fill_(0.3)
    x = torch.rand(2, 3, 29, 34, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(OnnxStylizer(net).stylize_tensor(x), eager(net, x), atol=ATOL, rtol=0)


def test_images_and_fp16_weights(model, onnx_stylizer, tmp_path):
    img = smooth_image(83, 61)
    ref = Stylizer(TransformerNet(**model.config).eval(), device="cpu", precision="fp32")
    ref.model.load_state_dict(model.state_dict())
    for kwargs in ({}, {"strength": 0.4, "preserve_color": True}):
        a, b = np.asarray(onnx_stylizer(img, **kwargs)), np.asarray(ref(img, **kwargs))
        assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert onnx_stylizer.name == "tiny"
    half = TransformerNet(**model.config)  # styles are saved in fp16: export converts to fp32
    half.load_state_dict(model.state_dict())
    s = OnnxStylizer(half.half())
    x = torch.rand(1, 3, 40, 24)
    torch.testing.assert_close(s.stylize_tensor(x), eager(half.float(), x), atol=ATOL, rtol=0)


def test_large_images_tile_like_the_torch_backend(model):
    x = torch.rand(1, 3, 150, 110, generator=torch.Generator().manual_seed(3))
    tiled = OnnxStylizer(model, tile_pixels=64 * 64)
    ref = Stylizer(TransformerNet(**model.config).eval(), device="cpu", precision="fp32", tile_pixels=64 * 64)
    ref.model.load_state_dict(model.state_dict())
    torch.testing.assert_close(tiled.stylize_tensor(x), ref.stylize_tensor(x), atol=ATOL, rtol=0)


def test_cli_export_then_stylize_with_onnx(tiny_style, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    smooth_image(57, 43).save("photo.png")
    assert main(["export", str(tiny_style), "--format", "onnx", "-o", "out/tiny.onnx"]) == 0
    assert capsys.readouterr().out.strip().endswith("tiny.onnx")
    assert main(["stylize", "photo.png", "--style", "out/tiny.onnx", "--backend", "onnx", "-o", "a.png"]) == 0
    assert main(["stylize", "photo.png", "--style", str(tiny_style), "--backend", "onnx", "-o", "b.png"]) == 0
    assert main(["stylize", "photo.png", "--style", str(tiny_style), "-o", "c.png", "--precision", "fp32"]) == 0
    from PIL import Image

    a, b, c = (np.asarray(Image.open(f), dtype=int) for f in ("a.png", "b.png", "c.png"))
    assert a.shape == (43, 57, 3) and np.abs(a - c).max() <= 1 and np.abs(b - c).max() <= 1
    capsys.readouterr()
    assert main(["stylize", "photo.png", "--style", str(tiny_style), "--backend", "onnx", "--precision", "bf16"]) == 2
    assert "fp32" in capsys.readouterr().err
    assert main(["export", str(tiny_style), "-o", "x.png"]) == 1


def test_a_dilated_network_exports_as_the_same_function():
    torch.manual_seed(5)
    net = TransformerNet(channels=8, num_residual=2, dilations=[2, 3]).eval()
    x = torch.rand(1, 3, 21, 30, generator=torch.Generator().manual_seed(6))  # 8x8 at the trunk: the pads fit
    torch.testing.assert_close(OnnxStylizer(net).stylize_tensor(x), eager(net, x), atol=ATOL, rtol=0)
