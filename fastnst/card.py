"""The model card (README.md) of a style: Hub front matter plus a human-readable body.

The card is built from ``config.json`` alone (architecture, a ``style`` block and a ``training``
block), so the trainer, ``fastnst push`` and the embedded styles all make the same card. Every
field but the architecture may be missing: the card shows what is there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable

from huggingface_hub import ModelCard, ModelCardData

from .model import CONFIG_NAME, read_config

CARD_NAME = "README.md"
STYLE_IMAGE = "style.jpg"
EXAMPLE_IMAGE = "example.jpg"
EVALUATION_IMAGE = "evaluation.jpg"  # network vs Gatys et al. side by side (fastnst eval), optional
TAGS = ["fastnst", "style-transfer", "fast-neural-style", "image-to-image"]
DEFAULT_LICENSE = "mit"
#: First line of a card made here. ``fastnst push`` regenerates (in memory) a card that carries it.
GENERATED_MARKER = "<!-- fastnst:card generated from config.json; `fastnst push` regenerates it unless you delete this line -->"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

_TRAINING_ROWS = [  # key in config["training"], label
    ("dataset", "content images"),
    ("dataset_description", "content images are"),
    ("split", "split"),
    ("held_out", "held-out photos (never trained on)"),
    ("init_from", "warm-started from"),
    ("steps", "steps"),
    ("styles_trained_together", "trained in one network with (conditional instance norm)"),
    ("steps_per_style", "steps of this style"),
    ("epochs", "epochs"),
    ("batch_size", "batch size"),
    ("image_size", "training image size (px)"),
    ("style_size", "style image size (px)"),
    ("loss_network", "loss network"),
    ("content_layer", "content layer"),
    ("style_layers", "style layers"),
    ("content_weight", "content weight"),
    ("style_weight", "style weight"),
    ("tv_weight", "total-variation weight"),
    ("loss_scaling", "loss scaling"),
    ("lr", "learning rate"),
    ("learning_rate", "learning rate"),
    ("lr_schedule", "learning-rate schedule"),
    ("lr_final_ratio", "final learning rate / initial"),
    ("precision", "precision"),
    ("seed", "seed"),
    ("resumed_from_step", "resumed from step"),
    ("hardware", "hardware"),
    ("wall_time_s", "training time"),
]


def render_model_card(config: dict[str, Any], repo_id: str | None = None, *,
                      files: Iterable[str] | None = None) -> str:
    """The full README.md text (YAML front matter + markdown) for a style's ``config``.

    ``repo_id`` is used in the usage examples (the style's name otherwise); ``files`` lists the
    file names present next to the card: ``style.jpg``/``example.jpg`` are shown only if listed.
    """
    style = _dict(config.get("style"))
    training = _dict(config.get("training"))
    present = set(files or ())
    name = _text(style.get("name")) or (repo_id.split("/")[-1] if repo_id else "style")
    ref = repo_id or name
    images = [f for f in (STYLE_IMAGE, EXAMPLE_IMAGE) if f in present]

    licence = _text(config.get("license")) or DEFAULT_LICENSE
    data = ModelCardData(
        library_name="fastnst",
        pipeline_tag="image-to-image",
        tags=TAGS,
        license=licence,
        datasets=_hub_datasets(training) or None,
    )
    widget = []
    if EXAMPLE_IMAGE in images:
        widget.append({"text": f"{_title(style, name)}: a photo stylized by this model", "output": {"url": EXAMPLE_IMAGE}})
    if STYLE_IMAGE in images:
        widget.append({"text": f"{_title(style, name)}: the style image", "output": {"url": STYLE_IMAGE}})
    if widget:
        data.widget = widget
    body = "\n".join(_body(config, style, training, name, ref, images, licence, EVALUATION_IMAGE in present))
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))


def save_model_card(folder: str | Path, repo_id: str | None = None) -> Path:
    """Write ``folder/README.md`` from ``folder/config.json``; returns the card's path."""
    folder = Path(folder)
    text = render_model_card(read_config(folder), repo_id, files=[p.name for p in folder.iterdir() if p.is_file()])
    path = folder / CARD_NAME
    tmp = path.with_name(f".{CARD_NAME}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def card_needs_regeneration(text: str | None) -> bool:
    """Whether an existing README.md should be replaced by a fresh card when pushing.

    True for no card, the generic card ``save_pretrained`` writes, and cards made here (marker line).
    """
    return text is None or GENERATED_MARKER in text or "PytorchModelHubMixin" in text or not text.strip()


# --- body -------------------------------------------------------------------------------------

def _body(config: dict[str, Any], style: dict[str, Any], training: dict[str, Any], name: str, ref: str,
          images: list[str], licence: str, evaluation_image: bool = False) -> list[str]:
    title = _title(style, name)
    artist, year = _text(style.get("artist")), _text(style.get("year"))
    by = (f" by {artist}" if artist else "") + (f" ({year})" if year else "")
    lines = [GENERATED_MARKER, "", f"# {title}: fast neural style", ""]
    if images:
        cells = {STYLE_IMAGE: "style image", EXAMPLE_IMAGE: "example stylization"}
        lines += ["| " + " | ".join(cells[i] for i in images) + " |", "|" + " --- |" * len(images),
                  "| " + " | ".join(f'<img src="{i}" alt="{cells[i]}" width="320">' for i in images) + " |", ""]
    lines += [
        f"A fastnst style: a feed-forward image transformation network "
        f"(Johnson et al., *Perceptual Losses for Real-Time Style Transfer and Super-Resolution*, ECCV 2016) "
        f"that repaints any photo in the style of *{title}*{by} in a single forward pass.",
        "",
        f"Architecture: `TransformerNet` with {config.get('channels', '?')} base channels and "
        f"{config.get('num_residual', '?')} residual blocks (reflection padding, instance norm, "
        f"nearest-neighbour upsampling)"
        + ("; the input photo is added to its output, so it learns only what the style changes" if config.get("input_skip") else "")
        + f"; weights in `model.safetensors`, architecture and metadata in `{CONFIG_NAME}`.",
        "",
        "## Style image",
        "",
    ]
    rows = [("title", style.get("title")), ("artist", style.get("artist")), ("year", style.get("year")),
            ("licence", style.get("licence") or style.get("license")), ("source", style.get("source"))]
    lines += _table(("field", "value"), [(k, _text(v)) for k, v in rows if _text(v)]) or ["Not recorded."]
    lines += ["", "## Training", ""]
    command = _text(training.get("command"))
    if command:
        lines += ["Trained with:", "", "```bash", command, "```", ""]
    rows = [(label, _fmt(key, training[key])) for key, label in _TRAINING_ROWS if training.get(key) not in (None, "")]
    lines += _table(("setting", "value"), rows)
    losses = _dict(training.get("final_losses"))
    if losses:
        lines += ["", "Final losses:", ""]
        lines += _table(("loss", "value"), [(str(k), _fmt(k, v)) for k, v in losses.items()])
    if not (command or rows or losses):
        lines += ["How these weights were made is not recorded."]
    evaluation = training.get("evaluation")
    if evaluation:
        lines += ["", "### Evaluation", ""]
        if isinstance(evaluation, dict):
            lines += _table(("metric", "value"), [(str(k), _fmt(k, v)) for k, v in _flatten(evaluation)])
        else:
            lines += [str(evaluation).strip()]
    if evaluation_image:
        lines += ["", f'<img src="{EVALUATION_IMAGE}" alt="network and Gatys et al. side by side" width="100%">']
    lines += [
        "",
        "## Use it",
        "",
        "```python",
        "from fastnst import Stylizer",
        f'stylizer = Stylizer.from_pretrained("{ref}")',
        f'stylizer("photo.jpg", strength=1.0).save("photo-{name}.png")',
        "```",
        "",
        "```bash",
        f"fastnst stylize photo.jpg --style {ref} -o photo-{name}.png",
        f"fastnst pull {ref}   # download once, then it works offline" if "/" in ref else "fastnst list",
        "```",
        "",
        "## Limitations",
        "",
        "- One network per style: it reproduces the colours and textures of this one image and cannot be "
        "steered at inference time beyond `strength` (blend with the original) and `preserve_color`.",
        "- The look depends on the image size: brush strokes are learned at the training resolution, so "
        "very large outputs look finer-grained and small ones coarser.",
        "- Faces, text and fine detail may be distorted; flat regions can show texture artefacts.",
        "- Trained on natural photos; drawings, screenshots or very dark images may stylize poorly.",
        f"- The weights are released under the `{licence}` licence; the style image keeps its "
        "own licence (above). Check both before using outputs commercially.",
        "",
    ]
    return lines


def _hub_datasets(training: dict[str, Any]) -> list[str]:
    """Hub dataset ids of the content images, for the ``datasets`` front matter key."""
    found = training.get("datasets")
    values = found if isinstance(found, list) else [training.get("dataset")]
    return [v for v in values if isinstance(v, str) and _HUB_ID.match(v) and not Path(v).suffix and not Path(v).exists()]


def _title(style: dict[str, Any], name: str) -> str:
    return _text(style.get("title")) or name.replace("_", " ").replace("-", " ").strip().capitalize() or "Style"


def _table(header: tuple[str, str], rows: list[tuple[str, str]]) -> list[str]:
    if not rows:
        return []
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    return [f"| {header[0]} | {header[1]} |", "| --- | --- |"] + [f"| {esc(k)} | {esc(v)} |" for k, v in rows]


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        out += _flatten(v, key + ".") if isinstance(v, dict) else [(key, v)]
    return out


def _fmt(key: str, value: Any) -> str:
    if key == "wall_time_s" and isinstance(value, (int, float)):
        minutes = round(value / 60)
        return f"{value:.0f} s" if value < 120 else (f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(_fmt(key, v) for v in value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
