"""The ``fastnst stylize`` command: files, folders, output naming, and one-line errors."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, smooth_image
from fastnst.cli import main
from test_hostile_inputs import png_declaring


@pytest.fixture
def style(tiny_style) -> Path:
    return tiny_style  # named "tiny"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "fastnst.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def one_line_error(err: str, *needles: str) -> str:
    """``err`` is a single line saying fastnst...error, naming every needle, with no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error" in lines[0] and lines[0].startswith("fastnst"), err
    for needle in needles:
        assert needle in lines[0], (needle, err)
    return lines[0]


def test_end_to_end_file(tmp_path, style):
    smooth_image(300, 200).save(tmp_path / "photo.jpg")
    proc = run_cli("stylize", "photo.jpg", "--style", str(style), "-o", "out/styled.png", "--max-size", "150",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(Path("out") / "styled.png")
    out = Image.open(tmp_path / "out" / "styled.png")
    assert out.size == (150, 100) and out.mode == "RGB"
    assert not list(tmp_path.rglob("*.tmp"))


def test_end_to_end_error(tmp_path, style):
    (tmp_path / "empty.jpg").write_bytes(b"")
    proc = run_cli("stylize", "empty.jpg", "--style", str(style), cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    one_line_error(proc.stderr, "empty.jpg", "empty")
    assert not list(tmp_path.glob("*.png"))


def test_help(capsys):
    for args in (["--help"], ["stylize", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 0
    out = capsys.readouterr().out
    assert "fastnst stylize photo.jpg --style" in out  # the examples
    for option in ("--style", "--strength", "--preserve-color", "--max-size", "--device", "-o"):
        assert option in out


def test_default_output_name_in_the_current_folder(tmp_path, style, monkeypatch, capsys):
    smooth_image(60, 40).save(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)
    assert main(["stylize", "a.png", "--style", str(style)]) == 0
    assert capsys.readouterr().out.strip() == "a-tiny.png"
    assert Image.open(tmp_path / "a-tiny.png").size == (60, 40)


def test_output_file_suffix_chooses_the_format(tmp_path, style, capsys):
    smooth_image(60, 40).save(tmp_path / "a.png")
    assert main(["stylize", str(tmp_path / "a.png"), "--style", str(style), "-o", str(tmp_path / "b.jpg")]) == 0
    assert Image.open(tmp_path / "b.jpg").format == "JPEG"
    # one input and -o without a suffix, or an existing folder: a folder
    (tmp_path / "dir.png").mkdir()
    for target in ("outdir", "dir.png"):
        assert main(["stylize", str(tmp_path / "a.png"), "--style", str(style), "-o", str(tmp_path / target)]) == 0
        assert (tmp_path / target / "a-tiny.png").is_file()


def test_folders_recursively_with_subfolders_mirrored(tmp_path, style, capsys):
    photos = tmp_path / "photos"
    for i, rel in enumerate(["x.jpg", "b/x.jpg", "b/c/y.png", "notes.txt"]):
        (photos / rel).parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("txt"):
            (photos / rel).write_text("not an image, and not picked up")
        else:
            smooth_image(40 + i, 30, seed=i).save(photos / rel)
    smooth_image(20, 20).save(tmp_path / "single.png")
    rc = main(["stylize", str(photos), str(tmp_path / "single.png"), "--style", str(style),
               "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["b/c/y-tiny.png", "b/x-tiny.png", "single-tiny.png", "x-tiny.png"]
    assert Image.open(tmp_path / "out" / "b" / "x-tiny.png").size == (41, 30)  # not overwritten by ./x.jpg
    assert "wrote 4 files" in captured.out


def test_options_reach_the_stylizer(tmp_path, style, capsys):
    src = smooth_image(80, 60)
    src.save(tmp_path / "a.png")

    def run(*opts):
        out = tmp_path / "o.png"
        assert main(["stylize", str(tmp_path / "a.png"), "--style", str(style), "-o", str(out), *opts]) == 0
        return np.asarray(Image.open(out)).astype(int)

    np.testing.assert_array_equal(run("--strength", "0"), np.asarray(src))
    full = run()
    assert np.abs(full - np.asarray(src)).mean() > 10
    assert np.abs(run("--preserve-color") - full).mean() > 3
    assert run("--max-size", "40").shape == (30, 40, 3)
    assert run("--device", "cpu", "--precision", "fp32").shape == (60, 80, 3)


def test_some_files_fail_others_are_written(tmp_path, style, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    smooth_image(30, 20).save(folder / "good.png")
    (folder / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    rc = main(["stylize", str(folder), "--style", str(style), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1 and (tmp_path / "out" / "good-tiny.png").is_file()
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "bad.jpg" in errors[0] and "Traceback" not in err
    assert "1 of 2 files failed" in err


def _truncated_jpeg(path: Path) -> None:
    data = path.with_suffix(".full.jpg")
    smooth_image(200, 150).save(data, quality=90)
    path.write_bytes(data.read_bytes()[:1500])


UNREADABLE = {
    "zero.jpg": (lambda p: p.write_bytes(b""), "empty"),
    "truncated.jpg": (_truncated_jpeg, "truncated"),
    "page.jpg": (lambda p: p.write_text("<html><body>hello</body></html>"), "not an image"),
    "bomb.png": (lambda p: p.write_bytes(png_declaring(30000, 30000)), "too large"),
    "missing.png": (lambda p: None, "no such file"),
}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_input_is_one_line(tmp_path, style, capsys, name):
    make, problem = UNREADABLE[name]
    make(tmp_path / name)
    assert main(["stylize", str(tmp_path / name), "--style", str(style), "-o", str(tmp_path / "o.png")]) == 1
    one_line_error(capsys.readouterr().err, name, problem)
    assert not (tmp_path / "o.png").exists()


def test_bad_styles_are_one_line(tmp_path, capsys, monkeypatch):
    smooth_image(20, 20).save(tmp_path / "a.png")
    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights" / "config.json").write_text('{"channels": 8, "num_residual": 2}')
    (tmp_path / "empty-folder").mkdir()
    for spec, needles in [("no-such-style", ["unknown style", "no-such-style"]),
                          (str(tmp_path / "no-weights"), ["no-weights", "model.safetensors"]),
                          (str(tmp_path / "empty-folder"), ["empty-folder", "config.json"]),
                          (str(tmp_path / "a.png"), ["a.png", "is a file"])]:
        assert main(["stylize", str(tmp_path / "a.png"), "--style", spec]) == 1
        one_line_error(capsys.readouterr().err, *needles)


def test_unknown_hub_style_offline_is_one_line(tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    smooth_image(20, 20).save(tmp_path / "a.png")
    assert main(["stylize", str(tmp_path / "a.png"), "--style", "someone/never-pulled-style"]) == 1
    one_line_error(capsys.readouterr().err, "someone/never-pulled-style")


@pytest.mark.parametrize("opts,needle", [
    (["--strength", "2"], "--strength"), (["--strength", "-0.5"], "--strength"), (["--strength", "x"], "--strength"),
    (["--max-size", "0"], "--max-size"), (["--max-size", "-5"], "--max-size"), (["--precision", "fp8"], "--precision"),
    ([], "--style"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, style, capsys, opts, needle):
    smooth_image(20, 20).save(tmp_path / "a.png")
    args = ["stylize", str(tmp_path / "a.png"), *(["--style", str(style)] if needle != "--style" else []), *opts]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    one_line_error(capsys.readouterr().err, needle, "--help")


@pytest.mark.parametrize("opts,needle", [
    (["--device", "toaster"], "toaster"), (["--device", "cuda:97"], "cuda:97"), (["-o", "out.xyz"], "out.xyz"),
])
def test_bad_values_found_late_exit_2_with_one_line(tmp_path, style, capsys, monkeypatch, opts, needle):
    monkeypatch.chdir(tmp_path)
    smooth_image(20, 20).save(tmp_path / "a.png")
    assert main(["stylize", "a.png", "--style", str(style), *opts]) == 2
    one_line_error(capsys.readouterr().err, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_missing_onnx_backend_is_one_line(tmp_path, style, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastnst.onnx_backend", None)  # as if not installed
    smooth_image(20, 20).save(tmp_path / "a.png")
    assert main(["stylize", str(tmp_path / "a.png"), "--style", str(style), "--backend", "onnx"]) == 1
    one_line_error(capsys.readouterr().err, "onnx")


def test_no_images_found(tmp_path, style, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["stylize", str(tmp_path / "empty"), "--style", str(style)]) == 1
    one_line_error(capsys.readouterr().err, "no images or videos found")
