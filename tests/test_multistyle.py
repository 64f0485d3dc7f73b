"""Several styles in one network (conditional instance norm), held-out photos and warm starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import smooth_image
from fastnst import TrainingError, TransformerNet
from fastnst.data import ImageStream, read_name_list
from fastnst.settings import DataSettings
from fastnst.multistyle import MultiStyleNet
from fastnst.train import TrainConfig, train

TINY = dict(loss_network="vgg16-random", image_size=32, batch_size=2, channels=4, num_residual=1, style_size=32,
            num_workers=0, shuffle_buffer=1, log_every=1, sample_every=1000, checkpoint_every=1000, save_dtype="fp32",
            style_layers=("relu1_2", "relu2_2"), precision="fp32", channels_last=False)


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("photos")
    for i in range(6):
        smooth_image(70 + i, 64 + i, seed=i).save(d / f"p{i:02d}.jpg")
    return d


@pytest.fixture(scope="module")
def styles_json(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("styles")
    items = []
    for i, name in enumerate(("red", "blue", "green")):
        smooth_image(48, 40, seed=50 + i).save(d / f"{name}.jpg")
        items.append({"image": str(d / f"{name}.jpg"), "name": name, "title": name.title(), "artist": "A. Painter"})
    (d / "styles.json").write_text(json.dumps(items))
    return d / "styles.json"


def _randomise_norms(net: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "weight" in name and p.dim() == 2 or "bias" in name and p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g))


def test_export_is_the_joint_network_in_that_style():
    base = TransformerNet(channels=4, num_residual=2)
    joint = MultiStyleNet(base, 3)
    _randomise_norms(joint, 0)
    joint.eval()
    x = torch.rand(2, 3, 24, 20)
    outs = [joint(x, k) for k in range(3)]
    for k in range(3):
        single = joint.export(k).eval()
        assert torch.allclose(single(x), outs[k], atol=1e-5)
    assert not torch.allclose(outs[0], outs[1], atol=1e-3)  # the styles really differ
    mixed = joint(x, torch.tensor([2, 0]))  # one style per image in a batch
    assert torch.allclose(mixed[0], outs[2][0], atol=1e-5) and torch.allclose(mixed[1], outs[0][1], atol=1e-5)


def test_from_styles_rebuilds_the_joint_network():
    joint = MultiStyleNet(TransformerNet(channels=4, num_residual=1), 2)
    _randomise_norms(joint, 1)
    exported = [joint.export(k) for k in range(2)]
    rebuilt = MultiStyleNet.from_styles([exported[1], None, exported[0]], like=TransformerNet(channels=4, num_residual=1))
    x = torch.rand(1, 3, 20, 20)
    joint.eval(), rebuilt.eval()
    assert torch.allclose(rebuilt(x, 0), joint(x, 1), atol=1e-5)
    assert torch.allclose(rebuilt(x, 1), joint(x, 1), atol=1e-5)  # a new style starts from the first given
    assert torch.allclose(rebuilt(x, 2), joint(x, 0), atol=1e-5)
    with pytest.raises(TrainingError, match="channels=6.*train with --channels 4 --num-residual 1[.]"):
        MultiStyleNet.from_styles([exported[0]], like=TransformerNet(channels=6, num_residual=1))
    deeper = TransformerNet(channels=4, num_residual=2)  # a deeper style starts without its last block, with a warning
    with pytest.warns(UserWarning, match="block 2 is dropped"):
        cut = MultiStyleNet.from_styles([deeper], like=TransformerNet(channels=4, num_residual=1)).export(0)
    kept = cut.residuals[0].body[0][1].weight
    assert cut.num_residual == 1 and torch.equal(kept, deeper.residuals[0].body[0][1].weight)
    deeper_dilated = TransformerNet(channels=4, num_residual=2, dilations=[3, 1])  # the kept block's reach differs
    with pytest.raises(TrainingError, match="dilations=.3, 1.*train with --channels 4 --num-residual 2 "
                                            "--dilations 3,1[.]"):
        MultiStyleNet.from_styles([deeper_dilated], like=TransformerNet(channels=4, num_residual=1))
    with pytest.raises(TrainingError, match="train with --channels 4 --num-residual 1 --no-input-skip[.]"):
        MultiStyleNet.from_styles([exported[0]], like=TransformerNet(channels=4, num_residual=1, input_skip=True))
    dilated = TransformerNet(channels=4, num_residual=2, dilations=[1, 3])  # its blocks' reach is kept, never undone
    with pytest.raises(TrainingError, match="dilations=.1, 3.*train with --channels 4 --num-residual 2 --dilations 1,3[.]"):
        MultiStyleNet.from_styles([dilated], like=TransformerNet(channels=4, num_residual=2))
    joint_dilated = MultiStyleNet(TransformerNet(channels=4, num_residual=2, dilations=[1, 3]), 2)
    assert joint_dilated.export(1).dilations == (1, 3)


def test_held_out_photos_are_never_streamed(photo_dir, tmp_path):
    lst = tmp_path / "holdout.txt"
    lst.write_text("# held out\np01.jpg\np04.jpg  # a comment\n\n")
    assert read_name_list(lst) == {"p01.jpg", "p04.jpg"}
    seen = []
    stream = ImageStream(DataSettings(data=str(photo_dir), image_size=16, shuffle_buffer=1, exclude_list=str(lst)))
    for i, item in zip(range(8), stream):  # more than one pass
        seen.append(item["image"])
    kept = ImageStream(DataSettings(data=str(photo_dir), image_size=16, shuffle_buffer=1))
    first_pass = [item["image"] for _, item in zip(range(6), kept)]
    # the held-out images (2nd and 5th in order) never appear; the other four repeat
    assert len(seen) == 8 and stream.skipped == 0
    for held in (first_pass[1], first_pass[4]):
        assert not any(torch.equal(held, s) for s in seen)
    with pytest.raises(TrainingError, match="cannot read"):
        read_name_list(tmp_path / "missing.txt")


def test_joint_training_exports_one_style_folder_each(photo_dir, styles_json, tmp_path):
    out = tmp_path / "joint"
    cfg = TrainConfig(styles=str(styles_json), data=str(photo_dir), output_dir=str(out), steps=6, **TINY)
    with pytest.warns(UserWarning):  # the random loss network warns
        assert train(cfg) == out
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert [h[4] for h in ckpt["history"]] == [0, 1, 2, 0, 1, 2]  # one style per step, in turn
    outputs = []
    for name in ("red", "blue", "green"):
        folder = out / name
        config = json.loads((folder / "config.json").read_text())
        assert config["style"]["name"] == name and config["style"]["title"] == name.title()
        assert config["training"]["styles_trained_together"] == ["red", "blue", "green"]
        assert config["training"]["steps_per_style"] == 2
        assert {"model.safetensors", "style.jpg", "example.jpg", "README.md"} <= {p.name for p in folder.iterdir()}
        outputs.append(TransformerNet.from_pretrained(folder).eval()(torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))))
    assert not torch.allclose(outputs[0], outputs[1])

    # warm start from the exported folders: the joint network is rebuilt, not re-initialised
    again = tmp_path / "again"
    cfg2 = TrainConfig(styles=str(styles_json), data=str(photo_dir), output_dir=str(again), steps=3, init_from=str(out),
                       lr=1e-12, **TINY)
    with pytest.warns(UserWarning):
        train(cfg2)
    x = torch.rand(1, 3, 16, 16)
    for name in ("red", "blue", "green"):
        before = TransformerNet.from_pretrained(out / name).eval()(x)
        after = TransformerNet.from_pretrained(again / name).eval()(x)
        assert torch.allclose(before, after, atol=1e-4)
        assert json.loads((again / name / "config.json").read_text())["training"]["init_from"] == str(out)


def test_single_style_warm_start_and_bad_inputs(photo_dir, styles_json, tmp_path):
    style = json.loads(styles_json.read_text())[0]["image"]
    first = tmp_path / "first"
    with pytest.warns(UserWarning):
        train(TrainConfig(style_image=style, data=str(photo_dir), output_dir=str(first), steps=2, **TINY))
    second = tmp_path / "second"
    with pytest.warns(UserWarning):
        train(TrainConfig(style_image=style, data=str(photo_dir), output_dir=str(second), steps=1, init_from=str(first),
                          lr=1e-12, **TINY))
    x = torch.rand(1, 3, 16, 16)
    a, b = (TransformerNet.from_pretrained(p).eval()(x) for p in (first, second))
    assert torch.allclose(a, b, atol=1e-4)
    with pytest.warns(UserWarning):  # twice the width: starts widened, nearly the same function
        train(TrainConfig(style_image=style, data=str(photo_dir), output_dir=str(tmp_path / "w"), steps=1,
                          init_from=str(first), **dict(TINY, channels=8, lr=1e-12)))
    wide = TransformerNet.from_pretrained(tmp_path / "w")
    assert wide.channels == 8 and (wide.eval()(x) - a).abs().mean() < 0.03
    with pytest.warns(UserWarning):  # more residual blocks: starts deepened, nearly the same function
        train(TrainConfig(style_image=style, data=str(photo_dir), output_dir=str(tmp_path / "d"), steps=1,
                          init_from=str(first), **dict(TINY, num_residual=3, lr=1e-12)))
    deep = TransformerNet.from_pretrained(tmp_path / "d")
    assert deep.num_residual == 3 and (deep.eval()(x) - a).abs().mean() < 0.03
    with pytest.raises(TrainingError, match="channels=4"), pytest.warns(UserWarning):
        train(TrainConfig(style_image=style, data=str(photo_dir), output_dir=str(tmp_path / "x"), steps=1,
                          init_from=str(first), **dict(TINY, channels=6)))
    bad = tmp_path / "bad.json"
    bad.write_text('{"image": "x.jpg"}')
    with pytest.raises(TrainingError, match="JSON list"):
        train(TrainConfig(styles=str(bad), data=str(photo_dir), output_dir=str(tmp_path / "y"), steps=1, **TINY))
    with pytest.raises(TrainingError, match="no style folder named"), pytest.warns(UserWarning):
        train(TrainConfig(styles=str(styles_json), data=str(photo_dir), output_dir=str(tmp_path / "z"), steps=1,
                          init_from=str(tmp_path), **TINY))


def test_only_selects_styles_of_the_list(styles_json):
    from fastnst.train import style_entries

    names = [e.metadata()["name"] for e in style_entries(TrainConfig(styles=str(styles_json), only=("green", "red")))]
    assert names == ["red", "green"]  # the list's order
    with pytest.raises(TrainingError, match="purple"):
        style_entries(TrainConfig(styles=str(styles_json), only=("purple",)))


def test_a_list_of_one_style_keeps_its_metadata_and_layout(photo_dir, styles_json, tmp_path):
    out = tmp_path / "one"
    with pytest.warns(UserWarning):
        train(TrainConfig(styles=str(styles_json), only=("blue",), data=str(photo_dir), output_dir=str(out), steps=2,
                          **TINY))
    config = json.loads((out / "blue" / "config.json").read_text())
    assert config["style"] == {"name": "blue", "title": "Blue", "artist": "A. Painter"}
    assert "styles_trained_together" not in config["training"]
