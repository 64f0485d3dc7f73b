"""Training a style: the loop, readable top to bottom; its settings are :class:`fastnst.settings.TrainConfig`.

Runs on one CPU/GPU, or under ``torchrun --nproc_per_node=N`` (DDP: NCCL on GPUs, gloo on CPU;
data sharded per rank; only rank 0 logs, checkpoints and pushes).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from . import __version__
from .card import save_model_card
from .data import crop_resize, make_loader, python_random_state
from .device import hardware_description, pick_device, pick_dtype
from .errors import TrainingError
from .files import atomic_path
from .images import load_image, pil_to_tensor, tensor_to_pil
from .loss_network import LossNetwork, warn_if_random
from .model import TransformerNet
from .multistyle import MultiStyleNet
from .objective import PerceptualObjective
from .settings import StyleEntry, TrainConfig, style_entries, training_block
from .stylizer import Stylizer, save_image

ASSETS = Path(__file__).parent / "assets"
CHECKPOINT = "checkpoint.pt"


# --- setup helpers -------------------------------------------------------------------------

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
    """torch.save, atomically: a crash never leaves a half-written checkpoint."""
    with atomic_path(path, fsync=True) as tmp:
        torch.save(obj, tmp)


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


def build_model(cfg: TrainConfig, entries: list[StyleEntry]) -> TransformerNet | MultiStyleNet:
    """The network to train: one style, or several sharing their convolutions; warm-started by ``--init-from``."""
    base = TransformerNet(**cfg.architecture())
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


def turned(net: torch.nn.Module, x: torch.Tensor, turns: int, *args: Any) -> torch.Tensor:
    """``net`` applied to ``x`` turned by ``turns`` x 90 degrees, its output turned back (``turns`` 0: plainly)."""
    if not turns:
        return net(x, *args)
    return torch.rot90(net(torch.rot90(x, turns, (2, 3)), *args), -turns, (2, 3))


def learning_rate(cfg: TrainConfig, step: int, elapsed_s: float = 0.0) -> float:
    """The learning rate at ``step`` (0-based), ``elapsed_s`` seconds into this run: constant, or a cosine decay
    to ``lr_final_ratio * lr`` over the steps or ``--max-minutes``, whichever runs out first; over the first
    ``lr_warmup`` steps it rises linearly to that."""
    ramp = min(1.0, (step + 1) / cfg.lr_warmup) if cfg.lr_warmup else 1.0
    if cfg.lr_schedule == "constant" or cfg.steps <= 1:
        decay = 1.0
    else:
        progress = min(1.0, max(step / (cfg.steps - 1), elapsed_s / (60 * cfg.max_minutes) if cfg.max_minutes else 0))
        decay = cfg.lr_final_ratio + (1 - cfg.lr_final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.lr * ramp * decay


def expected_last_step(cfg: TrainConfig, done: int, start: int, elapsed_s: float) -> int:
    """The step this run will end at: ``--steps``, or under ``--max-minutes`` the steps the rest of the minutes allow
    at this run's pace so far (so the progress bar's end and time left are the real ones)."""
    if not cfg.max_minutes or done <= start or elapsed_s <= 0:
        return cfg.steps
    left_s = max(0.0, 60 * cfg.max_minutes - elapsed_s)
    return min(cfg.steps, done + round(left_s * (done - start) / elapsed_s))


def style_ramp(cfg: TrainConfig, step: int) -> float:
    """Factor on the style term at ``step``: rises linearly from 0 to 1 over ``style_warmup`` steps.

    Without it a network that cannot yet reproduce the photo finds that painting the style's
    texture everywhere is the cheaper loss, and stays there (docs/quality/README.md)."""
    return 1.0 if step >= cfg.style_warmup else step / cfg.style_warmup


def validation_batch(cfg: TrainConfig) -> torch.Tensor:
    """Fixed images for sample stylizations: the publishable example photos, centre-cropped."""
    imgs = [crop_resize(load_image(p).convert("RGB"), cfg.image_size, None)
            for p in (cfg.example_image or ASSETS / "astronaut.jpg", ASSETS / "chelsea.jpg")]
    return torch.cat([pil_to_tensor(i) for i in imgs])


# --- the loop ------------------------------------------------------------------------------

def standard_strides(model: torch.nn.Module) -> torch.nn.Module:
    """Give parameters that vary only along channels (the skip's (1, 3, 1, 1) gain) the standard strides.

    ``channels_last`` strides them (3, 1, 3, 3) while autograd returns their gradients (3, 1, 1, 1): DDP then
    warns on every rank that the gradient layout breaks its contract and may impair performance."""
    for p in model.parameters():
        if p.dim() == 4 and p.numel() == p.shape[1]:
            p.data = p.data.clone(memory_format=torch.contiguous_format)
    return model


def train(cfg: TrainConfig) -> Path:
    """Train one style (or several in one network); returns the finished style folder (rank 0) or the output
    dir (other ranks)."""
    if not cfg.style_image and not cfg.styles:
        raise TrainingError("no style image: pass --style-image painting.jpg (or --styles list.json).")
    entries = style_entries(cfg)
    rank, world, local = setup_distributed()
    master = rank == 0
    out = Path(cfg.output_dir)
    if master:
        check_output_dir(out)
    device = training_device(cfg, local)
    torch.backends.cudnn.benchmark = True
    amp = pick_dtype(device, cfg.precision, training=True)  # float32: no autocast
    torch.manual_seed(cfg.seed + rank)
    random.seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    warn_if_random(cfg.loss_network)

    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    loss_net = LossNetwork(cfg.loss_network, path=cfg.loss_network_path or None,
                           layers=tuple(set(cfg.style_layers) | {cfg.content_layer})).to(device, memory_format=memory_format)
    objectives = [PerceptualObjective.for_style(cfg, e.image, loss_net=loss_net, device=device) for e in entries]
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = standard_strides(build_model(cfg, entries).to(device, memory_format=memory_format).train())
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    # fp16 gradients underflow without loss scaling (bf16 has fp32's range and needs none)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local] if device.type == "cuda" else None)
    step_fn = torch.compile(net) if cfg.compile else net
    ema = weight_average(model, cfg.ema_decay)
    saved = ema.module if ema else model  # what the samples show and the style folder holds
    loader = make_loader(cfg, cfg.batch_size, cfg.num_workers, rank, world, pin_memory=device.type == "cuda")

    ckpt_path = out / CHECKPOINT
    start, history, wall_before = resume(cfg, ckpt_path, model, optimizer, scaler, loader, rank, ema)
    progress = Progress(cfg, entries, out, start, device, world) if master else None
    batches = iter(loader)
    t0 = time.time()
    for step in range(start, cfg.steps):
        x = next(batches)["image"].to(device, non_blocking=True).contiguous(memory_format=memory_format)
        k = step % len(entries)  # several styles: one style per batch, in turn
        with torch.autocast(device.type, dtype=amp, enabled=amp != torch.float32):
            y = turned(step_fn, x, step % 4 if cfg.turns else 0, *((k,) if len(entries) > 1 else ()))
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
            group["lr"] = learning_rate(cfg, step, time.time() - t0)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if ema:
            ema.update_parameters(model)

        done = step + 1
        history.append([done, *terms.tolist(), k])
        out_of_time = out_of_minutes(cfg, t0, device, world)
        last = done == cfg.steps or out_of_time
        if progress:
            progress.step(done, history[-1][1:4], saved, last)
        if done % cfg.checkpoint_every == 0 or last:
            save_checkpoint(cfg, model, optimizer, scaler, loader, history, done, ckpt_path, world, master,
                            wall_before + time.time() - t0, ema)
        if out_of_time:
            cfg = dataclasses.replace(cfg, steps=done)  # the card tells the steps trained; --resume goes on
            break
    wall = wall_before + time.time() - t0

    if not master:
        dist.barrier()
        dist.destroy_process_group()
        return out
    progress.close()
    folder = finish_styles(cfg, entries, saved, history, wall, start)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    if cfg.push_to_hub:
        from .hub import push_style

        print(push_style(folder, cfg.push_to_hub, private=cfg.private))
    progress.finished(folder, wall)
    return folder


def weight_average(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``model``'s weights (``--ema-decay``; None when 0), updated after each step."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def out_of_minutes(cfg: TrainConfig, t0: float, device: torch.device, world: int) -> bool:
    """Whether ``--max-minutes`` has run out (every rank stops at the same step: rank 0's clock decides)."""
    if not cfg.max_minutes:
        return False
    late = time.time() - t0 >= 60 * cfg.max_minutes
    if world > 1:
        flag = torch.tensor([float(late)], device=device)
        dist.broadcast(flag, src=0)
        late = bool(flag.item())
    return late


def training_device(cfg: TrainConfig, local_rank: int) -> torch.device:
    """This process's device: ``--device``, or under ``auto`` the GPU of its local rank if there is one."""
    try:
        return pick_device(f"cuda:{local_rank}" if cfg.device in ("auto", "cuda") and torch.cuda.is_available()
                           else cfg.device)
    except ValueError as e:
        raise TrainingError(f"--device: {e}") from None


def resume(cfg: TrainConfig, ckpt_path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
           scaler: torch.amp.GradScaler, loader: Any, rank: int, ema: AveragedModel | None = None
           ) -> tuple[int, list, float]:
    """With ``--resume``, restore everything from the checkpoint; returns (first step, loss history, time so far)."""
    if not cfg.resume:
        return 0, [], 0.0
    if not ckpt_path.is_file():
        if rank == 0:
            print(f"--resume: no checkpoint in {ckpt_path.parent}, starting from scratch", file=sys.stderr)
        return 0, [], 0.0
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if "scaler" in ckpt:
        scaler.load_state_dict(ckpt["scaler"])
    if ema and "ema" in ckpt:  # else (a checkpoint from a run without it) the average starts here
        ema.load_state_dict(ckpt["ema"])
    loader.load_state_dict(ckpt["loader"][rank])
    set_rng_state(ckpt["rng"][rank])
    if rank == 0:
        print(f"resumed from {ckpt_path} at step {ckpt['step']}", file=sys.stderr)
    # the model card reports the whole run's time, not the last leg's
    return ckpt["step"], ckpt["history"], float(ckpt.get("wall_time_s", 0.0))


class Progress:
    """What rank 0 shows and logs: a start line, a tqdm bar, TensorBoard scalars, sample images, an end line."""

    def __init__(self, cfg: TrainConfig, entries: list[StyleEntry], out: Path, start: int, device: torch.device,
                 world: int) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        self.cfg, self.out, self.world = cfg, out, world
        names = ", ".join(e.metadata()["name"] for e in entries)
        print(f"training {names}: steps {start + 1}-{cfg.steps} on {device}"
              + (f" x {world} processes" if world > 1 else "") + f"; samples, checkpoints and logs in {out} "
              f"(tensorboard --logdir {out / 'runs'}); interrupt and continue with --resume", file=sys.stderr)
        self.writer = SummaryWriter(str(out / "runs"))
        self.val = validation_batch(cfg).to(device)
        self.bar = tqdm(total=cfg.steps, initial=start, unit="step", dynamic_ncols=True)
        self.t0, self.images, self.start = time.time(), 0, start

    def step(self, done: int, terms: list[float], model: TransformerNet | MultiStyleNet, last: bool) -> None:
        """Step ``done`` ended with these (content, style, tv) terms; ``last``: the run ends here (its steps or
        its minutes ran out), so the scalars and a sample are written whatever the intervals say."""
        c, s, t = terms
        self.images += self.cfg.batch_size * self.world
        elapsed = time.time() - self.t0
        rate = self.images / max(1e-9, elapsed)
        self.bar.total = expected_last_step(self.cfg, done, self.start, elapsed)
        self.bar.set_postfix(img_s=f"{rate:.1f}", content=f"{c:.3g}", style=f"{s:.3g}", tv=f"{t:.3g}", refresh=False)
        self.bar.update(1)
        if done % self.cfg.log_every == 0 or last:
            for k, v in (("content", c), ("style", s), ("tv", t), ("total", c + s + t)):
                self.writer.add_scalar(f"loss/{k}", v, done)
            self.writer.add_scalar("speed/images_per_s", rate, done)
        if done % self.cfg.sample_every == 0 or last:
            save_samples(model, self.val, self.out / "samples" / f"step_{done:06d}.jpg", self.writer, done)

    def close(self) -> None:
        """The run ended at its last step (the steps or the minutes ran out): the bar shows it complete."""
        self.bar.total = self.bar.n
        self.bar.close()
        self.writer.close()

    @staticmethod
    def finished(folder: Path, wall: float) -> None:
        style = folder if (folder / "config.json").is_file() else folder / "NAME"
        print(f"done in {wall / 60:.1f} min: the style is in {folder}.\n  try it:   fastnst stylize photo.jpg "
              f"--style {style}\n  the app:  python app.py --styles embedded,{folder.parent if style == folder else folder}"
              f"\n  share it: fastnst push {style} --repo-id YOU/NAME", file=sys.stderr)


def save_checkpoint(cfg: TrainConfig, model: TransformerNet | MultiStyleNet, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, loader: Any,
                    history: list, step: int, path: Path, world: int, master: bool, wall_time_s: float,
                    ema: AveragedModel | None = None) -> None:
    """Model (and its weight average), optimizer, step, RNG and data-stream state of every rank, written atomically
    by rank 0."""
    local = {"loader": loader.state_dict(), "rng": rng_state()}
    gathered = [local]
    if world > 1:
        gathered = [None] * world
        dist.all_gather_object(gathered, local)
    if master:
        atomic_save({"config": dataclasses.asdict(cfg), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scaler": scaler.state_dict(),
                     "step": step, "history": history, "wall_time_s": wall_time_s, "loader": [g["loader"] for g in gathered],
                     "rng": [g["rng"] for g in gathered], **({"ema": ema.state_dict()} if ema else {})}, path)


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

    out = Path(cfg.output_dir)
    name = cfg.name or Path(cfg.style_image).stem
    last = history[-min(len(history), 50):]
    final = {k: float(np.mean([h[i] for h in last])) for i, k in enumerate(("content", "style", "tv"), start=1)} if last else {}
    training = training_block(cfg, wall_time_s=round(wall, 1), resumed_from_step=start or None,
                              hardware=hardware_description(), final_losses=final, fastnst_version=__version__,
                              torch_version=torch.__version__, **(extra or {}))
    style = {k: v for k, v in dict(name=name, title=cfg.title, artist=cfg.artist, year=cfg.year,
                                   licence=cfg.licence).items() if v}
    final_model = TransformerNet(**cfg.architecture(), style=style, training=training)
    final_model.load_state_dict(model.state_dict())
    if cfg.save_dtype == "fp16":
        final_model = final_model.half()
    final_model.save_pretrained(out)
    style_img = load_image(cfg.style_image).convert("RGB")
    style_img.thumbnail((512, 512))
    style_img.save(out / "style.jpg", quality=90)
    write_example(out, cfg.example_image)
    save_model_card(out)
    return out


def write_example(style_dir: str | os.PathLike, photo: str | os.PathLike = "") -> Path:
    """The style folder's ``example.jpg``: ``photo`` (default: the astronaut) stylized by its saved network, 512 px."""
    example = Stylizer(TransformerNet.from_pretrained(style_dir), device="cpu", precision="fp32")(
        photo or ASSETS / "astronaut.jpg", max_size=512)
    return save_image(example, Path(style_dir) / "example.jpg")
