"""Data streaming and training: offline, CPU, tiny images, the random loss network."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, smooth_image
from fastnst import Stylizer, TrainingError
from fastnst.data import ImageStream, make_loader
from fastnst.settings import DataSettings
from fastnst.train import TrainConfig, train

TINY = dict(loss_network="vgg16-random", image_size=32, batch_size=2, channels=4, num_residual=1, style_size=32,
            num_workers=0, shuffle_buffer=1, log_every=1, sample_every=1000, checkpoint_every=3, save_dtype="fp32",
            style_layers=("relu1_2", "relu2_2"))


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("photos")
    for i in range(10):
        smooth_image(80 + i, 70 + 2 * i, seed=i).save(d / f"p{i:02d}.jpg")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    smooth_image(20, 20).save(d / "tiny.png")  # below min_side
    return d


@pytest.fixture(scope="module")
def style_image(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("style") / "painting.jpg"
    smooth_image(64, 48, seed=99).save(p)
    return p


def take(stream: ImageStream, n: int) -> list[dict]:
    it = iter(stream)
    return [next(it) for _ in range(n)]


def test_folder_stream_shapes_and_skips(photo_dir):
    cfg = DataSettings(data=str(photo_dir), image_size=24, min_side=32, shuffle_buffer=4, seed=1)
    items = take(ImageStream(cfg), 10)  # one pass over the 10 good images
    assert all(i["image"].shape == (3, 24, 24) for i in items)
    assert all(0.0 <= float(i["image"].min()) and float(i["image"].max()) <= 1.0 for i in items)
    assert items[-1]["skipped"] == 2  # broken.jpg and tiny.png


def test_parquet_stream(tmp_path):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    def jpeg(seed: int) -> bytes:
        buf = io.BytesIO()
        smooth_image(50, 40, seed=seed).save(buf, format="JPEG")
        return buf.getvalue()

    rows = [{"bytes": jpeg(i), "path": f"{i}.jpg"} for i in range(5)] + [{"bytes": b"garbage", "path": "bad.jpg"}]
    table = pa.table({"img": rows, "caption": [str(i) for i in range(6)]})
    pq.write_table(table, tmp_path / "train.parquet")
    loader = make_loader(DataSettings(data=str(tmp_path / "train.parquet"), image_column="img", image_size=16,
                                      min_side=16, shuffle_buffer=1), batch_size=5, num_workers=0)
    batch = next(iter(loader))
    assert batch["image"].shape == (5, 3, 16, 16)
    assert int(batch["skipped"].max()) <= 1


def test_all_bad_images_is_an_error_not_a_hang(photo_dir):
    stream = ImageStream(DataSettings(data=str(photo_dir), min_side=10_000))
    with pytest.raises(TrainingError, match="no usable image"):
        next(iter(stream))


def test_resuming_where_only_bad_images_are_left_goes_on_to_the_next_pass(photo_dir):
    """A resumed epoch's remainder may hold only unusable images (tiny.png sorts after the good ones): that is
    not an all-bad dataset; the stream goes on to the next pass."""
    cfg = DataSettings(data=str(photo_dir), image_size=16, min_side=32, shuffle_buffer=1)
    stream = ImageStream(cfg)
    take(stream, 10)  # every good image of the first pass
    state = stream.state_dict()
    assert state["epoch"] == 0
    resumed = ImageStream(cfg)
    resumed.load_state_dict(state)
    item = next(iter(resumed))
    assert item["image"].shape == (3, 16, 16) and resumed.epoch == 1


def test_missing_column_and_missing_dataset(tmp_path, photo_dir):
    with pytest.raises(TrainingError, match="no column 'pixels'"):
        ImageStream(DataSettings(data=str(photo_dir), image_column="pixels"))
    with pytest.raises(TrainingError, match="cannot open dataset|dataset"):
        ImageStream(DataSettings(data=str(tmp_path / "nowhere" / "x.parquet")))


def test_loader_resumes_exactly(photo_dir):
    cfg = DataSettings(data=str(photo_dir), image_size=16, shuffle_buffer=1, seed=3)
    first = make_loader(cfg, batch_size=2, num_workers=1)
    it = iter(first)
    next(it)
    state = first.state_dict()
    expected = [next(it)["image"] for _ in range(2)]
    second = make_loader(cfg, batch_size=2, num_workers=1)
    second.load_state_dict(state)
    it2 = iter(second)
    got = [next(it2)["image"] for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(expected, got))


def test_losses_decrease_on_a_fixed_batch(photo_dir, style_image, monkeypatch, tmp_path):
    """20 steps on one repeated batch: the total loss must drop clearly."""
    import fastnst.train as T

    fixed = None
    real = T.make_loader

    def one_batch_loader(*a, **k):
        loader = real(*a, **k)
        nonlocal fixed
        fixed = next(iter(loader))

        class Repeat(list):
            def state_dict(self):
                return {}

            def __iter__(self):
                while True:
                    yield fixed

        return Repeat()

    monkeypatch.setattr(T, "make_loader", one_batch_loader)
    cfg = TrainConfig(style_image=str(style_image), data=str(photo_dir), output_dir=str(tmp_path / "out"),
                      steps=20, **{**TINY, "lr": 1e-2, "checkpoint_every": 100})
    train(cfg)
    ckpt = torch.load(tmp_path / "out" / "checkpoint.pt", weights_only=True)
    totals = [c + s + t for _, c, s, t, _ in ckpt["history"]]
    assert sum(totals[-3:]) / 3 < 0.5 * sum(totals[:3]) / 3


def test_turned_batches_come_back_aligned_and_the_network_sees_them_turned():
    """--turns: the network sees the photo turned by 90-degree steps, and its output is turned back onto
    the photo (a wrong way back would leave the identity's output rotated against its input)."""
    from fastnst.train import turned

    x = torch.rand(2, 3, 8, 8)
    for k in range(4):
        assert torch.equal(turned(torch.nn.Identity(), x, k), x)
    horizontal = torch.nn.Conv2d(3, 1, (1, 2), bias=False)  # the difference to the right-hand neighbour
    horizontal.weight.data = torch.tensor([-1.0, 1.0]).expand(1, 3, 1, 2).clone()
    stripes = torch.zeros(1, 3, 8, 8)
    stripes[..., ::2, :] = 1.0  # horizontal stripes: no horizontal difference, all vertical
    assert turned(horizontal, stripes, 0).abs().sum() == 0
    assert turned(horizontal, stripes, 1).abs().min() == 3 and turned(horizontal, stripes, 3).abs().min() == 3


def test_train_produces_a_loadable_style_folder(photo_dir, style_image, tmp_path):
    out = tmp_path / "style"
    cfg = TrainConfig(style_image=str(style_image), data=str(photo_dir), output_dir=str(out), steps=3, name="painting",
                      artist="Someone", data_description="three test photos", **TINY)
    folder = train(cfg)
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "style.jpg", "example.jpg", "README.md", "checkpoint.pt"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["style"] == {"name": "painting", "artist": "Someone"}
    assert config["training"]["steps"] == 3 and config["training"]["loss_network"] == "vgg16-random"
    assert set(config["training"]["final_losses"]) == {"content", "style", "tv"}
    img = Stylizer.from_pretrained(folder, device="cpu")(smooth_image(40, 30))
    assert img.size == (40, 30)
    assert list((folder / "runs").iterdir()), "TensorBoard event files are written"
    assert config["training"]["data_description"] == "three test photos"
    assert "| content images are | three test photos |" in (folder / "README.md").read_text()
    # A run continued with --resume reports the training time of all its legs, not the last one's.
    ckpt = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert 0 < ckpt["wall_time_s"] <= config["training"]["wall_time_s"] + 0.1
    ckpt["wall_time_s"] = 1000.0
    torch.save(ckpt, folder / "checkpoint.pt")
    train(dataclasses.replace(cfg, steps=4, resume=True))
    training = json.loads((folder / "config.json").read_text())["training"]
    assert training["resumed_from_step"] == 3 and 1000 <= training["wall_time_s"] < 1300  # rounded to 0.1 s


def test_unwritable_output_fails_before_training(style_image, photo_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cfg = TrainConfig(style_image=str(style_image), data=str(photo_dir), output_dir=str(blocker / "sub"), steps=1, **TINY)
    t = time.time()
    with pytest.raises(TrainingError, match="not writable"):
        train(cfg)
    assert time.time() - t < 5


def test_non_finite_loss_stops_and_keeps_last_checkpoint(photo_dir, style_image, tmp_path, monkeypatch):
    import fastnst.objective as T  # the trainer's loss terms come from fastnst.objective

    calls = {"n": 0}
    real_tv = T.total_variation

    def tv_goes_nan(y):
        calls["n"] += 1
        v = real_tv(y)
        return v * float("nan") if calls["n"] == 5 else v

    monkeypatch.setattr(T, "total_variation", tv_goes_nan)
    out = tmp_path / "nan"
    cfg = TrainConfig(style_image=str(style_image), data=str(photo_dir), output_dir=str(out), steps=8, **TINY)
    with pytest.raises(TrainingError, match="non-finite at step 4"):
        train(cfg)
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 3
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())
    assert not (out / "model.safetensors").exists()


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def _train_cmd(out: Path, photo_dir: Path, style_image: Path, steps: int, *extra: str) -> list[str]:
    args = [sys.executable, str(REPO / "train_scripts" / "train.py"), "--style-image", str(style_image),
            "--data", str(photo_dir), "-o", str(out), "--steps", str(steps)]
    for k, v in TINY.items():
        flag = "--" + k.replace("_", "-")
        args += [flag, ",".join(v) if isinstance(v, tuple) else str(v)]
    return args + list(extra)


def test_killed_run_resumes_like_an_uninterrupted_one(photo_dir, style_image, tmp_path):
    steps = 9
    full = tmp_path / "full"
    subprocess.run(_train_cmd(full, photo_dir, style_image, steps), check=True, capture_output=True)

    part = tmp_path / "part"
    proc = subprocess.Popen(_train_cmd(part, photo_dir, style_image, steps, "--num-workers", "1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = part / "checkpoint.pt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and torch.load(ckpt, weights_only=True)["step"] >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(ckpt, weights_only=True)["step"]
    assert killed_at < steps and not (part / "model.safetensors").exists()

    resumed = subprocess.run(_train_cmd(part, photo_dir, style_image, steps, "--resume", "--num-workers", "1"),
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {ckpt} at step {killed_at}" in resumed.stderr
    a, b = _weights(full), _weights(part)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    hist_full = torch.load(full / "checkpoint.pt", weights_only=True)["history"]
    hist_part = torch.load(ckpt, weights_only=True)["history"]
    assert [h[0] for h in hist_part] == list(range(1, steps + 1))
    torch.testing.assert_close(torch.tensor(hist_full), torch.tensor(hist_part), rtol=1e-4, atol=1e-6)


DDP_WORKER = """
import hashlib, json, os, sys
import fastnst.train as T
seen, weights = [], {}
real_loader, real_ckpt = T.make_loader, T.save_checkpoint
def loader(*a, **k):
    dl = real_loader(*a, **k)
    class Spy:
        def __iter__(self):
            for b in dl:
                seen.extend(hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in b["image"])
                yield b
        def state_dict(self): return dl.state_dict()
        def load_state_dict(self, s): dl.load_state_dict(s)
    return Spy()
def ckpt(cfg, model, *a, **k):
    weights["sha"] = hashlib.sha1(b"".join(v.numpy().tobytes() for v in model.state_dict().values())).hexdigest()
    return real_ckpt(cfg, model, *a, **k)
T.make_loader, T.save_checkpoint = loader, ckpt
from fastnst.cli import train_script_main
rc = train_script_main(sys.argv[1:])
rank = os.environ["RANK"]
out = [a for a in sys.argv if a.startswith("--output-dir=")][0].split("=", 1)[1]
json.dump({"seen": seen, "sha": weights["sha"], "rc": rc}, open(f"{out}/../rank{rank}.json", "w"))
"""


def test_two_process_gloo_run(photo_dir, style_image, tmp_path):
    worker = tmp_path / "ddp_worker.py"
    worker.write_text(DDP_WORKER)
    out = tmp_path / "ddp" / "style"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker),
           "--style-image", str(style_image), "--data", str(photo_dir), f"--output-dir={out}", "--steps", "4",
           "--input-skip", "--centred-skip", "--skip-gain"]  # the shipped styles' skip, with its (1, 3, 1, 1) gain
    for k, v in TINY.items():
        cmd += ["--" + k.replace("_", "-"), ",".join(v) if isinstance(v, tuple) else str(v)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Grad strides do not match" not in proc.stderr, "a parameter's gradient layout differs from DDP's bucket"
    r0 = json.loads((tmp_path / "ddp" / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "ddp" / "rank1.json").read_text())
    assert len(r0["seen"]) == len(r1["seen"]) == 8
    assert not set(r0["seen"]) & set(r1["seen"]), "ranks must see different images"
    assert r0["sha"] == r1["sha"], "DDP keeps the weights identical on both ranks"
    assert (out / "model.safetensors").exists()
    assert Stylizer.from_pretrained(out, device="cpu").model.channels == 4
    training = json.loads((out / "config.json").read_text())["training"]
    # the card's command reproduces the run: a step's batch is --batch-size times the processes
    assert training["command"].startswith("torchrun --nproc_per_node=2 train_scripts/train.py --style-image")
    assert torch.cuda.is_available() or training["hardware"].endswith("in each of 2 processes")


def test_command_under_torchrun_names_the_processes(monkeypatch):
    from fastnst.cli import launcher

    assert launcher("fastnst train --steps 5") == "fastnst train --steps 5"
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert launcher("fastnst train --steps 5") == "torchrun --nnodes=2 --nproc_per_node=4 -m fastnst.cli train --steps 5"
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert launcher("python train_scripts/train.py --steps 5") == "torchrun --nproc_per_node=8 train_scripts/train.py --steps 5"


def test_a_crash_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    """atomic_save writes a temporary file then renames: dying mid-write leaves the old checkpoint whole."""
    import fastnst.train as T

    path = tmp_path / "checkpoint.pt"
    T.atomic_save({"step": 1, "w": torch.ones(3)}, path)

    def dies_half_way(obj, f):
        Path(f).write_bytes(b"PK\x03\x04 half a zip")  # what a killed torch.save leaves behind
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(T.torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        T.atomic_save({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["step"] == 1 and torch.equal(ckpt["w"], torch.ones(3))


def test_killed_during_checkpoint_writes_resumes(photo_dir, style_image, tmp_path):
    """SIGKILL at many moments, including inside checkpoint writes: the checkpoint always loads."""
    out = tmp_path / "run"
    cmd = _train_cmd(out, photo_dir, style_image, 40, "--checkpoint-every", "1")
    for delay in (2.0, 2.5, 3.0):
        proc = subprocess.Popen(cmd + (["--resume"] if (out / "checkpoint.pt").exists() else []),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while not (out / "checkpoint.pt").exists() and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(delay - 2.0 + 0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ckpt = torch.load(out / "checkpoint.pt", weights_only=True)  # never a torn file
        assert 1 <= ckpt["step"] <= 40
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 40


def test_fp16_training_scales_the_loss(photo_dir, style_image, tmp_path):
    """fp16 autocast needs a GradScaler (small gradients underflow otherwise); bf16 and fp32 need none."""
    cfg = TrainConfig(style_image=str(style_image), data=str(photo_dir), output_dir=str(tmp_path / "fp16"), steps=2,
                      **{**TINY, "precision": "fp16", "channels_last": False})
    with pytest.warns(UserWarning):
        train(cfg)
    ckpt = torch.load(tmp_path / "fp16" / "checkpoint.pt", weights_only=True)
    assert ckpt["scaler"].get("scale", 0) > 1  # an active scaler, saved for --resume
    cfg32 = dataclasses.replace(cfg, output_dir=str(tmp_path / "fp32"), precision="fp32")
    with pytest.warns(UserWarning):
        train(cfg32)
    assert torch.load(tmp_path / "fp32" / "checkpoint.pt", weights_only=True)["scaler"] == {}


def test_cosine_learning_rate_schedule():
    from fastnst.train import learning_rate

    cfg = TrainConfig(lr=1e-3, steps=101, lr_schedule="cosine", lr_final_ratio=0.1)
    assert learning_rate(cfg, 0) == pytest.approx(1e-3)
    assert learning_rate(cfg, 50) == pytest.approx(0.55e-3)
    assert learning_rate(cfg, 100) == pytest.approx(1e-4)
    assert learning_rate(dataclasses.replace(cfg, lr_schedule="constant"), 100) == 1e-3
    warm = dataclasses.replace(cfg, lr_warmup=10)
    assert learning_rate(warm, 0) == pytest.approx(1e-4) and learning_rate(warm, 4) == pytest.approx(5e-4 * 0.999, rel=1e-2)
    assert learning_rate(warm, 9) == learning_rate(cfg, 9) and learning_rate(warm, 50) == learning_rate(cfg, 50)
    assert any("lr-warmup" in p for p in dataclasses.replace(cfg, lr_warmup=-1).problems())
    assert any("lr-schedule" in p for p in dataclasses.replace(cfg, lr_schedule="step").problems())


def test_cosine_schedule_under_a_time_limit_decays_over_the_minutes():
    from fastnst.train import learning_rate

    cfg = TrainConfig(lr=1e-3, steps=40_000, lr_schedule="cosine", lr_final_ratio=0.1, max_minutes=10)
    # the steps are far from done, so the minutes set the progress: half way at 5 minutes, the end at 10
    assert learning_rate(cfg, 100, elapsed_s=300) == pytest.approx(0.55e-3, rel=1e-3)
    assert learning_rate(cfg, 100, elapsed_s=600) == pytest.approx(1e-4)
    assert learning_rate(cfg, 100, elapsed_s=900) == pytest.approx(1e-4)
    # whichever runs out first: the steps' progress wins when it is further on
    assert learning_rate(cfg, 39_999, elapsed_s=1) == pytest.approx(1e-4)
    assert learning_rate(dataclasses.replace(cfg, max_minutes=0), 100, elapsed_s=600) > 0.99e-3
    assert any("max-minutes" in p for p in dataclasses.replace(cfg, max_minutes=-1).problems())


def test_the_progress_bar_ends_where_the_minutes_run_out():
    from fastnst.train import expected_last_step

    cfg = TrainConfig(steps=100_000, max_minutes=10)
    # 100 steps in the first 5 minutes: the other 5 allow 100 more
    assert expected_last_step(cfg, done=100, start=0, elapsed_s=300) == 200
    # a resumed run counts its own pace, from the step it resumed at
    assert expected_last_step(cfg, done=1_050, start=1_000, elapsed_s=300) == 1_100
    assert expected_last_step(cfg, done=300, start=0, elapsed_s=700) == 300, "out of minutes: this step is the last"
    assert expected_last_step(dataclasses.replace(cfg, steps=150), 100, 0, 300) == 150, "the steps run out first"
    assert expected_last_step(dataclasses.replace(cfg, max_minutes=0), 100, 0, 300) == 100_000
    assert expected_last_step(cfg, done=0, start=0, elapsed_s=0) == 100_000, "no pace yet"


def test_a_run_out_of_minutes_saves_the_style_at_the_step_it_reached(photo_dir, style_image, tmp_path):
    out = tmp_path / "timed"
    cfg = TrainConfig(style_image=str(style_image), data=str(photo_dir), output_dir=str(out), steps=100_000,
                      max_minutes=0.02, **TINY)  # 1.2 s
    folder = train(cfg)
    training = json.loads((folder / "config.json").read_text())["training"]
    assert 1 <= training["steps"] < 100_000, "stopped by the clock, long before its steps"
    assert training["max_minutes"] == 0.02
    ckpt = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == training["steps"], "the checkpoint is at the last step, so --resume goes on from there"
    assert (out / "samples" / f"step_{training['steps']:06d}.jpg").is_file(), "the last step's sample is written"


def test_dataloader_workers_crop_differently(tmp_path):
    """Each worker process gets its own crop RNG (a copied one made every worker crop identically)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from fastnst.data import make_loader

    buf = io.BytesIO()
    smooth_image(160, 80, seed=3).save(buf, format="PNG")
    for i in range(2):  # two shards holding the same picture: one per worker
        pq.write_table(pa.table({"image": [{"bytes": buf.getvalue(), "path": f"same{i}.png"}]}), tmp_path / f"s{i}.parquet")
    loader = make_loader(DataSettings(data=str(tmp_path), image_size=32, shuffle_buffer=1, seed=0), batch_size=1,
                         num_workers=2)
    assert loader.num_workers == 2
    it = iter(loader)
    crops = [next(it)["image"][0] for _ in range(6)]  # workers take turns: pairs are the same epoch of each
    assert any(not torch.equal(crops[i], crops[i + 1]) for i in range(0, 6, 2))


def test_style_warmup_ramps_the_style_term():
    from fastnst.train import style_ramp

    cfg = TrainConfig(style_warmup=100)
    assert [style_ramp(cfg, s) for s in (0, 50, 100, 5000)] == [0.0, 0.5, 1.0, 1.0]
    assert style_ramp(TrainConfig(), 0) == 1.0  # off by default


def test_ema_saves_the_moving_average_of_the_steps_weights(photo_dir, style_image, tmp_path, monkeypatch):
    import fastnst.train as T

    raw, real_ckpt = [], T.save_checkpoint

    def spy(cfg, model, *a, **k):  # checkpoint_every=1: called after every step with the trained (raw) weights
        raw.append({n: v.detach().clone() for n, v in model.state_dict().items()})
        return real_ckpt(cfg, model, *a, **k)

    monkeypatch.setattr(T, "save_checkpoint", spy)
    decay = 0.6
    folder = train(TrainConfig(style_image=str(style_image), data=str(photo_dir), output_dir=str(tmp_path / "ema"),
                               steps=4, ema_decay=decay, **{**TINY, "checkpoint_every": 1}))
    assert len(raw) == 4
    expected = raw[0]  # the average starts at the first step's weights
    for w in raw[1:]:
        expected = {n: decay * expected[n] + (1 - decay) * w[n] for n in w}
    saved = _weights(folder)
    for n in saved:
        torch.testing.assert_close(saved[n], expected[n], rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(saved[n], raw[-1][n]) for n in saved), "the average, not the last step's weights"
    assert "ema" in torch.load(folder / "checkpoint.pt", weights_only=True)
    assert json.loads((folder / "config.json").read_text())["training"]["ema_decay"] == decay
    assert any("ema-decay" in p for p in TrainConfig(ema_decay=1.0).problems())


def test_ema_resumes_from_the_checkpoint(photo_dir, style_image, tmp_path):
    """A run stopped and resumed saves the same average as one run through (the average travels in the checkpoint)."""
    base = dict(style_image=str(style_image), data=str(photo_dir), ema_decay=0.5, **TINY)
    whole = train(TrainConfig(output_dir=str(tmp_path / "whole"), steps=6, **base))
    train(TrainConfig(output_dir=str(tmp_path / "legs"), steps=3, **base))
    legs = train(TrainConfig(output_dir=str(tmp_path / "legs"), steps=6, resume=True, **base))
    a, b = _weights(whole), _weights(legs)
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=1e-4, atol=1e-5)
