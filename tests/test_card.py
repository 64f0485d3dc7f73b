"""The model card: Hub front matter with the required keys, a readable body, robust to missing fields."""

from __future__ import annotations

import json
import re

import yaml
from huggingface_hub import ModelCard

from conftest import make_style, smooth_image
from fastnst.card import GENERATED_MARKER, card_needs_regeneration, render_model_card, save_model_card

FULL = {
    "channels": 32,
    "num_residual": 5,
    "style": {"name": "starry_night", "title": "The Starry Night", "artist": "Vincent van Gogh", "year": 1889,
              "licence": "Public domain", "source": "https://commons.wikimedia.org/wiki/File:Starry_Night.jpg"},
    "training": {
        "command": "fastnst train --style-image starry.jpg --data ../shared/data/photos --preset paper -o styles/starry",
        "datasets": ["detection-datasets/coco"], "dataset": "../shared/data/photos", "steps": 40000, "batch_size": 4,
        "dataset_description": "1,533 varied photos", "loss_scaling": "relative",
        "image_size": 256, "loss_network": "vgg16", "content_weight": 1e5, "style_weight": 1e10, "tv_weight": 1e-6,
        "wall_time_s": 5423.0, "hardware": "1x NVIDIA H200",
        "final_losses": {"content": 123456.7, "style": 32100.0, "tv": 12.0},
        "evaluation": {"style_loss_holdout": 0.0312, "lpips": {"mean": 0.31}},
    },
}


def split_card(text: str) -> tuple[dict, str]:
    m = re.match(r"^---\n(.*?)\n---\n(.*)$", text, re.S)
    assert m, "the card must start with YAML front matter"
    return yaml.safe_load(m.group(1)), m.group(2)


def test_full_card_has_required_front_matter_and_sections():
    meta, body = split_card(render_model_card(FULL, "alice/starry-night", files=["style.jpg", "example.jpg"]))
    assert meta["library_name"] == "fastnst" and meta["pipeline_tag"] == "image-to-image"
    assert {"fastnst", "style-transfer", "fast-neural-style"} <= set(meta["tags"])
    assert meta["license"] == "mit" and meta["datasets"] == ["detection-datasets/coco"]
    assert [w["output"]["url"] for w in meta["widget"]] == ["example.jpg", "style.jpg"]
    # What the style is, how it was trained (exact command), how to use it, limitations.
    assert "*The Starry Night* by Vincent van Gogh (1889)" in body and "| licence | Public domain |" in body
    assert f"```bash\n{FULL['training']['command']}\n```" in body
    assert "| loss network | vgg16 |" in body and "| training time | 90 min |" in body
    assert "| content images are | 1,533 varied photos |" in body and "| loss scaling | relative |" in body
    assert "input photo is added" not in body
    _, skip_body = split_card(render_model_card({**FULL, "input_skip": True}))
    assert "the input photo is added to its output" in skip_body
    _, centred_body = split_card(render_model_card({**FULL, "input_skip": True, "centred_skip": True}))
    assert "the input photo, less its mean colour, is added to its output" in centred_body
    assert "learnt factor" not in centred_body
    _, gain_body = split_card(render_model_card({**FULL, "input_skip": True, "centred_skip": True, "skip_gain": True}))
    assert "less its mean colour, is added to its output (times a learnt factor per colour channel)" in gain_body
    assert "| content | 1.235e+05 |" in body and "| lpips.mean | 0.31 |" in body
    python = re.search(r"```python\n(.*?)```", body, re.S).group(1).strip().splitlines()
    assert python == ["from fastnst import Stylizer", 'stylizer = Stylizer.from_pretrained("alice/starry-night")',
                      'stylizer("photo.jpg", strength=1.0).save("photo-starry_night.png")']
    assert "fastnst stylize photo.jpg --style alice/starry-night" in body
    assert "## Limitations" in body and '<img src="style.jpg"' in body and '<img src="example.jpg"' in body
    assert "None" not in body


def test_card_parses_with_huggingface_hub():
    card = ModelCard(render_model_card(FULL, "alice/starry-night"))
    assert card.data.library_name == "fastnst" and "fastnst" in card.data.tags
    assert card.text.lstrip().startswith(GENERATED_MARKER)


def test_minimal_config_renders_without_crashing():
    for config in ({"channels": 8, "num_residual": 2, "style": {"name": "tiny"}, "training": None},
                   {"channels": 8, "num_residual": 2},
                   {"style": None, "training": {"evaluation": "Holdout style loss: **0.03**", "final_losses": None}}):
        text = render_model_card(config)
        meta, body = split_card(text)
        assert meta["library_name"] == "fastnst" and "widget" not in meta and "datasets" not in meta
        assert "None" not in body and "## Use it" in body and "## Limitations" in body
    assert "Holdout style loss: **0.03**" in text  # a markdown evaluation is kept as it is
    assert "How these weights were made is not recorded." in render_model_card({"training": {}})


def test_only_hub_dataset_ids_go_into_the_front_matter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos" / "train").mkdir(parents=True)
    for dataset, expected in (("detection-datasets/coco", ["detection-datasets/coco"]), ("../shared/data/photos", None),
                              ("photos/train", None), ("data/images.parquet", None)):
        training = {**FULL["training"], "datasets": None, "dataset": dataset}
        meta, body = split_card(render_model_card({**FULL, "training": training}))
        assert meta.get("datasets") == expected and f"| content images | {dataset} |" in body


def test_odd_metadata_stays_valid_yaml_and_markdown():
    config = {"channels": 8, "num_residual": 2, "license": "cc-by-4.0",
              "style": {"name": "x", "title": 'Title: with "quotes" | pipes', "artist": "A\nB"}}
    meta, body = split_card(render_model_card(config, files=["example.jpg"]))
    assert meta["license"] == "cc-by-4.0" and meta["widget"][0]["text"].startswith('Title: with "quotes"')
    assert "| title | Title: with \"quotes\" \\| pipes |" in body and "| artist | A B |" in body


def test_save_model_card_reads_the_folder(tmp_path):
    folder = make_style(tmp_path / "tiny", name="tiny", title="Tiny")
    assert card_needs_regeneration((folder / "README.md").read_text())  # the mixin's generic card
    config = json.loads((folder / "config.json").read_text())
    path = save_model_card(folder)
    assert path == folder / "README.md" and "style.jpg" not in path.read_text()
    smooth_image(32, 32).save(folder / "style.jpg")
    save_model_card(folder, "alice/tiny")
    meta, body = split_card(path.read_text())
    assert meta["widget"] == [{"text": "Tiny: the style image", "output": {"url": "style.jpg"}}]
    assert 'from_pretrained("alice/tiny")' in body and "example.jpg" not in body
    assert json.loads((folder / "config.json").read_text()) == config
    assert card_needs_regeneration(path.read_text()) and card_needs_regeneration(None)
    assert not card_needs_regeneration("---\nlicense: mit\n---\n# My own card\n")


def test_card_of_a_jointly_trained_style_with_its_evaluation_picture():
    config = json.loads(json.dumps(FULL))
    config["training"].update(styles_trained_together=["starry_night", "great_wave"], steps_per_style=2500,
                              held_out="train_scripts/holdout_photos.txt", init_from="fastnst/embedded",
                              lr_schedule="cosine")
    _, body = split_card(render_model_card(config, files=["style.jpg", "evaluation.jpg"]))
    assert "| trained in one network with (conditional instance norm) | starry_night, great_wave |" in body
    assert "| steps of this style | 2500 |" in body and "| warm-started from | fastnst/embedded |" in body
    assert "| held-out photos (never trained on) | train_scripts/holdout_photos.txt |" in body
    assert '<img src="evaluation.jpg"' in body and "github.com" not in body
    _, plain = split_card(render_model_card(config, files=["style.jpg"]))
    assert "evaluation.jpg" not in plain
