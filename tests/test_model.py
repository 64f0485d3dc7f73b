import json

import pytest
import torch

from fastnst import InvalidStyleError, StyleNotFoundError, Stylizer, TransformerNet, UnsafeWeightsError
from fastnst.errors import TrainingError
from fastnst.model import AVERAGE_PHOTO_RGB, InstanceNorm, MeanCentre
from fastnst.multistyle import MultiStyleNet


@pytest.mark.parametrize("h,w", [(333, 517), (1, 1), (5, 3), (64, 64), (17, 250)])
def test_output_shape_equals_input_shape(h, w):
    model = TransformerNet(channels=4, num_residual=1).eval()
    with torch.inference_mode():
        y = model(torch.rand(2, 3, h, w))
    assert y.shape == (2, 3, h, w)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_architecture_follows_the_paper():
    m = TransformerNet(channels=32)
    convs = [x for x in m.modules() if isinstance(x, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in (convs[0], convs[-1])] == [9, 9]
    assert [c.stride[0] for c in convs[:3]] == [1, 2, 2]
    assert [c.out_channels for c in convs[:3]] == [32, 64, 128]
    assert len(m.residuals) == 5
    assert not any(isinstance(x, torch.nn.ConvTranspose2d) for x in m.modules())
    assert sum(isinstance(x, torch.nn.ReflectionPad2d) for x in m.modules()) == len(convs)
    assert all(x.affine for x in m.modules() if isinstance(x, InstanceNorm))
    small = TransformerNet(channels=16, num_residual=3)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in m.parameters()) / 3
    assert len(small.residuals) == 3


def test_save_load_round_trip_is_bit_identical(tmp_path):
    torch.manual_seed(1)
    model = TransformerNet(channels=8, num_residual=2, style={"name": "x", "artist": "A"}).eval()
    model.save_pretrained(tmp_path / "s")
    assert {p.name for p in (tmp_path / "s").iterdir()} >= {"config.json", "model.safetensors"}
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())
    assert cfg["channels"] == 8 and cfg["style"]["artist"] == "A"
    loaded = TransformerNet.from_pretrained(tmp_path / "s").eval()
    x = torch.rand(1, 3, 37, 41)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))
    assert loaded.style == {"name": "x", "artist": "A"}


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pth"])
def test_pickled_weights_are_refused_and_never_unpickled(tmp_path, name):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"channels": 8, "num_residual": 2}))

    class Boom:
        def __reduce__(self):
            return (exec, ("open(%r, 'w').write('pwned')" % str(tmp_path / "pwned"),))

    torch.save({"x": Boom()}, folder / name, _use_new_zipfile_serialization=True)
    with pytest.raises(UnsafeWeightsError, match="pickle"):
        TransformerNet.from_pretrained(folder)
    # a pickle renamed to model.safetensors is refused too
    (folder / name).rename(folder / "model.safetensors")
    with pytest.raises(UnsafeWeightsError):
        TransformerNet.from_pretrained(folder)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("first_bytes", [b"\x80\x02", b"PK"])
def test_safetensors_whose_header_length_reads_like_a_pickle_or_zip_loads(tmp_path, first_bytes):
    """The 8-byte header length may start with any byte: 0x280 reads as a pickle's first opcodes, 0x4b50 as "PK"."""
    from safetensors.torch import save_file

    model = TransformerNet(channels=4, num_residual=1)
    model.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, weights, metadata={"format": "pt", "pad": ""})
    length = int.from_bytes(weights.read_bytes()[:8], "little")  # a multiple of 8, as both wanted lengths are
    wanted = int.from_bytes(first_bytes, "little")
    pad = (wanted - length) % 0x10000
    save_file(state, weights, metadata={"format": "pt", "pad": "x" * pad})  # each character lengthens the header by 1
    assert weights.read_bytes()[:2] == first_bytes
    loaded = TransformerNet.from_pretrained(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


def test_style_folder_without_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InvalidStyleError, match="model.safetensors"):
        TransformerNet.from_pretrained(tmp_path)


def test_out_of_range_config_refused_before_allocation(tmp_path, tiny_style):
    import shutil

    folder = tmp_path / "huge"
    shutil.copytree(tiny_style, folder)
    (folder / "config.json").write_text(json.dumps({"channels": 10**6, "num_residual": 2}))
    with pytest.raises(InvalidStyleError, match="channels"):
        TransformerNet.from_pretrained(folder)


def test_wrong_shapes_and_nans_refused(tmp_path, tiny_style):
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "bad"
    shutil.copytree(tiny_style, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["channels"] = 4
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InvalidStyleError, match="shape"):
        TransformerNet.from_pretrained(folder)
    shutil.copy(tiny_style / "config.json", folder / "config.json")
    state = load_file(tiny_style / "model.safetensors")
    key = next(iter(state))
    state[key] = state[key].clone().fill_(float("nan"))
    save_file(state, folder / "model.safetensors")
    with pytest.raises(InvalidStyleError, match="NaN"):
        TransformerNet.from_pretrained(folder)
    del state[key]
    save_file(state, folder / "model.safetensors")
    with pytest.raises(InvalidStyleError, match="missing"):
        TransformerNet.from_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json header}")
    with pytest.raises(UnsafeWeightsError, match="safetensors"):
        TransformerNet.from_pretrained(folder)


def test_unknown_style_names():
    with pytest.raises(StyleNotFoundError, match="unknown style"):
        Stylizer.from_pretrained("no-such-style-anywhere")


def test_unknown_hub_style_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    with pytest.raises(StyleNotFoundError, match="someone/never-pulled"):
        Stylizer.from_pretrained("someone/never-pulled")


def test_saved_weights_are_readable_like_the_other_files(tmp_path):
    """safetensors creates model.safetensors 0600; a style folder's files all follow the umask (0644 here)."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        TransformerNet(channels=4, num_residual=1).save_pretrained(tmp_path)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes["model.safetensors"] == 0o644 and modes["config.json"] == 0o644, modes


def test_bilinear_upsampling_round_trips_and_runs_as_trained(tmp_path):
    """``upsample="bilinear"`` is saved in config.json, loaded back, and the Stylizer runs the network
    as trained (the sub-pixel decoder is the same function only for nearest-neighbour upsampling)."""
    torch.manual_seed(0)
    net = TransformerNet(channels=4, num_residual=1, upsample="bilinear").eval()
    nearest = TransformerNet(channels=4, num_residual=1).eval()
    nearest.load_state_dict(net.state_dict())
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        assert not torch.allclose(net(x), nearest(x), atol=1e-3)  # the mode changes the function
    net.save_pretrained(tmp_path / "s")
    assert json.loads((tmp_path / "s" / "config.json").read_text())["upsample"] == "bilinear"
    loaded = TransformerNet.from_pretrained(tmp_path / "s")
    assert loaded.upsample == "bilinear"
    with torch.no_grad():
        expected = net(x)
    got = Stylizer(loaded, device="cpu", precision="fp32").stylize_tensor(x)
    assert torch.allclose(got, expected, atol=1e-5)


def test_a_style_without_upsample_in_its_config_is_nearest_and_a_bad_mode_is_refused(tmp_path):
    net = TransformerNet(channels=4, num_residual=1)
    net.save_pretrained(tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())
    del cfg["upsample"]                                          # every style saved before the option
    (tmp_path / "s" / "config.json").write_text(json.dumps(cfg))
    assert TransformerNet.from_pretrained(tmp_path / "s").upsample == "nearest"
    cfg["upsample"] = "bicubic"
    (tmp_path / "s" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InvalidStyleError, match="upsample must be one of nearest, bilinear"):
        TransformerNet.from_pretrained(tmp_path / "s")


def test_a_plain_skip_passes_the_photos_mean_colour_and_a_centred_one_does_not(tmp_path):
    """The residual is blind to a colour offset of the photo (its first instance norm removes it), so
    with a plain skip the offset reaches the output unchanged; with the centred skip the output's mean
    colour is the network's alone. Saved and loaded as ``centred_skip`` in config.json."""
    torch.manual_seed(0)
    plain = TransformerNet(channels=4, num_residual=1, input_skip=True)
    centred = TransformerNet(channels=4, num_residual=1, input_skip=True, centred_skip=True)
    for net in (plain, centred):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.1 * torch.randn_like(p))
    x = 0.3 + 0.4 * torch.rand(1, 3, 24, 20)
    offset = torch.tensor([0.1, -0.05, 0.08]).view(1, 3, 1, 1)
    with torch.no_grad():
        change = {name: (net.train()(x + offset) - net(x)).mean(dim=(2, 3)) for name, net in
                  (("plain", plain), ("centred", centred))}
    torch.testing.assert_close(change["plain"], offset.view(1, 3), atol=1e-4, rtol=0)
    torch.testing.assert_close(change["centred"], torch.zeros(1, 3), atol=1e-4, rtol=0)
    centred.eval().save_pretrained(tmp_path / "s")
    assert json.loads((tmp_path / "s" / "config.json").read_text())["centred_skip"] is True
    loaded = TransformerNet.from_pretrained(tmp_path / "s").eval()
    assert loaded.centred_skip and len(loaded.recorded_layers()) == len(plain.recorded_layers()) + 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), centred(x))
        with loaded.replaying_norm_stats(loaded.norm_stats(x)):  # recorded and replayed with the norms, for tiles
            torch.testing.assert_close(loaded(x), centred(x), atol=1e-5, rtol=0)
    centre, tile = MeanCentre(), x[..., :8, :]
    centre.mode = "record"
    centre(x)
    centre.mode = "replay"
    torch.testing.assert_close(centre(tile), tile - x.mean(dim=(2, 3), keepdim=True))  # a tile: the whole image's mean


def test_centred_skip_needs_the_skip_and_a_warm_start_keeps_the_function():
    with pytest.raises(InvalidStyleError, match="centred_skip"):
        TransformerNet(channels=4, num_residual=1, centred_skip=True)
    torch.manual_seed(1)
    plain = TransformerNet(channels=4, num_residual=1, input_skip=True).eval()
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(0.1 * torch.randn_like(p))
    like = TransformerNet(channels=4, num_residual=1, input_skip=True, centred_skip=True)
    centred = MultiStyleNet.from_styles([plain], like=like).export(0).eval()
    assert centred.centred_skip
    x = torch.rand(1, 3, 16, 16)
    x = x - x.mean(dim=(2, 3), keepdim=True) + torch.tensor(AVERAGE_PHOTO_RGB).view(1, 3, 1, 1)  # an average photo
    with torch.no_grad():
        torch.testing.assert_close(centred(x), plain(x), atol=1e-5, rtol=0)   # the same function there
        assert not torch.allclose(centred(x * 0.5), plain(x * 0.5), atol=1e-2)  # and not on a dark one


def test_a_skip_gain_starts_at_one_scales_the_photos_detail_and_round_trips(tmp_path):
    """The skip gain (``skip_gain``): a warm start from a style without it is the same function; the
    learnt factor multiplies exactly the (centred) photo added to the output; it trains, is saved as
    ``skip_gain`` in config.json and loads back; a run without it cannot start from a style with it."""
    with pytest.raises(InvalidStyleError, match="skip_gain"):
        TransformerNet(channels=4, num_residual=1, skip_gain=True)
    torch.manual_seed(3)
    plain = TransformerNet(channels=4, num_residual=1, input_skip=True, centred_skip=True)
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(0.1 * torch.randn_like(p))
    like = TransformerNet(channels=4, num_residual=1, input_skip=True, centred_skip=True, skip_gain=True)
    gained = MultiStyleNet.from_styles([plain], like=like).export(0)
    x = torch.rand(2, 3, 20, 24)
    with torch.no_grad():
        torch.testing.assert_close(gained.eval()(x), plain.eval()(x))  # gain 1: the same function
        gained.skip.gain.copy_(torch.tensor([-0.05, 0.0, 0.02]).view(1, 3, 1, 1))  # factors 0.5, 1, 1.2
        change = gained.train()(x) - plain.train()(x)  # unclamped
    detail = x - x.mean(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(change, detail * torch.tensor([-0.5, 0.0, 0.2]).view(1, 3, 1, 1), atol=1e-5, rtol=0)
    gained(x).square().mean().backward()
    assert gained.skip.gain.grad is not None and gained.skip.gain.grad.abs().sum() > 0  # it learns
    gained.eval().save_pretrained(tmp_path / "s")
    assert json.loads((tmp_path / "s" / "config.json").read_text())["skip_gain"] is True
    loaded = TransformerNet.from_pretrained(tmp_path / "s").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), gained(x))
    with pytest.raises(TrainingError, match="skip gain"):
        MultiStyleNet.from_styles([loaded], like=plain)


def _reach(net: TransformerNet, size: int = 96) -> int:
    """How far (px, along a row) an input change moves the output's centre pixel, the instance norms' statistics
    held (they see the whole image)."""
    net.eval()
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    c = size // 2
    with torch.no_grad(), net.replaying_norm_stats(net.norm_stats(x)):
        base = net.forward_padded(x)[..., c, c]
        for d in range(c - 1, 0, -1):
            y = x.clone()
            y[..., c, c + d] += 1.0
            if not torch.allclose(net.forward_padded(y)[..., c, c], base, atol=1e-6):
                return d
    return 0


def test_dilated_blocks_reach_further_with_the_same_weights_and_round_trip(tmp_path):
    torch.manual_seed(3)
    plain = TransformerNet(channels=4, num_residual=2).eval()
    dilated = TransformerNet(channels=4, num_residual=2, dilations=[2, 3]).eval()
    dilated.load_state_dict(plain.state_dict())  # the same weights fit: only the taps spread
    assert 16 < _reach(dilated) - _reach(plain) <= dilated.dilation_reach == 24  # a 3x3 of dilation d: 4 (d-1) px
    assert dilated.architecture["dilations"] == (2, 3) and plain.dilations == ()
    for h, w in ((1, 1), (5, 3), (17, 250)):  # the smallest padded input still fits the widest reflection pad
        assert dilated(torch.rand(1, 3, h, w)).shape == (1, 3, h, w)
    dilated.save_pretrained(tmp_path / "s")
    assert json.loads((tmp_path / "s" / "config.json").read_text())["dilations"] == [2, 3]
    loaded = TransformerNet.from_pretrained(tmp_path / "s").eval()
    x = torch.rand(1, 3, 40, 36)
    with torch.inference_mode():
        assert torch.equal(loaded(x), dilated(x))
    assert TransformerNet(channels=4, num_residual=2, dilations=(1, 1)).dilations == ()  # all 1: the plain network


def test_a_style_without_dilations_is_undilated_and_bad_dilations_are_refused(tmp_path):
    TransformerNet(channels=4, num_residual=2).save_pretrained(tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())
    del cfg["dilations"]                                          # every style saved before the option
    (tmp_path / "s" / "config.json").write_text(json.dumps(cfg))
    assert TransformerNet.from_pretrained(tmp_path / "s").block_dilations == (1, 1)
    cfg["dilations"] = None
    (tmp_path / "s" / "config.json").write_text(json.dumps(cfg))
    assert TransformerNet.from_pretrained(tmp_path / "s").dilations == ()
    for bad in ([2], [1, 4], [0, 1], [True, 1], ["2", 1], 2):
        cfg["dilations"] = bad
        (tmp_path / "s" / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(InvalidStyleError, match="dilations=.* per residual block"):
            TransformerNet.from_pretrained(tmp_path / "s")
