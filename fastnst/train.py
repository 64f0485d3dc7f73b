"""Training one style: config dataclass, then a loop readable top to bottom.

Runs on one CPU/GPU, or under ``torchrun --nproc_per_node=N`` (DDP: NCCL on GPUs, gloo on CPU;
data sharded per rank; only rank 0 logs, checkpoints and pushes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import random
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .data import DEFAULT_DATASET, StreamConfig, crop_resize, make_loader, python_random_state, read_name_list
from .errors import FastNSTError, TrainingError
from .images import load_image, pil_to_tensor, tensor_to_pil
from .loss_network import LAYERS, LossNetwork, warn_if_random
from .objective import PerceptualObjective, style_targets
from .model import TransformerNet
from .multistyle import MultiStyleNet
from .stylizer import cpu_supports_bf16

ASSETS = Path(__file__).parent / "assets"
CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved in every checkpoint and in the style's config.json."""

    style_image: str = ""
    styles: str = ""               # a JSON list of styles trained together in one network (instead of --style-image)
    only: tuple[str, ...] = ()     # with --styles: train only these names of the list
    init_from: str = ""            # warm start: a style (folder, embedded name, Hub id) or a folder of style folders
    output_dir: str = "styles/my-style"
    # style metadata (goes into config.json's "style" block and the model card)
    name: str = ""
    title: str = ""
    artist: str = ""
    year: str = ""
    licence: str = ""
    # data
    data: str = DEFAULT_DATASET
    data_description: str = ""     # for the model card: what the content images are (a local folder says nothing)
    split: str = "train"
    exclude_list: str = ""         # a file of photo names never trained on (the held-out evaluation split)
    image_column: str = "image"
    image_size: int = 256
    shuffle_buffer: int = 1000
    num_workers: int = 1
    # losses
    loss_network: str = "vgg16"
    loss_network_path: str = ""
    style_size: int = 512
    content_layer: str = "relu2_2"
    style_layers: tuple[str, ...] = LAYERS
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 10.0
    # "relative": content error / ||phi(x)||^2 and per-layer style error / ||G_s||^2, so the weights
    # mean the same for every loss network; "paper": the raw sums of Johnson et al.
    loss_scaling: str = "relative"
    # model and optimisation
    channels: int = 32
    num_residual: int = 5
    input_skip: bool = False
    lr: float = 1e-3
    lr_schedule: str = "constant"  # constant | cosine (decays to lr_final_ratio x lr at the last step)
    lr_final_ratio: float = 0.1
    style_warmup: int = 0          # steps over which the style weight ramps up from 0 (content is learnt first)
    batch_size: int = 4
    steps: int = 40_000
    seed: int = 0
    precision: str = "auto"        # auto | fp32 | bf16 | fp16
    channels_last: bool = True
    compile: bool = False
    device: str = "auto"
    # bookkeeping
    log_every: int = 25
    sample_every: int = 500
    checkpoint_every: int = 250
    resume: bool = False
    save_dtype: str = "fp16"       # weights of the finished style: fp16 halves the download
    push_to_hub: str = ""
    private: bool = False
    example_image: str = str(ASSETS / "astronaut.jpg")
    command: str = field(default="", repr=False)


PRESETS: dict[str, dict[str, Any]] = {
    # Johnson et al.: 256 px, batch 4, 40k iterations (2 epochs of COCO), lr 1e-3, relu2_2 content.
    "paper": dict(image_size=256, batch_size=4, steps=40_000, lr=1e-3, channels=32, num_residual=5),
    # A CPU run of about an hour on 2 cores (small width, smaller crops).
    # input_skip keeps the photo recognisable from the first steps, which a short run needs.
    # lr 2e-3 / style weight 20 drifted back to the identity on the embedded styles; 1e-3 / 50 did not.
    "cpu-small": dict(image_size=192, batch_size=2, steps=2_500, lr=1e-3, channels=16, num_residual=5,
                      input_skip=True, style_weight=50.0, tv_weight=10.0, sample_every=250, checkpoint_every=100,
                      style_size=384),
    # The shipped styles, one single-threaded process on a 2-core CPU (one style, or several in one
    # network with --styles). A content/style balance whose optimum still shows the photo (style
    # weight 50 gave textures without content even to Gatys et al.'s optimisation), and the input
    # skip: without it a short run paints one colour field whatever the photo (docs/quality/README.md).
    # 128 px crops for 3.5x the steps of 256 px; cosine lr decay.
    "cpu-joint": dict(image_size=128, batch_size=4, steps=3_500, lr=1e-3, lr_schedule="cosine", lr_final_ratio=0.1,
                      channels=16, num_residual=5, input_skip=True, content_weight=1.0, style_weight=3.0,
                      tv_weight=10.0, style_size=384, sample_every=500, checkpoint_every=200, log_every=25),
    # Seconds, for tests and smoke checks.
    "smoke": dict(image_size=64, batch_size=2, steps=10, channels=8, num_residual=1, log_every=1,
                  sample_every=5, checkpoint_every=5, style_size=64),
}


PRESET_HELP = {
    "paper": "Johnson et al.'s recipe for a GPU (256 px, batch 4, 40k steps, full width)",
    "cpu-joint": "the shipped styles on a CPU: one style, or several in one small network (--styles list.json); "
                 "128 px, batch 4, 3500 steps, style weight 3, input skip, cosine lr; ~55 min on one core",
    "cpu-small": "the earlier CPU recipe with input skip (192 px, batch 2, style weight 50): mild, tints the photo",
    "smoke": "seconds, for tests",
}


# --- setup helpers -------------------------------------------------------------------------

def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for a precision setting, or None for plain fp32."""
    if precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None


def setup_distributed() -> tuple[int, int, int]:
    """(rank, world_size, local_rank), initialising the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world == 1:
        return 0, 1, 0
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    return rank, world, local


def check_output_dir(path: Path) -> None:
    """Fail fast, before any training, if the output folder cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"x" * 1024 * 1024)  # a 1 MiB write also catches a full disk
        probe.unlink()
    except OSError as e:
        raise TrainingError(f"output folder {path} is not writable ({e.strerror or e}). Choose another --output-dir.") from None


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves a half-written checkpoint."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(python_random_state(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass(frozen=True)
class StyleEntry:
    """One painting to train: its image and the metadata written to config.json and the model card."""

    image: str
    name: str = ""
    title: str = ""
    artist: str = ""
    year: str = ""
    licence: str = ""

    def metadata(self) -> dict[str, str]:
        name = self.name or Path(self.image).stem
        return {k: v for k, v in dict(name=name, title=self.title, artist=self.artist, year=self.year,
                                      licence=self.licence).items() if v}


def style_entries(cfg: TrainConfig) -> list[StyleEntry]:
    """The styles a run trains: those of the ``--styles`` JSON list, else the one ``--style-image``."""
    if not cfg.styles:
        return [StyleEntry(cfg.style_image, cfg.name, cfg.title, cfg.artist, cfg.year, cfg.licence)]
    try:
        items = json.loads(Path(cfg.styles).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise TrainingError(f"--styles {cfg.styles}: cannot read a JSON list of styles ({e}).") from None
    known = {f.name for f in dataclasses.fields(StyleEntry)}
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) and "image" in i for i in items):
        raise TrainingError(f"--styles {cfg.styles}: must be a JSON list of objects, each with an \"image\".")
    entries = [StyleEntry(**{k: str(v) for k, v in i.items() if k in known}) for i in items]
    if cfg.only:
        unknown = set(cfg.only) - {e.metadata()["name"] for e in entries}
        if unknown:
            raise TrainingError(f"--only {', '.join(sorted(unknown))}: not in {cfg.styles}.")
        entries = [e for e in entries if e.metadata()["name"] in cfg.only]
    names = [e.metadata()["name"] for e in entries]
    if len(set(names)) != len(names):
        raise TrainingError(f"--styles {cfg.styles}: style names must be unique ({', '.join(names)}).")
    return entries


def load_style_target(image: str, cfg: TrainConfig, loss_net: LossNetwork, device: torch.device) -> dict[str, torch.Tensor]:
    """Gram matrices of the style image at ``style_size`` (computed once)."""
    return style_targets(image, loss_net, cfg.style_layers, cfg.style_size, device)


def build_model(cfg: TrainConfig, entries: list[StyleEntry]) -> TransformerNet | MultiStyleNet:
    """The network to train: one style, or several sharing their convolutions; warm-started by ``--init-from``."""
    base = TransformerNet(channels=cfg.channels, num_residual=cfg.num_residual, input_skip=cfg.input_skip)
    if not cfg.init_from:
        return base if len(entries) == 1 else MultiStyleNet(base, len(entries))
    init = Path(cfg.init_from)
    if init.is_dir() and not (init / "config.json").is_file():
        # a folder of style folders (e.g. fastnst/embedded): each style from its namesake, new ones from the first
        names = [e.metadata()["name"] for e in entries]
        given = [_load_init(str(init / n)) if (init / n / "config.json").is_file() else None for n in names]
        if not any(given):
            raise TrainingError(f"--init-from {init}: holds no style folder named like a style of this run "
                                f"({', '.join(names)}).")
    else:  # one style (folder, embedded name or Hub id): every style starts from it
        given = [_load_init(cfg.init_from)] * len(entries)
    joint = MultiStyleNet.from_styles(given, like=base)
    return joint if len(entries) > 1 else joint.export(0)


def _load_init(spec: str) -> TransformerNet:
    from .styles import resolve_style

    return TransformerNet.from_pretrained(resolve_style(spec))


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The learning rate at ``step`` (0-based): constant, or a cosine decay to ``lr_final_ratio * lr``."""
    if cfg.lr_schedule == "constant" or cfg.steps <= 1:
        return cfg.lr
    progress = min(1.0, step / (cfg.steps - 1))
    return cfg.lr * (cfg.lr_final_ratio + (1 - cfg.lr_final_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def style_ramp(cfg: TrainConfig, step: int) -> float:
    """Factor on the style term at ``step``: rises linearly from 0 to 1 over ``style_warmup`` steps.

    Without it a network that cannot yet reproduce the photo finds that painting the style's
    texture everywhere is the cheaper loss, and stays there (docs/quality/README.md)."""
    return 1.0 if step >= cfg.style_warmup else step / cfg.style_warmup


def validation_batch(cfg: TrainConfig) -> torch.Tensor:
    """Fixed images for sample stylizations: the publishable example photos, centre-cropped."""
    imgs = [crop_resize(load_image(p).convert("RGB"), cfg.image_size, None)
            for p in (cfg.example_image, str(ASSETS / "chelsea.jpg"))]
    return torch.cat([pil_to_tensor(i) for i in imgs])


# --- the loop ------------------------------------------------------------------------------

def train(cfg: TrainConfig) -> Path:
    """Train one style; returns the finished style folder (rank 0) or the output dir (other ranks)."""
    if not cfg.style_image and not cfg.styles:
        raise TrainingError("no style image: pass --style-image painting.jpg (or --styles list.json).")
    entries = style_entries(cfg)
    rank, world, local = setup_distributed()
    master = rank == 0
    out = Path(cfg.output_dir)
    if master:
        check_output_dir(out)
    device = torch.device(f"cuda:{local}" if torch.cuda.is_available() and cfg.device in ("auto", "cuda")
                          else ("cpu" if cfg.device == "auto" else cfg.device))
    torch.backends.cudnn.benchmark = True
    amp = autocast_dtype(device, cfg.precision)
    torch.manual_seed(cfg.seed + rank)
    random.seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    warn_if_random(cfg.loss_network)

    loss_net = LossNetwork(cfg.loss_network, path=cfg.loss_network_path or None,
                           layers=tuple(set(cfg.style_layers) | {cfg.content_layer})).to(device)
    objectives = [PerceptualObjective(loss_net, load_style_target(e.image, cfg, loss_net, device), cfg) for e in entries]
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = build_model(cfg, entries).to(device).train()
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    loss_net = loss_net.to(memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    # fp16 gradients underflow without loss scaling (bf16 has fp32's range and needs none)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local] if device.type == "cuda" else None)
    step_fn = torch.compile(net) if cfg.compile else net

    stream = StreamConfig(source=cfg.data, split=cfg.split, image_column=cfg.image_column, image_size=cfg.image_size,
                          shuffle_buffer=cfg.shuffle_buffer, seed=cfg.seed,
                          exclude=read_name_list(cfg.exclude_list) if cfg.exclude_list else frozenset())
    loader = make_loader(stream, cfg.batch_size, cfg.num_workers, rank, world, pin_memory=device.type == "cuda")

    start, history, wall_before = 0, [], 0.0
    ckpt_path = out / CHECKPOINT
    if cfg.resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if "scaler" in ckpt:
            scaler.load_state_dict(ckpt["scaler"])
        loader.load_state_dict(ckpt["loader"][rank])
        set_rng_state(ckpt["rng"][rank])
        start, history = ckpt["step"], ckpt["history"]
        wall_before = float(ckpt.get("wall_time_s", 0.0))  # the model card reports the whole run, not the last leg
        if master:
            print(f"resumed from {ckpt_path} at step {start}", file=sys.stderr)
    elif cfg.resume and master:
        print(f"--resume: no checkpoint in {out}, starting from scratch", file=sys.stderr)

    writer = None
    if master:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "runs"))
        val = validation_batch(cfg).to(device)
    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=start, disable=not master, unit="step", dynamic_ncols=True)
    batches = iter(loader)
    t0, images_done = time.time(), 0
    for step in range(start, cfg.steps):
        x = next(batches)["image"].to(device, non_blocking=True).contiguous(memory_format=memory_format)
        k = step % len(entries)  # several styles: one style per batch, in turn
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            y = step_fn(x, k) if len(entries) > 1 else step_fn(x)
            content, style, tv = objectives[k](y, x)
            # the logged terms stay those of the objective; during --style-warmup the step weighs style less
            loss = content + style_ramp(cfg, step) * style + tv
        terms = torch.stack([content.detach(), style.detach(), tv.detach()]).float()
        if world > 1:
            dist.all_reduce(terms, op=dist.ReduceOp.AVG)
        if not torch.isfinite(terms).all():
            raise TrainingError(
                f"loss became non-finite at step {step} (content, style, tv = {terms.tolist()}). "
                f"The last good checkpoint is kept in {ckpt_path}. Lower --lr or --style-weight, or use --precision fp32."
            )
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

        done = step + 1
        images_done += cfg.batch_size * world
        c, s, t = terms.tolist()
        history.append([done, c, s, t, k])
        if master:
            rate = images_done / max(1e-9, time.time() - t0)
            bar.set_postfix(img_s=f"{rate:.1f}", content=f"{c:.3g}", style=f"{s:.3g}", tv=f"{t:.3g}", refresh=False)
            bar.update(1)
            if done % cfg.log_every == 0 or done == cfg.steps:
                for k, v in (("content", c), ("style", s), ("tv", t), ("total", c + s + t), ("images_per_s", rate)):
                    writer.add_scalar(f"loss/{k}" if k != "images_per_s" else "speed/images_per_s", v, done)
            if done % cfg.sample_every == 0 or done == cfg.steps:
                save_samples(model, val, out / "samples" / f"step_{done:06d}.jpg", writer, done)
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save_checkpoint(cfg, model, optimizer, scaler, loader, history, done, ckpt_path, world, master,
                            wall_before + time.time() - t0)
    bar.close()
    wall = wall_before + time.time() - t0

    if not master:
        dist.barrier()
        dist.destroy_process_group()
        return out
    writer.close()
    folder = finish_styles(cfg, entries, model, history, wall, start)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    if cfg.push_to_hub:
        from .hub import push_style

        print(push_style(folder, cfg.push_to_hub, private=cfg.private))
    return folder


def save_checkpoint(cfg: TrainConfig, model: TransformerNet | MultiStyleNet, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, loader: Any,
                    history: list, step: int, path: Path, world: int, master: bool, wall_time_s: float) -> None:
    """Model, optimizer, step, RNG and data-stream state of every rank, written atomically by rank 0."""
    local = {"loader": loader.state_dict(), "rng": rng_state()}
    gathered = [local]
    if world > 1:
        gathered = [None] * world
        dist.all_gather_object(gathered, local)
    if master:
        atomic_save({"config": dataclasses.asdict(cfg), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scaler": scaler.state_dict(),
                     "step": step, "history": history, "wall_time_s": wall_time_s, "loader": [g["loader"] for g in gathered],
                     "rng": [g["rng"] for g in gathered]}, path)


@torch.no_grad()
def save_samples(model: TransformerNet | MultiStyleNet, val: torch.Tensor, path: Path, writer: Any, step: int) -> None:
    """Each validation image beside its stylization (several styles: the first image in every style)."""
    model.eval()
    if isinstance(model, MultiStyleNet):
        outs = [model(val[:1], k).float().clamp(0, 1) for k in range(model.num_styles)]
        rows = [torch.cat([val[0].float().cpu(), o[0].cpu()], dim=2) for o in outs]
    else:
        y = model(val).float().clamp(0, 1)
        rows = [torch.cat([v, o], dim=2) for v, o in zip(val.float().cpu(), y.cpu())]
    model.train()
    grid = torch.cat(rows, dim=1)
    writer.add_image("samples", grid, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(grid).save(path, quality=90)


def finish_styles(cfg: TrainConfig, entries: list[StyleEntry], model: TransformerNet | MultiStyleNet, history: list,
                  wall: float, start: int) -> Path:
    """Write the finished style folder(s): the output folder itself, or one sub-folder per style of a joint run."""
    if not cfg.styles:
        return finish_style(cfg, model, history, wall, start)
    names = [e.metadata()["name"] for e in entries]
    joint = {"styles_trained_together": names, "steps_per_style": cfg.steps // len(entries)} if len(names) > 1 else {}
    for k, e in enumerate(entries):
        own = dataclasses.replace(cfg, style_image=e.image, name=names[k], title=e.title, artist=e.artist,
                                  year=e.year, licence=e.licence, output_dir=str(Path(cfg.output_dir) / names[k]))
        single = model.export(k) if isinstance(model, MultiStyleNet) else model
        finish_style(own, single, [h for h in history if h[4] == k], wall, start, joint)
    return Path(cfg.output_dir)


def finish_style(cfg: TrainConfig, model: TransformerNet, history: list, wall: float, start: int,
                 extra: dict[str, Any] | None = None) -> Path:
    """Write the style folder in the Hub layout: weights, config, style.jpg, example.jpg, model card."""
    from .stylizer import Stylizer, save_image

    out = Path(cfg.output_dir)
    name = cfg.name or Path(cfg.style_image).stem
    last = history[-min(len(history), 50):]
    final = {k: float(np.mean([h[i] for h in last])) for i, k in enumerate(("content", "style", "tv"), start=1)} if last else {}
    training = {
        "command": cfg.command or "fastnst train " + " ".join(_config_to_argv(cfg)),
        "style_image": cfg.style_image, "dataset": cfg.data, **({"dataset_description": cfg.data_description} if cfg.data_description else {}),
        "split": cfg.split, **({"held_out": cfg.exclude_list} if cfg.exclude_list else {}),
        **({"init_from": cfg.init_from} if cfg.init_from else {}), "steps": cfg.steps, "batch_size": cfg.batch_size,
        "image_size": cfg.image_size, "style_size": cfg.style_size, "loss_network": cfg.loss_network,
        "content_layer": cfg.content_layer, "style_layers": list(cfg.style_layers),
        "content_weight": cfg.content_weight, "style_weight": cfg.style_weight, "tv_weight": cfg.tv_weight,
        "loss_scaling": cfg.loss_scaling,
        "lr": cfg.lr, "lr_schedule": cfg.lr_schedule, "lr_final_ratio": cfg.lr_final_ratio,
        "style_warmup": cfg.style_warmup, "seed": cfg.seed,
        "precision": cfg.precision,
        "wall_time_s": round(wall, 1), "resumed_from_step": start or None,
        "hardware": hardware_description(), "final_losses": final,
        "fastnst_version": _version(), "torch_version": torch.__version__, **(extra or {}),
    }
    style = {k: v for k, v in dict(name=name, title=cfg.title, artist=cfg.artist, year=cfg.year,
                                   licence=cfg.licence).items() if v}
    final_model = TransformerNet(channels=cfg.channels, num_residual=cfg.num_residual, input_skip=cfg.input_skip,
                                 style=style, training=training)
    final_model.load_state_dict(model.state_dict())
    if cfg.save_dtype == "fp16":
        final_model = final_model.half()
    final_model.save_pretrained(out)
    style_img = load_image(cfg.style_image).convert("RGB")
    style_img.thumbnail((512, 512))
    style_img.save(out / "style.jpg", quality=90)
    example = Stylizer(TransformerNet.from_pretrained(out), device="cpu", precision="fp32")(cfg.example_image, max_size=512)
    save_image(example, out / "example.jpg")
    try:
        from .card import save_model_card
    except ImportError:  # the model card module is optional at this stage
        pass
    else:
        (out / "README.md").unlink(missing_ok=True)
        save_model_card(out)
    return out


def hardware_description() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    return f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def _version() -> str:
    from . import __version__

    return __version__


# --- command line --------------------------------------------------------------------------

_SKIP_CLI = {"command"}


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One --flag per TrainConfig field, so the CLI and the dataclass can never drift apart."""
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="start from preset values (flags override them): " + "; ".join(
                            f"{name}: {text}" for name, text in PRESET_HELP.items()))
    for f in dataclasses.fields(TrainConfig):
        if f.name in _SKIP_CLI:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f"(default {default})")
        elif isinstance(default, tuple):
            parser.add_argument(flag, default=None, help=f"comma-separated (default {','.join(default)})")
        else:
            parser.add_argument(flag, type=type(default), default=None, help=f"(default {default!r})")


def config_from_args(args: argparse.Namespace, command: str = "") -> TrainConfig:
    values: dict[str, Any] = dict(PRESETS.get(args.preset or "", {}))
    for f in dataclasses.fields(TrainConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            values[f.name] = tuple(x.strip() for x in v.split(",") if x.strip()) if isinstance(f.default, tuple) else v
    cfg = TrainConfig(**values)
    cfg.command = command
    validate_config(cfg)
    return cfg


def validate_config(cfg: TrainConfig) -> None:
    problems = []
    for name in ("image_size", "batch_size", "steps", "style_size", "log_every", "sample_every", "checkpoint_every"):
        if getattr(cfg, name) < 1:
            problems.append(f"--{name.replace('_', '-')} must be >= 1")
    if cfg.lr <= 0:
        problems.append("--lr must be > 0")
    unknown = set(cfg.style_layers) | {cfg.content_layer}
    if unknown - set(LAYERS):
        problems.append(f"unknown layers {sorted(unknown - set(LAYERS))}; choose from {', '.join(LAYERS)}")
    if cfg.precision not in ("auto", "fp32", "bf16", "fp16"):
        problems.append("--precision must be auto, fp32, bf16 or fp16")
    if cfg.style_warmup < 0:
        problems.append("--style-warmup must be >= 0")
    if cfg.lr_schedule not in ("constant", "cosine"):
        problems.append("--lr-schedule must be constant or cosine")
    if not 0 < cfg.lr_final_ratio <= 1:
        problems.append("--lr-final-ratio must be in (0, 1]")
    if cfg.loss_scaling not in ("relative", "paper"):
        problems.append("--loss-scaling must be relative or paper")
    if cfg.save_dtype not in ("fp16", "fp32"):
        problems.append("--save-dtype must be fp16 or fp32")
    if problems:
        raise TrainingError("; ".join(problems))


def _config_to_argv(cfg: TrainConfig) -> list[str]:
    base = TrainConfig()
    argv = []
    for f in dataclasses.fields(TrainConfig):
        v = getattr(cfg, f.name)
        if f.name in _SKIP_CLI or v == getattr(base, f.name):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(v, bool):
            argv.append(flag if v else "--no-" + f.name.replace("_", "-"))
        else:
            argv += [flag, shlex.quote(",".join(v) if isinstance(v, tuple) else str(v))]
    return argv


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a style from a painting",
                       description="Train a style network on a stream of photos (Hub dataset, image folder or Parquet).",
                       epilog="examples:\n"
                              "  fastnst train --preset paper --style-image starry.jpg -o styles/starry   # GPU, COCO from the Hub\n"
                              "  fastnst train --preset cpu-small --style-image starry.jpg --data ../shared/data/photos "
                              "--loss-network vgg16-hed -o styles/starry\n"
                              "  torchrun --nproc_per_node=8 train_scripts/train.py --preset paper --style-image starry.jpg",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(p)
    p.add_argument("-o", dest="output_dir", default=None, help="alias of --output-dir")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    print(train(config_from_args(args, "fastnst " + " ".join(shlex.quote(a) for a in sys.argv[1:]))))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of train_scripts/train.py (also works under torchrun)."""
    parser = argparse.ArgumentParser(prog="train.py", description="Train one fastnst style.")
    add_config_arguments(parser)
    parser.add_argument("-o", dest="output_dir", default=None, help="alias of --output-dir")
    args = parser.parse_args(argv)
    command = "python train_scripts/train.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    try:
        print(train(config_from_args(args, command)))
    except FastNSTError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 1
    return 0
