"""Video: a generated clip with audio through the CLI (frames, rate, size, audio kept), clear errors
for what is not a usable clip, and the stabiliser lowering flicker on a clip made to flicker."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from clips import flicker, ghosting, make_clip, read_frames
from conftest import make_style, smooth_image
from fastnst import Stylizer, TransformerNet
from fastnst.cli import main
from fastnst.video import PixelBlender, VideoError, probe, stylize_video

av = pytest.importorskip("av")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("video") / "clip.mp4", smooth_image(200, 120, seed=3), frames=20,
                     size=(96, 64), fps=10)


@pytest.fixture(scope="module")
def style(tmp_path_factory) -> Path:
    return make_style(tmp_path_factory.mktemp("vstyle") / "style", seed=4, name="vstyle")


def test_a_clip_round_trips_through_the_cli_with_its_rate_size_and_audio(clip, style, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert main(["stylize", str(clip), "--style", str(style), "-o", str(out), "--max-size", "80"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    info, src = probe(out), probe(clip)
    assert (info.width, info.height) == (80, 52)           # fitted into 80 px and made even for H.264
    assert info.fps == Fraction(10) and info.has_audio and src.has_audio
    assert len(read_frames(out)) == len(read_frames(clip)) == 20
    with av.open(str(clip)) as a, av.open(str(out)) as b:    # the audio stream is copied unchanged
        sa, sb = a.streams.audio[0], b.streams.audio[0]
        assert (sa.codec_context.name, sa.rate, sa.channels) == (sb.codec_context.name, sb.rate, sb.channels)
        pa = [bytes(p) for p in a.demux(sa) if p.size]
        pb = [bytes(p) for p in b.demux(sb) if p.size]
        assert pa == pb
    # a folder of clips and images: each gets its own output, the clips as .mp4 (here with key frames)
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(clip.read_bytes())
    smooth_image(40, 30).save(folder / "photo.png")
    assert main(["stylize", str(folder), "--style", str(style), "-o", str(tmp_path / "done"),
                 "--keyframe-interval", "3"]) == 0
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["clip-vstyle.mp4", "photo-vstyle.png"]
    assert len(read_frames(tmp_path / "done" / "clip-vstyle.mp4")) == 20
    assert main(["stylize", str(clip), "--style", str(style), "-o", str(out), "--stabilize", "none",
                 "--keyframe-interval", "3"]) == 2
    assert "needs the flow stabiliser" in capsys.readouterr().err


@pytest.mark.parametrize("make, needle", [
    (lambda d: d.joinpath("x.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 300), "not a video file"),
    (lambda d: d.joinpath("x.mp4").write_bytes(b""), "not a video file"),
    (lambda d: d.joinpath("x.mp4").write_bytes(b"hello, not a clip at all"), "not a video file"),
])
def test_bad_clips_are_one_line_errors(tmp_path, style, capsys, make, needle):
    make(tmp_path)
    assert main(["stylize", str(tmp_path / "x.mp4"), "--style", str(style), "-o", str(tmp_path / "o.mp4")]) == 1
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists()


def test_truncated_audio_only_and_huge_clips_are_refused_clearly(clip, style, tmp_path, monkeypatch):
    stylizer = Stylizer.from_pretrained(style, device="cpu")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    with pytest.raises(VideoError, match="cut.mp4"):
        stylize_video(cut, tmp_path / "o.mp4", stylizer)
    audio = tmp_path / "tone.m4a"
    with av.open(str(audio), "w") as out:
        a = out.add_stream("aac", rate=44_100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 44_100
        out.mux(a.encode(frame))
        out.mux(a.encode(None))
    with pytest.raises(VideoError, match="no video stream .audio only"):
        stylize_video(audio, tmp_path / "o.mp4", stylizer)
    import fastnst.video as video

    monkeypatch.setattr(video, "MAX_PIXELS", 96 * 64 - 1)
    with pytest.raises(VideoError, match="96x64 px are over the limit"):
        probe(clip)
    monkeypatch.setattr(video, "MAX_PIXELS", 10**9)
    monkeypatch.setattr(video, "MAX_FRAMES", 10)
    with pytest.raises(VideoError, match="20 frames is over the limit of 10"):
        probe(clip)
    assert not (tmp_path / "o.mp4").exists()


def _shipped_style_on_clip(tmp_path: Path, modes: tuple[str, ...], **clip) -> dict[str, float]:
    """Flicker (warping error along the clip's known pan) of starry_night on a clip of the public-domain cat;
    a mode ``flow/4``: the flow stabiliser with a key frame every 4 frames."""
    from fastnst.styles import embedded_styles

    if "starry_night" not in embedded_styles():
        pytest.skip("needs the embedded starry_night")
    from fastnst.images import load_image
    from fastnst.train import ASSETS

    src = make_clip(tmp_path / "clip.mp4", load_image(ASSETS / "chelsea.jpg"), frames=12, size=(160, 96),
                    audio=False, **clip)
    stylizer = Stylizer.from_pretrained("starry_night", device="cpu", precision="fp32")
    original = read_frames(src)
    measured = {}
    for mode in modes:
        stabilize, _, interval = mode.partition("/")
        r = stylize_video(src, tmp_path / "out.mp4", stylizer, stabilize=stabilize, keyframe_interval=int(interval or 1))
        measured[mode] = flicker(read_frames(r.path), original, pan_px=clip["pan_px"])
        measured[f"{mode} network share"] = r.network_share
    return measured


def test_blending_cuts_the_flicker_of_a_still_noisy_shot(tmp_path):
    """A still shot with sensor noise: the per-frame stylization flickers; blending with the previous
    output where the input did not change cuts it to a third or less, on a trained embedded style,
    with or without motion compensation."""
    measured = _shipped_style_on_clip(tmp_path, ("none", "blend", "flow"), pan_px=0.0, noise=3.0)
    assert measured["blend"] <= measured["none"] / 3, measured
    assert measured["flow"] <= measured["none"] / 3, measured


def test_flow_blending_follows_a_pan_where_plain_blending_cannot(tmp_path):
    """A pan of 2 px a frame: every input pixel changes, so blending without motion hardly helps;
    moved along the optical flow, the past matches the present and the flicker (measured with the
    true motion) falls well below the per-frame and the plain blend's."""
    measured = _shipped_style_on_clip(tmp_path, ("none", "blend", "flow"), pan_px=2.0, noise=2.0)
    assert measured["flow"] <= 0.65 * measured["none"], measured
    assert measured["flow"] <= 0.75 * measured["blend"], measured


def test_key_frames_run_the_network_on_a_fraction_of_the_frames_and_flicker_less(tmp_path):
    """Key frames every 4 frames on the still and the 2 px pan shots: the network sees a quarter of the
    pixels on the still shot and under half on the pan (key frames, and between them crops around the
    strip that comes into view), and the flicker stays under a third of the per-frame output's, below
    the flow stabiliser's."""
    for clip, share in ((dict(pan_px=0.0, noise=3.0), 0.3), (dict(pan_px=2.0, noise=2.0), 0.5)):
        measured = _shipped_style_on_clip(tmp_path, ("none", "flow", "flow/4"), **clip)
        assert measured["flow/4 network share"] <= share, measured
        assert measured["flow network share"] == 1.0
        assert measured["flow/4"] <= measured["none"] / 3 and measured["flow/4"] < measured["flow"], measured


def test_key_frame_crops_continue_the_key_frame_where_a_square_moved():
    """Between key frames only what the moved past does not show is stylized, in crops with the key
    frame's statistics: a square of fur moving 8 px a frame over the cat. Where it left, the output is
    what ``starry_night`` paints there with those statistics (not a ghost of the square); the square
    itself is the key frame's square moved along, far closer to the network's output where it is
    now than the key frame left in place would be."""
    from fastnst.styles import embedded_styles
    from fastnst.video import KeyframePropagator

    if "starry_night" not in embedded_styles():
        pytest.skip("needs the embedded starry_night")
    from fastnst.images import load_image, pil_to_tensor
    from fastnst.train import ASSETS

    cat = pil_to_tensor(load_image(ASSETS / "chelsea.jpg").resize((256, 144)))[0]
    patch = cat[:, 60:92, 110:142].flip(1)

    def frame(i: int) -> torch.Tensor:
        x = cat.clone()
        x[:, 48:80, 80 + 8 * i:112 + 8 * i] = patch
        return x

    stylizer = Stylizer.from_pretrained("starry_night", device="cpu", precision="fp32")
    propagate = KeyframePropagator(stylizer, interval=4)
    assert propagate.margin == 24
    dilated = Stylizer(TransformerNet(channels=4, num_residual=2, dilations=[2, 3]), device="cpu", precision="fp32")
    assert KeyframePropagator(dilated).margin == 24 + 24  # crops reach as far again as the dilated blocks do
    outs = [propagate(frame(i)) for i in range(4)]
    assert propagate.key_frames == 1 and propagate.stylized_share < 2  # of 4 frames: the key one and crops
    key_stats = stylizer.stylize_recording(frame(0)[None])[1]
    network = stylizer.stylize_tensor(frame(3)[None], norm_stats=key_stats)[0]

    def off(y: torch.Tensor, cols: slice) -> float:
        return float((y[:, 52:76, cols] - network[:, 52:76, cols]).abs().mean() * 255)

    uncovered, square = slice(98, 104), slice(108, 132)  # where it was a frame ago, where it is
    assert off(outs[-1], uncovered) < 2 and off(outs[0], uncovered) > 20
    assert off(outs[-1], square) < 0.6 * off(outs[0], square)


def test_a_flow_that_tears_is_marked_stale_and_a_pan_or_a_zoom_is_not():
    """Behind a moving object the flow jumps from the object's motion to the background's: the past moved
    along it would be stretched over what was uncovered (streaks on a smooth input), so it is stylized
    anew; a pan (uniform flow) or a slow zoom (a flow growing 0.02 px a pixel) moves the past as it is."""
    from fastnst.video import _stretched

    h, w = 40, 60
    pan = np.full((h, w, 2), (2.0, 0.0), np.float32)
    assert not _stretched(pan, 1.5).any()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    zoom = np.stack([0.02 * (xx - w / 2), 0.02 * (yy - h / 2)], -1)
    assert not _stretched(zoom, 1.5).any()
    torn = pan.copy()
    torn[10:30, 20:35] = (8.0, 0.0)  # an object moving 6 px a frame faster than the pan
    marked = _stretched(torn, 1.5)  # a pixel is marked where it differs from the one 4 px before it
    assert marked[15, 20] and marked[15, 36] and marked[10, 25] and not marked[20, 27] and not marked[2, 2]


def test_a_key_frame_interval_needs_the_flow_stabiliser(clip, style, tmp_path):
    with pytest.raises(ValueError, match="flow"):
        stylize_video(clip, tmp_path / "o.mp4", Stylizer.from_pretrained(style, device="cpu"), stabilize="blend",
                      keyframe_interval=4)


def test_the_flicker_measure_follows_the_known_pan(tmp_path):
    """A clip that is exactly a window moving 2 px a frame has no flicker along that motion, and a lot
    without it (what a measure that ignored motion would count)."""
    from conftest import smooth_image

    src = make_clip(tmp_path / "pan.mp4", smooth_image(240, 64, seed=5), frames=8, size=(96, 64), pan_px=2.0,
                    noise=0.0, audio=False)
    frames = read_frames(src)
    assert flicker(frames, frames, still=1e9, pan_px=2.0) < 0.5
    assert flicker(frames, frames, still=1e9) > 2.0


def _square_at(x0: int, width: int = 96) -> torch.Tensor:  # a 48 px high frame, the square at rows 16-32
    img = torch.full((3, 48, width), 0.2)
    img[:, 16:32, x0:x0 + 16] = 0.9
    return img


def test_motion_compensated_blending_leaves_no_ghost_where_an_object_left():
    """A bright square moves 12 px a frame on a still background; with an identity "network" whose
    output flickers, the blend steadies the background, but where the square was the new output shows
    the background, not the square's ghost, and the square itself stays bright."""
    torch.manual_seed(0)
    blender = PixelBlender(motion=True)
    outs = [blender(x, x + 0.05 * torch.randn_like(x)) for x in (_square_at(4 + 12 * i) for i in range(6))]
    left = outs[-1][:, 16:32, 52:62]                        # where the square was a frame ago, uncovered now
    assert (left - 0.2).abs().mean() < 0.06, float((left - 0.2).abs().mean())
    square = outs[-1][:, 16:32, 66:78]                      # the square where it is now
    assert (square - 0.9).abs().mean() < 0.06, float((square - 0.9).abs().mean())
    background = outs[-1][:, 36:, :]                        # still: blended with the past, less noise
    assert (background - 0.2).std() < 0.6 * 0.05, float((background - 0.2).std())


def test_ghosting_measure_sees_a_smeared_past():
    """The ghosting measure is near 0 for the per-frame output itself and large for an output that
    kept the previous frame."""
    orig = np.stack([(_square_at(4).permute(1, 2, 0).numpy() * 255).astype(np.uint8),
                     (_square_at(16).permute(1, 2, 0).numpy() * 255).astype(np.uint8)])
    assert ghosting(orig, orig, orig) == 0.0
    assert ghosting(orig[[0, 0]], orig, orig) > 50
