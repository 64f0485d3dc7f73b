"""The model card (README.md) of a style: Hub front matter plus a human-readable body.

The card is built from ``config.json`` alone (architecture, a ``style`` block and a ``training``
block), so the trainer, ``fastnst push`` and the embedded styles all make the same card. Every
field but the architecture may be missing: the card shows what is there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from huggingface_hub import ModelCard, ModelCardData

from .files import atomic_path
from .settings import card_rows, normalise_training
from .styles import TAGS, is_repo_id, read_config

CARD_NAME = "README.md"
STYLE_IMAGE = "style.jpg"
EXAMPLE_IMAGE = "example.jpg"
EVALUATION_IMAGE = "evaluation.jpg"  # network vs Gatys et al. side by side (fastnst eval), optional
DEFAULT_LICENSE = "mit"
#: First line of a card made here. ``fastnst push`` regenerates (in memory) a card that carries it.
GENERATED_MARKER = "<!-- fastnst:card generated from config.json; `fastnst push` regenerates it unless you delete this line -->"

#: Facts of a run (not settings) shown in the card's training table, after the settings.
_FACT_ROWS = [  # key in config["training"], label
    ("styles_trained_together", "trained in one network with (conditional instance norm)"),
    ("steps_per_style", "steps of this style"),
    ("epochs", "epochs"),
    ("resumed_from_step", "resumed from step"),
    ("blocks_dropped", "residual blocks dropped after training"),
    ("hardware", "hardware"),
    ("wall_time_s", "training time"),
]


#: The card: Hub front matter, then the body. The mixin writes it on ``save_pretrained`` (see
#: ``TransformerNet.generate_model_card``); the tables are made by :func:`card_variables`.
MODEL_CARD_TEMPLATE = """---
{{ card_data }}
---

{{ marker }}

# {{ title }}: fast neural style
{% if images %}
| {{ images | map(attribute=1) | join(" | ") }} |
|{% for _ in images %} --- |{% endfor %}
| {% for file, label in images %}<img src="{{ file }}" alt="{{ label }}" width="320">{{ " | " if not loop.last }}{% endfor %} |
{% endif %}
A fastnst style: a feed-forward image transformation network (Johnson et al., *Perceptual Losses for Real-Time \
Style Transfer and Super-Resolution*, ECCV 2016) that repaints any photo in the style of *{{ title }}*{{ by }} in a \
single forward pass.

Architecture: `TransformerNet` with {{ channels }} base channels and {{ num_residual }} residual blocks\
{% if dilations %} of dilations {{ dilations }}{% endif %} (reflection \
padding, instance norm, {{ upsampling }} upsampling){% if input_skip %}; the input photo{% if centred_skip %}, less \
its mean colour,{% endif %} is added to its output{% if skip_gain %} (times a learnt factor per colour channel){% endif %}, \
so it learns only what the style changes{% endif %}; weights in \
`model.safetensors`, architecture and metadata in `config.json`.

## Style image

{{ style_table or "Not recorded." }}

## Training
{% if command %}
Trained with:

```bash
{{ command }}
```
{% endif %}{% if training_table %}
{{ training_table }}
{% endif %}{% if losses_table %}
Final losses:

{{ losses_table }}
{% endif %}{% if not (command or training_table or losses_table) %}
How these weights were made is not recorded.
{% endif %}{% if evaluation %}
### Evaluation

{{ evaluation }}
{% endif %}{% if evaluation_image %}
<img src="evaluation.jpg" alt="network and Gatys et al. side by side" width="100%">
{% endif %}
## Use it

```python
from fastnst import Stylizer
stylizer = Stylizer.from_pretrained("{{ ref }}")
stylizer("photo.jpg", strength=1.0).save("photo-{{ name }}.png")
```

```bash
fastnst stylize photo.jpg --style {{ ref }} -o photo-{{ name }}.png
{{ "fastnst pull " ~ ref ~ "   # download once, then it works offline" if "/" in ref else "fastnst list" }}
```

## Limitations

- One network per style: it reproduces the colours and textures of this one image and cannot be steered at \
inference time beyond `strength` (blend with the original) and `preserve_color`.
- The look depends on the image size: brush strokes are learned at the training resolution, so very large outputs \
look finer-grained and small ones coarser.
- Faces, text and fine detail may be distorted; flat regions can show texture artefacts.
- Trained on natural photos; drawings, screenshots or very dark images may stylize poorly.
- The weights are released under the `{{ licence }}` licence; the style image keeps its own licence (above). Check \
both before using outputs commercially.
"""


def render_model_card(config: dict[str, Any], repo_id: str | None = None, *,
                      files: Iterable[str] | None = None) -> str:
    """The full README.md text (YAML front matter + markdown) for a style's ``config``.

    ``repo_id`` is used in the usage examples (the style's name otherwise); ``files`` lists the
    file names present next to the card: ``style.jpg``/``example.jpg`` are shown only if listed.
    """
    data, variables = card_variables(config, repo_id, files)
    return str(ModelCard.from_template(data, template_str=MODEL_CARD_TEMPLATE, **variables))


def card_variables(config: dict[str, Any], repo_id: str | None = None,
                   files: Iterable[str] | None = None) -> tuple[ModelCardData, dict[str, Any]]:
    """The front matter and the template's variables for a style's ``config`` (what the template cannot say)."""
    style = _dict(config.get("style"))
    training = _dict(config.get("training"))
    present = set(files or ())
    name = _text(style.get("name")) or (repo_id.split("/")[-1] if repo_id else "style")
    title = _title(style, name)
    images = [(f, label) for f, label in ((STYLE_IMAGE, "style image"), (EXAMPLE_IMAGE, "example stylization"))
              if f in present]
    licence = _text(config.get("license")) or DEFAULT_LICENSE
    data = ModelCardData(library_name="fastnst", pipeline_tag="image-to-image", tags=list(TAGS), license=licence,
                         datasets=_hub_datasets(training) or None)
    widget = [{"text": f"{title}: {text}", "output": {"url": f}}
              for f, text in ((EXAMPLE_IMAGE, "a photo stylized by this model"), (STYLE_IMAGE, "the style image"))
              if f in present]
    if widget:
        data.widget = widget
    artist, year = _text(style.get("artist")), _text(style.get("year"))
    style_rows = [("title", style.get("title")), ("artist", style.get("artist")), ("year", style.get("year")),
                  ("licence", style.get("licence") or style.get("license")), ("source", style.get("source")),
                  ("trained on the image", _style_image_name(training.get("style_image")))]
    training_rows = [(label, _fmt(key, value)) for key, label, value in card_rows(training)]
    training_rows += [(label, _fmt(key, training[key])) for key, label in _FACT_ROWS
                      if training.get(key) not in (None, "")]
    losses = _dict(training.get("final_losses"))
    evaluation = training.get("evaluation")
    if isinstance(evaluation, dict):
        evaluation = "\n".join(_table(("metric", "value"), [(str(k), _fmt(k, v)) for k, v in _flatten(evaluation)]))
    return data, {
        "marker": GENERATED_MARKER, "name": name, "ref": repo_id or name, "title": title, "images": images,
        "by": (f" by {artist}" if artist else "") + (f" ({year})" if year else ""),
        "channels": config.get("channels", "?"), "num_residual": config.get("num_residual", "?"),
        "dilations": ", ".join(map(str, config.get("dilations") or [])),
        "input_skip": bool(config.get("input_skip")), "centred_skip": config.get("centred_skip") is True,
        "skip_gain": config.get("skip_gain") is True,
        "licence": licence,
        "upsampling": "bilinear" if config.get("upsample") == "bilinear" else "nearest-neighbour",
        "style_table": "\n".join(_table(("field", "value"), [(k, _text(v)) for k, v in style_rows if _text(v)])),
        "command": _text(training.get("command")),
        "training_table": "\n".join(_table(("setting", "value"), training_rows)),
        "losses_table": "\n".join(_table(("loss", "value"), [(str(k), _fmt(k, v)) for k, v in losses.items()])),
        "evaluation": _text(evaluation), "evaluation_image": EVALUATION_IMAGE in present,
    }


def save_model_card(folder: str | Path, repo_id: str | None = None) -> Path:
    """Write ``folder/README.md`` from ``folder/config.json``; returns the card's path."""
    folder = Path(folder)
    text = render_model_card(read_config(folder), repo_id, files=[p.name for p in folder.iterdir() if p.is_file()])
    path = folder / CARD_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def card_needs_regeneration(text: str | None) -> bool:
    """Whether an existing README.md should be replaced by a fresh card when pushing: none, empty, or made here."""
    return text is None or GENERATED_MARKER in text or not text.strip()


def _hub_datasets(training: dict[str, Any]) -> list[str]:
    """Hub dataset ids of the content images, for the ``datasets`` front matter key."""
    found = training.get("datasets")
    values = found if isinstance(found, list) else [normalise_training(training).get("data")]
    return [v for v in values if is_repo_id(v) and not Path(v).suffix]


def _style_image_name(path: Any) -> str:
    """The style image as the card names it: a relative path as given, an absolute one by its file name
    (a home folder is nobody's business)."""
    if not path:
        return ""
    p = Path(str(path))
    return p.name if p.is_absolute() else str(p)


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
