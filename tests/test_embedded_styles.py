"""The styles shipped in fastnst/embedded/: complete, documented, and really stylizing."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from fastnst import Stylizer
from fastnst.images import load_image, pil_to_tensor
from fastnst.loss_network import LossNetwork
from fastnst.losses import feature_loss, gram_matrix, relative_layer_weights, style_loss
from fastnst.styles import embedded_styles
from fastnst.train import ASSETS

STYLES = embedded_styles()


def test_at_least_four_styles_are_shipped():
    assert len(STYLES) >= 4, sorted(STYLES)


@pytest.fixture(scope="module")
def loss_net() -> LossNetwork:
    return LossNetwork("vgg16-hed")


@pytest.mark.parametrize("name", sorted(STYLES))
def test_style_folder_card_and_config(name):
    folder = STYLES[name]
    assert {"config.json", "model.safetensors", "README.md", "style.jpg", "example.jpg"} <= {p.name for p in folder.iterdir()}
    assert (folder / "model.safetensors").stat().st_size < 4 * 2**20
    config = json.loads((folder / "config.json").read_text())
    assert config["style"]["name"] == name
    assert config["style"]["title"] and config["style"]["artist"] and config["style"]["licence"]
    training = config["training"]
    assert training["loss_network"] == "vgg16-hed", "shipped styles must use a pretrained loss network"
    assert training["steps"] >= 500 and training["command"].startswith("python train_scripts/train.py")
    card = (folder / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "fastnst" and front["pipeline_tag"] == "image-to-image"
    assert {"fastnst", "style-transfer", "fast-neural-style"} <= set(front["tags"])
    assert config["style"]["title"] in card and training["command"] in card


@pytest.mark.parametrize("name", sorted(STYLES))
def test_style_really_stylizes(name, loss_net):
    """The output is much closer to the painting's style than the photo is, yet keeps the photo's content."""
    folder = STYLES[name]
    config = json.loads((folder / "config.json").read_text())
    photo = load_image(ASSETS / "chelsea.jpg").convert("RGB")
    photo.thumbnail((256, 256))
    out = Stylizer.from_pretrained(folder, device="cpu", precision="fp32")(photo, max_size=None)
    style = load_image(folder / "style.jpg").convert("RGB")
    style.thumbnail((config["training"]["style_size"],) * 2)
    with torch.no_grad():
        targets = {k: gram_matrix(v) for k, v in loss_net(pil_to_tensor(style)).items()}
        weights = relative_layer_weights(targets)
        f_in, f_out = loss_net(pil_to_tensor(photo)), loss_net(pil_to_tensor(out))
        s_in = float(style_loss({k: gram_matrix(v) for k, v in f_in.items()}, targets, weights))
        s_out = float(style_loss({k: gram_matrix(v) for k, v in f_out.items()}, targets, weights))
        content = float(feature_loss(f_out["relu2_2"], f_in["relu2_2"]) / f_in["relu2_2"].pow(2).mean())
    assert s_out < 0.5 * s_in, (s_out, s_in)
    assert content < 0.8, f"the photo is no longer recognisable (relative content error {content:.2f})"
    diff = (pil_to_tensor(out) - pil_to_tensor(photo)).abs().mean()
    assert diff > 0.03, "not an identity map"
