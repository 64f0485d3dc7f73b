"""Video: a generated clip with audio through the CLI (frames, rate, size, audio kept), clear errors
for what is not a usable clip, and the stabiliser lowering flicker on a clip made to flicker."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from clips import flicker, make_clip, read_frames
from conftest import make_style, smooth_image
from fastnst import Stylizer
from fastnst.cli import main
from fastnst.video import VideoError, probe, stylize_video

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
    # a folder of clips and images: each gets its own output, the clips as .mp4
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(clip.read_bytes())
    smooth_image(40, 30).save(folder / "photo.png")
    assert main(["stylize", str(folder), "--style", str(style), "-o", str(tmp_path / "done")]) == 0
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["clip-vstyle.mp4", "photo-vstyle.png"]


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


def test_blending_cuts_the_flicker_of_a_still_noisy_shot(tmp_path):
    """A still shot with sensor noise: the per-frame stylization flickers; blending with the previous
    output where the input did not change cuts it to a third or less, on a trained embedded style."""
    from fastnst.styles import embedded_styles

    if "starry_night" not in embedded_styles():
        pytest.skip("needs the embedded starry_night")
    from fastnst.images import load_image
    from fastnst.train import ASSETS

    src = make_clip(tmp_path / "still.mp4", load_image(ASSETS / "chelsea.jpg"), frames=12, size=(160, 96),
                    pan_px=0.0, noise=3.0, audio=False)
    stylizer = Stylizer.from_pretrained("starry_night", device="cpu", precision="fp32")
    original = read_frames(src)
    measured = {mode: flicker(read_frames(stylize_video(src, tmp_path / f"{mode}.mp4", stylizer, stabilize=mode).path),
                              original) for mode in ("none", "blend")}
    assert measured["blend"] <= measured["none"] / 3, measured
