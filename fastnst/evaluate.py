"""Quality evaluation: the feed-forward network against Gatys et al.'s optimisation (Johnson et al., Fig. 5).

For held-out photos at a few sizes, the loss a style was trained with (content + style + TV, same
loss network, layers and weights: :class:`fastnst.objective.PerceptualObjective` built from the
style's config.json ``training`` block) is measured for

* the feed-forward output of the style network, and
* Gatys et al.'s optimisation of the image pixels with L-BFGS, started from the content photo,
  after 50, 100, 200, 300 and 500 iterations (one run, snapshots on the way).

The report gives the smallest number of Gatys iterations whose loss is at most the network's
("matched iterations"; Johnson et al. found the network comparable to about 50-100) and the
wall-time ratios, and a side-by-side picture content | style | feed-forward | Gatys 100 | Gatys 500.

``fastnst eval STYLE --photos demo/examples`` runs it from the command line. Use held-out photos:
the photos a style was trained on are not a fair test (and the research-only training photos
must not end up in published pictures).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont

from .data import crop_resize, read_list, read_name_list
from .errors import FastNSTError
from .files import atomic_path
from .images import ImageInput, fit_size, label_font, list_images, load_image, pil_to_tensor, tensor_to_pil
from .device import hardware_description, pick_device
from .model import TransformerNet
from .objective import LossTerms, PerceptualObjective
from .settings import EVAL_SIZES as SIZES
from .settings import GATYS_INITS as INITS
from .settings import GATYS_ITERATIONS, ObjectiveSettings, TrainConfig, normalise_training, style_entries
from .styles import read_config

#: Gatys snapshots shown in the side-by-side picture (the nearest available are used otherwise).
PICTURE_ITERATIONS = (50, 100)
#: Publishable photos never used in training, shipped in the package (public domain / CC0, see its SOURCES.md).
DEFAULT_PHOTOS = Path(__file__).parent / "assets"
COUNTING = ("L-BFGS iterations of torch.optim.LBFGS (lr 1, history 100); without line search each iteration "
            "is exactly one loss+gradient evaluation (as in Johnson's neural-style); pixels are projected onto "
            "[0, 1] after every iteration; the loss at n iterations is that of the best image evaluated within "
            "n iterations; 0 iterations = the content photo itself")


# --- Gatys et al.: optimising the pixels ------------------------------------------------------

@dataclass
class GatysCheckpoint:
    """The best image of a Gatys optimisation within its first ``iterations`` L-BFGS iterations."""

    iterations: int
    evaluations: int            # loss+gradient evaluations so far (= iterations without line search)
    loss: dict[str, float]      # content, style, tv, total (weighted, as in training) of ``image``
    time_s: float               # optimisation wall time so far (snapshot evaluations excluded)
    image: torch.Tensor | None = field(default=None, repr=False)  # 1x3xHxW in [0, 1], on the CPU

    def to_json(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "evaluations": self.evaluations, "loss": self.loss,
                "time_s": round(self.time_s, 4)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gatys(content: ImageInput | torch.Tensor, objective: PerceptualObjective,
          iterations: Iterable[int] = GATYS_ITERATIONS, *, lr: float = 1.0, history_size: int = 100,
          line_search: bool = False, init: torch.Tensor | None = None, keep_images: bool = True,
          progress: Callable[[GatysCheckpoint], None] | None = None) -> list[GatysCheckpoint]:
    """Gatys et al.'s style transfer: L-BFGS on the image pixels, from the content image, against ``objective``.

    One optimisation runs to ``max(iterations)``; when the iteration count reaches each value of
    ``iterations`` a :class:`GatysCheckpoint` is recorded: the loss terms of the best image so far,
    the cumulative wall time, and the image itself if ``keep_images``. ``content`` is a 1x3xHxW
    tensor in [0, 1] or anything :func:`~fastnst.images.load_image` reads (used at its own size);
    a checkpoint at 0 iterations is the starting image (the content photo) itself. ``init``
    starts from another image than the content (e.g. noise).

    Iterations are counted as L-BFGS iterations. Without ``line_search`` (the default, as in
    Johnson's neural-style: lr 1, no line search) each is exactly one loss+gradient evaluation;
    with it (strong Wolfe) an iteration may take several, counted in ``evaluations``.

    The pixels are projected onto [0, 1] after every iteration, so every image evaluated is a
    valid one (optimising them unconstrained and clamping the result did markedly worse with a
    VGG loss network: many values leave the range). The projection spoils L-BFGS' curvature
    pairs a little, so the loss may rise for an iteration near convergence; the best image
    evaluated so far is kept, which makes the reported loss non-increasing.
    """
    checkpoints = sorted({int(i) for i in iterations})
    if not checkpoints or checkpoints[0] < 0:
        raise ValueError(f"iterations must be integers >= 0 (0: the starting image), not {list(iterations)}")
    device = next(objective.loss_net.parameters()).device
    if not isinstance(content, torch.Tensor):
        content = pil_to_tensor(load_image(content).convert("RGB"))
    content = content.to(device, torch.float32)
    target = objective.content_target(content)
    x = (content if init is None else init.to(device, torch.float32)).detach().clone().clamp_(0, 1)
    x.requires_grad_(True)
    # tolerances < 0: never stop early, so every run does exactly the requested iterations;
    # max_eval bounds the line search per iteration (its default, 1.25 max_iter, would stall it)
    opt = torch.optim.LBFGS([x], lr=lr, max_iter=1, max_eval=25, history_size=history_size, tolerance_grad=-1.0,
                            tolerance_change=-1.0, line_search_fn="strong_wolfe" if line_search else None)
    best: dict[str, Any] = {"total": math.inf}

    def keep_if_best(terms: LossTerms) -> None:
        terms = LossTerms(*(t.detach() for t in terms))
        total = float(terms.total)
        if total < best["total"]:
            best.update(total=total, terms=terms, image=x.detach().clone())

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        terms = objective.terms(x, target)
        terms.total.backward()
        keep_if_best(terms)
        return terms.total

    results: list[GatysCheckpoint] = []
    done, elapsed = 0, 0.0
    for n in checkpoints:
        t0 = time.perf_counter()
        while done < n:
            opt.step(closure)
            with torch.no_grad():
                x.clamp_(0, 1)
            done += 1
        _sync(device)
        elapsed += time.perf_counter() - t0
        with torch.no_grad():  # the current image (evaluated by the next step otherwise)
            keep_if_best(objective.terms(x, target))
        if not math.isfinite(best["total"]):
            raise FastNSTError(f"the Gatys optimisation diverged after {done} iterations; "
                               "try line_search=True (--line-search) or a smaller lr.")
        evals = int(opt.state[x].get("func_evals", 0))
        point = GatysCheckpoint(n, evals, best["terms"].as_floats(), elapsed,
                                best["image"].cpu().clone() if keep_images else None)
        results.append(point)
        if progress is not None:
            progress(point)
    return results


# --- the comparison for one photo ---------------------------------------------------------------

def matched_iterations(feed_forward_loss: float, checkpoints: Sequence[Mapping[str, Any] | GatysCheckpoint]) -> int | None:
    """The smallest Gatys checkpoint whose total loss is at most the feed-forward loss (None: none is)."""
    for c in sorted(checkpoints, key=lambda c: _get(c, "iterations")):
        if _get(c, "loss")["total"] <= feed_forward_loss:
            return int(_get(c, "iterations"))
    return None


def matched_estimate(feed_forward_loss: float, checkpoints: Sequence[Mapping[str, Any] | GatysCheckpoint]) -> float | None:
    """Iterations where Gatys reaches the feed-forward loss, interpolating log-loss linearly between checkpoints.

    None when no checkpoint reaches it; the first checkpoint's count when already the first does.
    """
    points = sorted(((int(_get(c, "iterations")), float(_get(c, "loss")["total"])) for c in checkpoints))
    prev = None
    for n, loss in points:
        if loss <= feed_forward_loss:
            if prev is None or prev[1] <= loss or loss <= 0:
                return float(n)
            (n0, l0), target = prev, feed_forward_loss
            frac = (math.log(l0) - math.log(target)) / (math.log(l0) - math.log(loss))
            return round(n0 + frac * (n - n0), 1)
        prev = (n, loss)
    return None


def _get(c: Mapping[str, Any] | GatysCheckpoint, key: str) -> Any:
    return c[key] if isinstance(c, Mapping) else getattr(c, key)


def _ratio(a: float | None, b: float) -> float | None:
    return None if a is None or b <= 0 else round(a / b, 1)


def compare(feed_forward: Mapping[str, Any], checkpoints: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Matched iterations and time ratios of one feed-forward result against Gatys checkpoints (JSON dicts)."""
    ff_loss, ff_time = feed_forward["loss"]["total"], feed_forward["time_s"]
    matched = matched_iterations(ff_loss, checkpoints)
    by_n = {c["iterations"]: c for c in checkpoints}
    last = max(by_n)
    return {
        "matched_iterations": matched,
        "matched": str(matched) if matched is not None else f"> {last}",
        "matched_estimate": matched_estimate(ff_loss, checkpoints),
        "time_ratio_matched": _ratio(by_n[matched]["time_s"], ff_time) if matched else None,  # 0: the photo
        "time_ratio_last": _ratio(by_n[last]["time_s"], ff_time),
    }


def prepare_photo(photo: ImageInput, size: int) -> torch.Tensor:
    """The photo resized (short side) and centre-cropped to ``size`` x ``size``, as 1x3xSxS in [0, 1]."""
    return pil_to_tensor(crop_resize(load_image(photo).convert("RGB"), size, None))


def feed_forward(model: TransformerNet, x: torch.Tensor, device: torch.device | str = "cpu",
                 repeats: int = 3) -> tuple[torch.Tensor, float]:
    """The network's output for ``x`` (fp32, eval mode, clamped) and the median time of ``repeats`` runs after a warm-up."""
    from .stylizer import Stylizer

    stylizer = Stylizer(model, device=device, precision="fp32")
    y = stylizer.stylize_tensor(x)  # warm-up (allocations, kernels)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        y = stylizer.stylize_tensor(x)  # returns on the CPU: the device is synchronised
        times.append(time.perf_counter() - t0)
    return y, statistics.median(times)


# --- one style -----------------------------------------------------------------------------------

def find_style_image(style_dir: Path, training: Mapping[str, Any], explicit: str | os.PathLike | None = None,
                     name: str | None = None) -> tuple[Path, str]:
    """(style image, where it came from): ``explicit`` (an image, or a JSON list of styles as ``train --styles``
    reads, naming each style's painting: one flag for several styles), else the image the training read (its
    ``style_image``, ``--style-image`` or, for a style trained with others, its entry in the ``--styles``
    list) if it exists here, else the folder's style.jpg."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FastNSTError(f"--style-image {path}: no such file.")
        if path.suffix.lower() != ".json":
            return path, "given with --style-image"
        listed = {e.metadata()["name"]: Path(e.image) for e in style_entries(TrainConfig(styles=str(path)))}
        if name not in listed:
            raise FastNSTError(f"--style-image {path}: lists no style named {name!r} ({', '.join(listed)}).")
        if not listed[name].is_file():
            raise FastNSTError(f"--style-image {path}: {name}'s image {listed[name]} does not exist.")
        return listed[name], f"its entry in {path} (--style-image)"
    if training.get("style_image") and Path(str(training["style_image"])).is_file():
        return Path(str(training["style_image"])), "the training's style image"
    try:
        argv = shlex.split(str(training.get("command", "")))
    except ValueError:
        argv = []
    for flag, value in zip(argv, argv[1:]):
        if flag == "--style-image" and Path(value).is_file():
            return Path(value), "the training command's --style-image"
        if flag == "--styles" and Path(value).is_file() and name:
            try:
                entries = style_entries(TrainConfig(styles=value))
            except FastNSTError:
                continue
            for e in entries:
                if e.metadata()["name"] == name and Path(e.image).is_file():
                    return Path(e.image), f"the training command's --styles list ({value})"
    thumb = style_dir / "style.jpg"
    if thumb.is_file():
        return thumb, ("the style folder's style.jpg (a JPEG thumbnail, at most 512 px, of the training image: "
                       "its Gram matrices differ slightly from those trained with; pass --style-image for the original)")
    raise FastNSTError(f"{style_dir}: no style.jpg and the training image is not found; pass --style-image PATH.")


def _file_id(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _in_training_folder(photo: Path, training: Mapping[str, Any]) -> bool:
    data = normalise_training(training).get("data")
    return bool(data) and Path(str(data)).is_dir() and Path(photo).resolve().is_relative_to(Path(str(data)).resolve())


def _from_training_photos(photo: Path, training: Mapping[str, Any]) -> bool:
    """Whether ``photo`` comes from the training's photo source, whose photos may be research-only: inside its
    data folder, or named in its ``--exclude-list`` (held out of that source, wherever the source is now: a
    folder on another machine, a Hub dataset). No picture is made of such a photo."""
    return _in_training_folder(photo, training) or Path(photo).name in _held_out_names(training)


def _held_out_names(training: Mapping[str, Any]) -> frozenset[str]:
    """The photo names of the training's ``--exclude-list`` (empty when it had none or it is not here)."""
    held_out = normalise_training(training).get("exclude_list")
    return read_name_list(str(held_out)) if held_out and Path(str(held_out)).is_file() else frozenset()


def _training_photo_warning(photo: Path, training: Mapping[str, Any]) -> str | None:
    if not _in_training_folder(photo, training):
        return None
    training = normalise_training(training)
    if Path(photo).name in _held_out_names(training):
        return None  # in the folder, but on the list the training never read
    return (f"{photo} is in the style's training data ({training.get('data')}): not a held-out photo. "
            "Training photos may also be research-only: do not publish pictures made from them.")


def resolve_style_dir(style: str | os.PathLike) -> Path:
    """A style folder for an embedded name, folder or Hub repo id (pulled into the cache)."""
    from .styles import is_repo_id, resolve_style

    ref = resolve_style(style)
    if Path(ref).is_dir():
        return Path(ref)
    if is_repo_id(str(ref)):
        from .hub import pull_style

        return Path(pull_style(str(ref)))
    raise FastNSTError(f"{style}: not a style folder, embedded style or Hub repo id.")


def evaluate_style(style_dir: str | os.PathLike, photos: Sequence[str | os.PathLike] | None = None,
                   sizes: Sequence[int] = SIZES, iterations: Sequence[int] = GATYS_ITERATIONS, *,
                   style_image: str | os.PathLike | None = None, max_photos: int | None = None,
                   device: str | torch.device | None = "cpu", out: str | os.PathLike | None = None,
                   loss_network_path: str | None = None, line_search: bool = False, resume: bool = False,
                   init: str = "content", content_weight: float | None = None, tv_weight: float | None = None,
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Feed-forward vs Gatys on every photo and size; returns the result dict (also ``out``/eval.json).

    ``init`` is where Gatys' optimisation starts: ``"content"`` (the photo) or ``"noise"`` (Johnson
    et al.'s baseline). With ``out``, the JSON is rewritten after every photo and size, the output
    images are kept in ``out/images`` and ``side_by_side_<size>.jpg`` is written per size, from the
    photos that are not in the style's training data folder (held-out photos from that folder may
    be research-only). ``resume`` reuses the Gatys runs of an earlier eval.json made with the same
    style image, loss settings, start and iterations: only the network is measured again, so a
    style can be re-evaluated after more training in seconds. ``content_weight`` and ``tv_weight`` measure
    against those weights instead of the training's: a style whose last legs changed them (a raised content
    weight keeps photos recognisable; a lowered TV weight frees fine strokes) is measured on its painting's
    shared objective, and so against the same Gatys runs as before.
    """
    if init not in INITS:
        raise FastNSTError(f"init must be one of {', '.join(INITS)}, not {init!r}.")
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    style_dir = Path(style_dir)
    config = read_config(style_dir)
    training = normalise_training(config.get("training") or {})
    if not training:
        log(f"warning: {style_dir}/config.json has no training block; using the default loss settings")
    settings = ObjectiveSettings.from_training(training)
    trained = settings  # the training's own weights, recorded beside the ones measured at
    if content_weight is not None and not content_weight > 0:
        raise FastNSTError(f"content weight must be positive, not {content_weight}.")
    if tv_weight is not None and not tv_weight >= 0:
        raise FastNSTError(f"TV weight must be zero or more, not {tv_weight}.")
    overrides = {"content_weight": content_weight, "tv_weight": tv_weight}
    settings = replace(settings, **{k: float(v) for k, v in overrides.items() if v is not None})
    name = str((config.get("style") or {}).get("name") or style_dir.name)
    style_path, style_note = find_style_image(style_dir, training, style_image, name=name)
    files = photo_files(photos)
    if not files:
        raise FastNSTError(f"no photos found in {', '.join(map(str, photos or [DEFAULT_PHOTOS]))}.")
    files = files[:max_photos] if max_photos else files
    warnings = [w for w in (_training_photo_warning(f, training) for f in files) if w]
    publishable = {str(f) for f in files if not _from_training_photos(f, training)}
    for w in warnings:
        log(f"warning: {w}")
    dev = pick_device(device)

    painting = load_image(style_path).convert("RGB")  # read once: the loss, its direction, the pictures
    objective = PerceptualObjective.for_style(settings, painting, loss_network_path=loss_network_path, device=dev)
    model = TransformerNet.from_pretrained(style_dir)
    iterations = sorted({0, *(int(i) for i in iterations)})  # 0: the loss of the content photo itself
    result: dict[str, Any] = {
        "style": name, "style_dir": str(style_dir), "style_image": str(style_path), "style_image_source": style_note,
        # the loss, and the crop size it was trained at (the scale of its strokes)
        "settings": {**asdict(settings), "style_layers": list(settings.style_layers),
                     "image_size": int(training.get("image_size", 256))},
        "trained_content_weight": trained.content_weight, "trained_tv_weight": trained.tv_weight,
        "iterations": iterations, "sizes": list(sizes), "counting": COUNTING, "line_search": line_search, "init": init,
        "device": str(dev), "hardware": hardware_description(), "torch_threads": torch.get_num_threads(),
        "photos": [str(f) for f in files], "warnings": warnings, "runs": [],
        # at the size the loss sees the painting
        "style_direction": round(direction(painting.resize(fit_size(*painting.size, settings.style_size))), 4),
    }
    # Iterations are not part of it: a size may be run to fewer iterations (512 px costs 4x) and kept.
    # Nor are the weights: the Gatys runs do not depend on them (the network is always measured anew).
    fingerprint = _objective_only({k: result[k] for k in ("settings", "line_search", "init")})
    fingerprint["style_image"] = _file_id(style_path)
    result["fingerprint"] = fingerprint
    out_dir = Path(out) if out else None
    previous = _previous_runs(out_dir, fingerprint) if (out_dir and resume) else {}
    done: dict[str, tuple[dict[str, Any], Mapping[str, torch.Tensor]]] = {}

    def record() -> None:  # runs in a stable order: by size, then photo; earlier runs kept with --resume
        runs = sorted({**previous, **done}.values(), key=lambda r: (r[0]["size"], Path(r[0]["photo"]).name))
        result["runs"] = [entry for entry, _ in runs]
        result["photos"] = list(dict.fromkeys(entry["photo"] for entry in result["runs"]))
        result["sizes"] = sorted({entry["size"] for entry in result["runs"]})
        result["iterations"] = sorted({c["iterations"] for entry in result["runs"] for c in entry["gatys"]} or iterations)
        result["summary"] = summarize(result["runs"])

    for size in sizes:
        for photo in files:
            key = f"{photo.stem}-{size}"
            old = previous.get(key)
            # a pictured photo needs its Gatys snapshots' images too; the others reuse the numbers alone
            reuse = old if old and [c["iterations"] for c in old[0]["gatys"]] == iterations and (
                str(photo) not in publishable or all(f"gatys_{n}" in old[1] for n in picture_iterations(iterations))
            ) else None
            if reuse:
                log(f"{key}: reusing the Gatys runs in {out_dir}/eval.json")
            entry, images = _run_one(model, objective, prepare_photo(photo, size), iterations, dev, line_search, log,
                                     key, init, reuse)
            done[key] = ({"photo": str(photo), "photo_id": _file_id(photo), "size": size, **entry}, images)
            if out_dir:
                if str(photo) in publishable:
                    _save_images(out_dir, key, {f"gatys_{n}": images[f"gatys_{n}"]
                                                for n in picture_iterations(iterations) if f"gatys_{n}" in images})
                record()  # after every photo, so a killed evaluation resumes where it stopped
                write_json(result, out_dir / "eval.json")
    record()
    if out_dir:
        rows: dict[int, list[Image.Image]] = {}
        for entry, images in sorted({**previous, **done}.values(), key=lambda r: Path(r[0]["photo"]).name):
            shown = ["feed_forward"] + [f"gatys_{n}" for n in picture_iterations([c["iterations"] for c in entry["gatys"]])]
            if entry["photo"] not in publishable or not all(label in images for label in shown):
                continue  # research-only, or an earlier run's row whose network output was not kept
            content = prepare_photo(entry["photo"], entry["size"])
            rows.setdefault(entry["size"], []).append(side_by_side(_picture_row(content, painting, images, entry)))
        result["pictures"] = []
        if not rows:
            log("no side-by-side picture: every photo is in the style's training data folder (may be research-only)")
        for size, pics in sorted(rows.items()):
            path = out_dir / f"side_by_side_{size}.jpg"
            stack_rows(pics).save(path, quality=90)
            result["pictures"].append(str(path))
        write_json(result, out_dir / "eval.json")
        (out_dir / "summary.md").write_text(markdown_summary(result))
    return result


def _run_one(model: TransformerNet, objective: PerceptualObjective, content: torch.Tensor, iterations: list[int],
             dev: torch.device, line_search: bool, log: Callable[[str], None], key: str, init: str = "content",
             reuse: tuple[Mapping[str, Any], Mapping[str, torch.Tensor]] | None = None,
             ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    y, ff_time = feed_forward(model, content, dev)
    with torch.no_grad():
        ff_loss = objective(y.to(dev), content.to(dev)).as_floats()
    ff = {"loss": ff_loss, "time_s": round(ff_time, 4), "direction_added": round(direction_added(y, content), 4),
          "style_layers": objective.style_layer_terms(y.to(dev))}
    with torch.no_grad():
        photo_loss = objective(content.to(dev), content.to(dev)).as_floats()
    log(f"{key}: feed-forward loss {ff_loss['total']:.4g} in {ff_time:.3f} s (the photo: {photo_loss['total']:.4g})")
    if reuse is not None:
        gatys_json = [dict(c) for c in reuse[0]["gatys"]]
        images = {k: v for k, v in reuse[1].items() if k != "feed_forward"}
    else:
        def progress(c: GatysCheckpoint) -> None:
            log(f"{key}: Gatys {c.iterations:4d} it  loss {c.loss['total']:.4g}  {c.time_s:8.1f} s")

        points = gatys(content, objective, iterations, line_search=line_search, progress=progress,
                       init=noise_image(content) if init == "noise" else None)
        gatys_json = [p.to_json() for p in points]
        images = {f"gatys_{p.iterations}": p.image for p in points if p.image is not None}
    for c in gatys_json:  # runs recorded before the split by layer gain it where their image was kept
        image = images.get(f"gatys_{c['iterations']}")
        if "style_layers" not in c and image is not None:
            c["style_layers"] = objective.style_layer_terms(image.to(dev))
    return ({"feed_forward": ff, "content_photo": {"loss": photo_loss}, "gatys": gatys_json, **compare(ff, gatys_json)},
            {"feed_forward": y, **images})


def direction(image: torch.Tensor | Image.Image) -> float:
    """Mean absolute difference between vertical neighbours over that between horizontal ones, of the
    grey image (1x3xHxW in [0, 1], or a PIL image): 1 for detail without a direction, above 1 for
    horizontal stripes and bands, below 1 for vertical ones."""
    x = pil_to_tensor(image.convert("RGB")) if isinstance(image, Image.Image) else image
    grey = x.float().mean(dim=-3)
    dy = (grey[..., 1:, :] - grey[..., :-1, :]).abs().mean()
    dx = (grey[..., :, 1:] - grey[..., :, :-1]).abs().mean()
    return float(dy / dx.clamp_min(1e-8))


def direction_added(output: torch.Tensor, photo: torch.Tensor) -> float:
    """:func:`direction` of a stylized output over its photo's: how much direction the network adds. A
    screen for streaks: networks that paint thin horizontal stripes measured 1.3-1.4 where their
    paintings have 1.15-1.33 and clean networks 0.9-1.1 (docs/quality, section 7)."""
    return direction(output) / max(direction(photo), 1e-8)


def noise_image(like: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The start of Johnson's neural-style with ``-init random``: the ImageNet mean colour plus N(0, 0.001) noise
    (on the 0-255 scale), i.e. a nearly flat grey-brown image."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    return (mean + torch.randn(like.shape, generator=g) * (0.001 / 255)).clamp(0, 1)


def _save_images(out_dir: Path, key: str, images: Mapping[str, torch.Tensor]) -> None:
    """The Gatys snapshots a picture shows, kept for --resume (only of photos that may be pictured)."""
    folder = out_dir / "images"
    folder.mkdir(parents=True, exist_ok=True)
    for label, t in images.items():
        tensor_to_pil(t).save(folder / f"{key}-{label}.png")


def _objective_only(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """``fingerprint`` without the training crop size, which is recorded beside the loss settings but does
    not change the objective (a style continued at another size reuses its Gatys runs)."""
    settings = {k: v for k, v in (fingerprint.get("settings") or {}).items() if k != "image_size"}
    return {**fingerprint, "settings": settings}


def _previous_runs(out_dir: Path, fingerprint: Mapping[str, Any]) -> dict[str, tuple[dict, dict]]:
    """Entries of an earlier out/eval.json with the same fingerprint whose photo is unchanged, with those of their
    Gatys images that were kept (only pictured photos keep them)."""
    try:
        old = json.loads((out_dir / "eval.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    if _objective_only(old.get("fingerprint") or {}) != json.loads(json.dumps(fingerprint)):
        return {}
    found = {}
    for entry in old.get("runs", []):
        photo = Path(entry["photo"])
        if not photo.is_file() or _file_id(photo) != entry.get("photo_id"):
            continue
        key = f"{photo.stem}-{entry['size']}"
        shown = picture_iterations([c["iterations"] for c in entry["gatys"]])  # the only snapshots ever used
        paths = {f"gatys_{n}": out_dir / "images" / f"{key}-gatys_{n}.png" for n in shown}
        found[key] = (entry, {k: pil_to_tensor(Image.open(p).convert("RGB")) for k, p in paths.items() if p.is_file()})
    return found


def median_matched(estimates: Sequence[float | None]) -> float | None:
    """Median of per-photo matched iteration counts; a photo Gatys never matched counts as infinitely many
    (None when that is the median)."""
    if not estimates:
        return None
    m = statistics.median(math.inf if e is None else float(e) for e in estimates)
    return None if math.isinf(m) else round(m, 1)


def write_json(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def summarize(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per size: mean losses and times over the photos, and the comparison made on those means (as in the paper)."""
    summary: dict[str, Any] = {}
    for size in sorted({r["size"] for r in runs}):
        rs = [r for r in runs if r["size"] == size]
        ff = {"loss": {k: statistics.fmean(r["feed_forward"]["loss"][k] for r in rs) for k in ("content", "style", "total")},
              "time_s": statistics.fmean(r["feed_forward"]["time_s"] for r in rs)}
        counts = sorted({c["iterations"] for r in rs for c in r["gatys"]})
        checkpoints = [{"iterations": n,
                        "loss": {k: statistics.fmean(c["loss"][k] for r in rs for c in r["gatys"] if c["iterations"] == n)
                                 for k in ("content", "style", "total")},
                        "time_s": statistics.fmean(c["time_s"] for r in rs for c in r["gatys"] if c["iterations"] == n)}
                       for n in counts]
        estimates = [r.get("matched_estimate") for r in rs]
        summary[str(size)] = {"photos": len(rs), "feed_forward": ff, "gatys": checkpoints, **compare(ff, checkpoints),
                              "matched_per_photo": [r["matched"] for r in rs],
                              "matched_estimate_per_photo": estimates,
                              "matched_median": median_matched(estimates)}
        layers = style_layer_medians(rs)
        if layers:
            summary[str(size)]["style_layers"] = layers
        added = [r["feed_forward"]["direction_added"] for r in rs if "direction_added" in r["feed_forward"]]
        if added:
            summary[str(size)]["direction_added_median"] = statistics.median(added)
        if all("content_photo" in r for r in rs):
            summary[str(size)]["content_photo"] = {
                "loss": {"total": statistics.fmean(r["content_photo"]["loss"]["total"] for r in rs)}}
    return summary


def style_layer_medians(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The style term split by layer, median over ``runs`` (one size): ``{"network": {layer: x}, "photos": N, "gatys":
    {n: {"photos": k, layer: x, "network": {layer: x}}}}``, each Gatys count over the k photos whose run recorded it,
    beside the network on those same photos; empty if no run recorded the network's."""
    measured = [r for r in runs if "style_layers" in r["feed_forward"]]
    if not measured:
        return {}

    def medians(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
        return {layer: statistics.median(row[layer] for row in rows) for layer in rows[0]}

    by_n: dict[int, list[tuple[Mapping[str, float], Mapping[str, float]]]] = {}
    for r in measured:
        for c in r["gatys"]:
            if "style_layers" in c and c["iterations"]:
                by_n.setdefault(c["iterations"], []).append((c["style_layers"], r["feed_forward"]["style_layers"]))
    return {"network": medians([r["feed_forward"]["style_layers"] for r in measured]), "photos": len(measured),
            "gatys": {str(n): {"photos": len(pairs), **medians([g for g, _ in pairs]),
                               "network": medians([f for _, f in pairs])} for n, pairs in sorted(by_n.items())}}


# --- pictures ------------------------------------------------------------------------------------

def _font_size(panel: int) -> int:
    return max(10, panel // 20)


def label_height(panel: int) -> int:
    """Height of the label strip (two lines) above a panel ``panel`` px wide."""
    return 2 * (_font_size(panel) + 3) + 4


def _font(panel: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return label_font(_font_size(panel))


def side_by_side(panels: Sequence[tuple[str, Image.Image]], path: str | os.PathLike | None = None,
                 size: int | None = None) -> Image.Image:
    """One row of square panels (each centre-cropped to ``size``, default the first panel's short side)
    under their labels (up to two lines, cut at the panel's width); saved as JPEG at ``path`` if given."""
    size = size or min(panels[0][1].size)
    strip, font = label_height(size), _font(size)
    canvas = Image.new("RGB", (size * len(panels), size + strip), "white")
    for i, (label, img) in enumerate(panels):
        img = img.convert("RGB")
        if img.size != (size, size):
            img = crop_resize(img, size, None)
        text = Image.new("RGB", (size, strip), "white")  # drawn apart, so a long label never runs into the next
        ImageDraw.Draw(text).multiline_text((3, 2), label, fill="black", font=font, spacing=3)
        canvas.paste(text, (i * size, 0))
        canvas.paste(img, (i * size, strip))
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        canvas.save(path, format="JPEG", quality=90)
    return canvas


def stack_rows(rows: Sequence[Image.Image]) -> Image.Image:
    """Pictures one above the other (left-aligned, white background)."""
    canvas = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    top = 0
    for r in rows:
        canvas.paste(r, (0, top))
        top += r.height
    return canvas


def picture_iterations(available: Sequence[int]) -> list[int]:
    """The Gatys snapshots to show: 100 and 500 where run, else the nearest available."""
    available = sorted(available)
    picked = [min(available, key=lambda n: (abs(n - want), n)) for want in PICTURE_ITERATIONS]
    return sorted(set(picked))


def _picture_row(content: torch.Tensor, style: Image.Image, images: Mapping[str, torch.Tensor],
                 entry: Mapping[str, Any]) -> list[tuple[str, Image.Image]]:
    by_n = {c["iterations"]: c for c in entry["gatys"]}
    ff = entry["feed_forward"]
    row = [(f"content\n{Path(entry['photo']).name}", tensor_to_pil(content)), ("style", style),
           (f"feed-forward\nloss {ff['loss']['total']:.3g}, {_fmt_s(ff['time_s'])}", tensor_to_pil(images["feed_forward"]))]
    for n in picture_iterations(list(by_n)):
        c = by_n[n]
        row.append((f"Gatys {n} iterations\nloss {c['loss']['total']:.3g}, {_fmt_s(c['time_s'])}",
                    tensor_to_pil(images[f"gatys_{n}"])))
    return row


def _fmt_s(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


# --- reports -------------------------------------------------------------------------------------

def _fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:,.0f}x"


def _start_label(result: Mapping[str, Any]) -> str:
    return "noise (start)" if result.get("init") == "noise" else "content photo"


def _matched_cell(s: Mapping[str, Any]) -> str:
    m = s.get("matched_median")
    last = s["gatys"][-1]["iterations"]
    median = f"> {last}" if m is None else f"{m:.0f}"
    per_photo = ", ".join(f"> {last}" if e is None else f"{e:.0f}" for e in s.get("matched_estimate_per_photo", []))
    return f"**{median}** ({per_photo})" if per_photo else median


def markdown_summary(result: Mapping[str, Any]) -> str:
    """A markdown table of the per-size results (to paste into a model card or README)."""
    its = result["iterations"]
    head = (["size", "photos", "network"] + [f"Gatys {n}" if n else _start_label(result) for n in its]
            + ["matched: median (per photo)", "time ratio (matched)", "time ratio (most iterations)"])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for size, s in result["summary"].items():
        cells = [f"{size} px", str(s["photos"]),
                 f"{s['feed_forward']['loss']['total']:.3g} ({_fmt_s(s['feed_forward']['time_s'])})"]
        by_n = {c["iterations"]: c for c in s["gatys"]}
        cells += [f"{by_n[n]['loss']['total']:.3g}" + (f" ({_fmt_s(by_n[n]['time_s'])})" if n else "")
                  if n in by_n else "not run" for n in its]
        cells += [_matched_cell(s), _fmt_ratio(s["time_ratio_matched"]),
                  f"{_fmt_ratio(s['time_ratio_last'])} ({s['gatys'][-1]['iterations']})"]
        lines.append("| " + " | ".join(cells) + " |")
    start = ("white noise (Johnson et al.'s baseline)" if result.get("init") == "noise" else "the content photo")
    note = (f"Loss: the training objective of `{result['style']}` (content + style + TV, loss network "
            f"`{result['settings']['loss_network']}`, loss scaling `{result['settings']['loss_scaling']}`), mean over "
            f"{len(result['photos'])} held-out photos centre-cropped to size x size; Gatys et al.: L-BFGS from "
            f"{start}, iterations = loss evaluations. \"matched\": the Gatys iterations whose loss equals the "
            f"network's on each photo (interpolated in log-loss; 0: no better than the start image), median over the "
            f"photos; time ratios on the mean times. Times on {result['hardware']} ({result['device']}).")
    measured, trained = [], []
    for key, label in (("content_weight", "content"), ("tv_weight", "TV")):
        then, now = result.get(f"trained_{key}"), result["settings"][key]
        if then is not None and then != now:
            measured.append(f"{label} weight {now:g}")
            trained.append(f"{then:g}")
    if measured:
        note += (f" Measured at {' and '.join(measured)}, the objective this painting's Gatys runs optimise; "
                 f"the network's last training used {' and '.join(trained)}.")
    added = {size: s["direction_added_median"] for size, s in result["summary"].items() if "direction_added_median" in s}
    if added and "style_direction" in result:
        note += (" Direction (a screen for streaks): the network's output has "
                 + ", ".join(f"{v:.2f}x its photo's vertical-over-horizontal detail at {size} px" for size, v in added.items())
                 + f" (median); the painting itself {result['style_direction']:.2f} (1: no direction; "
                 "well above the painting's: look for horizontal stripes).")
    return "\n".join(lines) + "\n\n" + note + "\n" + _layers_markdown(result)


def _layers_markdown(result: Mapping[str, Any]) -> str:
    """The style term by VGG layer at the first size that recorded it: network against the Gatys counts."""
    for size, s in result["summary"].items():
        layers = s.get("style_layers")
        if layers:
            break
    else:
        return ""
    counts = list(layers["gatys"].items())
    # a count measured on fewer photos (runs recorded before the split) shows the network on those photos beside it
    fewer = {n: g["photos"] for n, g in counts if g["photos"] != layers["photos"]}
    head = ["layer", "network"] + [f"Gatys {n}" + (f" / network, on {fewer[n]} photo{'s' * (fewer[n] != 1)}"
                                                   if n in fewer else "") for n, _ in counts]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for layer, value in layers["network"].items():
        cells = [f"{g[layer]:.3g}" + (f" / {g['network'][layer]:.3g}" if n in fewer else "") for n, g in counts]
        lines.append("| " + " | ".join([layer, f"{value:.3g}", *cells]) + " |")
    return (f"\nThe style term by VGG layer at {size} px (median over {layers['photos']} photos; the layers sum to the "
            f"style term): where the network falls short of the painting, from colour and fine texture (relu1_2) to "
            f"large forms (relu4_3).\n\n" + "\n".join(lines) + "\n")


def styles_table(results: Sequence[Mapping[str, Any]], size: int = 256) -> str:
    """One markdown row per style at ``size``: the table the README shows for every shipped style."""
    if not results:
        return ""
    its = [n for n in results[0]["iterations"] if n]
    head = (["style", "photos", "network", "network's content term", "photo"] + [f"Gatys {n}" for n in its]
            + ["Gatys 50's content term", "matched: median (per photo)", "network time", f"Gatys {its[-1]} time"])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        s = r["summary"].get(str(size))
        if s is None:
            continue
        by_n = {c["iterations"]: c for c in s["gatys"]}
        photo = s.get("content_photo", by_n.get(0, {})).get("loss", {}).get("total")
        ff_content = s["feed_forward"]["loss"].get("content")
        g50_content = by_n.get(50, {}).get("loss", {}).get("content")
        cells = [f"`{r['style']}`", str(s["photos"]), f"{s['feed_forward']['loss']['total']:.3g}",
                 f"{ff_content:.2f}" if ff_content is not None else "-", f"{photo:.3g}" if photo is not None else "-"]
        cells += [f"{by_n[n]['loss']['total']:.3g}" if n in by_n else "not run" for n in its]
        cells += [f"{g50_content:.2f}" if g50_content is not None else "-", _matched_cell(s), _fmt_s(s["feed_forward"]["time_s"]),
                  _fmt_s(by_n[its[-1]]["time_s"]) if its[-1] in by_n else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_table(result: Mapping[str, Any]) -> str:
    """A plain-text table: one line per photo and size, then the means."""
    its = result["iterations"]
    head = f"{'photo':<16}{'size':>5}{'feed-fwd':>10}" + "".join(f"{'G' + str(n) if n else 'photo':>10}" for n in its) + \
        f"{'matched':>9}{'ratio':>9}{'ratio(last)':>12}"
    lines = [head]

    def row(label: str, size: Any, ff: Mapping, gs: Sequence[Mapping], cmp: Mapping) -> str:
        by_n = {c["iterations"]: c["loss"]["total"] for c in gs}
        return (f"{label:<16.16}{size!s:>5}{ff['loss']['total']:>10.4g}"
                + "".join(f"{by_n[n]:>10.4g}" if n in by_n else f"{'-':>10}" for n in its)
                + f"{cmp['matched']:>9}{_fmt_ratio(cmp['time_ratio_matched']):>9}{_fmt_ratio(cmp['time_ratio_last']):>12}")

    for r in result["runs"]:
        lines.append(row(Path(r["photo"]).stem, r["size"], r["feed_forward"], r["gatys"], r))
    for size, s in result["summary"].items():
        lines.append(row("mean", size, s["feed_forward"], s["gatys"], s))
    times = "  ".join(f"{size}px: feed-forward {_fmt_s(s['feed_forward']['time_s'])}, Gatys {s['gatys'][-1]['iterations']} "
                      f"{_fmt_s(s['gatys'][-1]['time_s'])}" for size, s in result["summary"].items())
    return "\n".join(lines) + "\nmean times  " + times


def record_in_style(style_dir: Path, result: Mapping[str, Any]) -> Path:
    """Put an evaluation into its style folder: config.json (training.evaluation), evaluation.jpg, the card."""
    from .card import EVALUATION_IMAGE, save_model_card

    config = read_config(style_dir)
    config.setdefault("training", {})["evaluation"] = markdown_summary(result).strip()
    write_json(config, style_dir / "config.json")
    pictures = [Path(p) for p in result.get("pictures", [])]
    if pictures:
        picture = Image.open(pictures[0])
        picture.thumbnail((1600, 1600))
        picture.save(style_dir / EVALUATION_IMAGE, quality=85)
    return save_model_card(style_dir)


def photo_files(specs: Sequence[str | os.PathLike] | None) -> list[Path]:
    """Photos from files, folders and ``.txt`` lists (one path per line, relative to the list; ``#`` comments)."""
    paths: list[str] = []
    for spec in specs or [DEFAULT_PHOTOS]:
        p = Path(spec)
        if p.suffix == ".txt" and p.is_file():
            paths += [str(p.parent / line) for line in read_list(p)]
        else:
            paths.append(str(p))
    return list_images(paths)
