"""One declaration per training setting: its flag and --help line, config.json's training block, the model card."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from fastnst import settings
from fastnst.card import render_model_card
from fastnst.errors import TrainingError
from fastnst.settings import DataSettings, ObjectiveSettings, TrainConfig, setting


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastnst train")
    settings.add_arguments(parser)
    return parser


def test_a_new_setting_reaches_help_config_json_and_the_card(monkeypatch):
    """Adding one field (with its help and card label) is all it takes."""
    extended = dataclasses.make_dataclass(
        "TrainConfig", [("grain", float, setting(0.25, "film grain added to every output", "film grain"))],
        bases=(TrainConfig,))
    monkeypatch.setattr(settings, "TrainConfig", extended)
    help_text = " ".join(_parser().format_help().split())
    assert "--grain GRAIN film grain added to every output (default: 0.25)" in help_text
    cfg = settings.config_from_args(_parser().parse_args(["--style-image", "p.jpg", "--grain", "0.5"]), "cmd")
    block = settings.training_block(cfg, wall_time_s=3.0)
    assert block["grain"] == 0.5 and block["wall_time_s"] == 3.0 and block["command"] == "cmd"
    card = render_model_card({"channels": 8, "num_residual": 1, "training": block})
    assert "| film grain | 0.5 |" in card
    assert "--grain 0.5" in settings.training_block(dataclasses.replace(cfg, command=""))["command"]


def test_every_setting_has_a_flag_with_help_and_the_parts_compose_the_run():
    help_text = _parser().format_help()
    for f in settings.cli_fields():
        assert f.metadata["help"], f"{f.name} has no help text"
        assert "--" + f.name.replace("_", "-") in help_text
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert {f.name for f in dataclasses.fields(ObjectiveSettings)} <= names
    assert {f.name for f in dataclasses.fields(DataSettings)} <= names
    # the objective of a training run is built from the run's settings themselves, not a copy
    assert isinstance(TrainConfig(), ObjectiveSettings) and isinstance(TrainConfig(), DataSettings)


def test_presets_and_flags_combine_and_bad_values_are_named():
    cfg = settings.config_from_args(_parser().parse_args(["--preset", "cpu-joint", "--steps", "7"]))
    assert (cfg.image_size, cfg.style_weight, cfg.steps, cfg.input_skip) == (128, 3.0, 7, True)
    with pytest.raises(TrainingError, match="--lr-schedule must be one of constant, cosine"):
        settings.config_from_args(argparse.Namespace(lr_schedule="step"))
    with pytest.raises(TrainingError, match="--batch-size must be >= 1.*--lr must be > 0"):
        settings.config_from_args(argparse.Namespace(batch_size=0, lr=0.0))
    assert any("unknown layers" in p for p in TrainConfig(style_layers=("relu9_9",)).problems())
    assert "--centred-skip needs --input-skip" in TrainConfig(centred_skip=True).problems()
    assert not TrainConfig(centred_skip=True, input_skip=True).problems()
    assert "--skip-gain needs --input-skip" in TrainConfig(skip_gain=True).problems()
    assert TrainConfig(skip_gain=True, input_skip=True).architecture()["skip_gain"] is True
    with pytest.raises(SystemExit):  # a choice argparse knows is refused before any work
        _parser().parse_args(["--loss-network", "resnet"])
    cfg = settings.config_from_args(_parser().parse_args(["--num-residual", "3", "--dilations", "1, 2,3"]))
    assert cfg.dilations == (1, 2, 3) and cfg.architecture()["dilations"] == (1, 2, 3) and not cfg.problems()
    with pytest.raises(TrainingError, match="--dilations takes comma-separated integers, not 'a,2'"):
        settings.config_from_args(_parser().parse_args(["--dilations", "a,2"]))
    for bad in ((1, 2), (1, 1, 1, 1, 4), (0, 1, 1, 1, 1)):
        assert any(p.startswith("--dilations needs one value from 1 to 3 per residual block")
                   for p in TrainConfig(dilations=bad).problems())


def test_older_training_blocks_read_under_the_current_names():
    old = {"dataset": "detection-datasets/coco", "held_out": "held.txt", "learning_rate": 0.002, "steps": 10}
    block = settings.normalise_training(old)
    assert (block["data"], block["exclude_list"], block["lr"]) == ("detection-datasets/coco", "held.txt", 0.002)
    card = render_model_card({"channels": 8, "num_residual": 1, "training": old})
    assert "| content images | detection-datasets/coco |" in card and "| learning rate | 0.002 |" in card
    assert "datasets:\n- detection-datasets/coco" in card
    # a block written before loss_scaling existed used the paper's raw sums
    assert ObjectiveSettings.from_training({"style_weight": 5}).loss_scaling == "paper"
    assert ObjectiveSettings.from_training(TrainConfig()).loss_scaling == "relative"


def test_the_command_reproduces_the_settings():
    cfg = TrainConfig(style_image="a b.jpg", steps=12, input_skip=True, style_layers=("relu1_2", "relu2_2"),
                      num_residual=2, dilations=(1, 3))
    argv = settings.config_to_argv(cfg)
    assert argv == ["--style-layers", "relu1_2,relu2_2", "--style-image", "'a b.jpg'", "--num-residual", "2",
                    "--dilations", "1,3", "--input-skip", "--steps", "12"]
    import shlex

    again = settings.config_from_args(_parser().parse_args(shlex.split(" ".join(argv))))
    assert again == cfg
