"""Quality evaluation (feed-forward vs Gatys): tiny sizes, the random loss network, a few iterations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import smooth_image
from fastnst import FastNSTError, TransformerNet
from fastnst.cli import main as cli_main
from fastnst.evaluate import (_training_photo_warning, compare, direction, direction_added, evaluate_style, gatys,
                              label_height, markdown_summary, matched_estimate, matched_iterations, median_matched, noise_image,
                              photo_files, picture_iterations, side_by_side, styles_table)
from fastnst.images import tensor_to_pil
from fastnst.losses import feature_loss, gram_matrix, relative_layer_weights, style_loss, total_variation
from fastnst.objective import ObjectiveSettings, PerceptualObjective
from fastnst.train import TrainConfig, train

LAYERS2 = ("relu1_2", "relu2_2")
TRAINING = dict(loss_network="vgg16-random", content_layer="relu2_2", style_layers=list(LAYERS2), content_weight=1.0,
                style_weight=5.0, tv_weight=2.0, loss_scaling="relative", style_size=32, image_size=32)


@pytest.fixture(scope="module")
def style_image(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("painting") / "painting.png"
    smooth_image(40, 36, seed=7).save(p)
    return p


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("heldout")
    smooth_image(72, 64, seed=1).save(d / "a.png")
    smooth_image(64, 80, seed=2).save(d / "b.png")
    return d


@pytest.fixture(scope="module")
def eval_style(tmp_path_factory, style_image) -> Path:
    """A random-init style whose config.json has a training block; style.jpg is its style image."""
    folder = tmp_path_factory.mktemp("styles") / "tinyeval"
    torch.manual_seed(0)
    TransformerNet(channels=4, num_residual=1, style={"name": "tinyeval"}, training=TRAINING).save_pretrained(folder)
    Image.open(style_image).convert("RGB").save(folder / "style.jpg", quality=95)
    return folder


def _objective(settings: ObjectiveSettings, style_image: Path, seed: int = 0) -> PerceptualObjective:
    torch.manual_seed(seed)  # vgg16-random: the loss network's weights come from the seed
    return PerceptualObjective.for_style(settings, style_image)


@pytest.mark.parametrize("scaling", ["relative", "paper"])
def test_objective_is_the_training_formula(style_image, scaling):
    obj = _objective(ObjectiveSettings.from_training({**TRAINING, "loss_scaling": scaling}), style_image)
    torch.manual_seed(1)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    terms = obj(y, x)
    # the formula of Johnson et al. as the trainer's loop wrote it before it was factored out
    net, grams = obj.loss_net, obj.style_grams
    weights = relative_layer_weights(grams) if scaling == "relative" else None
    target = net(x)["relu2_2"]
    scale = target.pow(2).mean() if scaling == "relative" else 1.0
    feats = net(y)
    content = 1.0 * feature_loss(feats["relu2_2"], target) / scale
    style = 5.0 * style_loss({n: gram_matrix(feats[n]) for n in LAYERS2}, grams, weights)
    tv = 2.0 * total_variation(y)
    for got, want in zip(terms, (content, style, tv)):
        torch.testing.assert_close(got, want)
    assert float(terms.total) == pytest.approx(float(content + style + tv), rel=1e-6)


def test_settings_from_training_block():
    s = ObjectiveSettings.from_training({k: v for k, v in TRAINING.items() if k != "loss_scaling"})
    assert s.loss_scaling == "paper"  # blocks written before the option existed used the paper's sums
    assert s.style_layers == LAYERS2 and s.style_weight == 5.0
    with pytest.raises(ValueError, match="unknown layers"):
        ObjectiveSettings.from_training({"content_layer": "relu9_9"})


def test_trainer_and_evaluator_share_the_objective(tmp_path, photos, style_image, monkeypatch):
    """The trainer's logged loss terms are the objective's, and config.json rebuilds the same objective."""
    import fastnst.train as train_module

    calls = []

    class Recording(PerceptualObjective):
        def __call__(self, output, content):
            terms = super().__call__(output, content)
            calls.append((output.detach().clone(), content.detach().clone(), [float(t) for t in terms]))
            return terms

    monkeypatch.setattr(train_module, "PerceptualObjective", Recording)
    cfg = TrainConfig(style_image=str(style_image), output_dir=str(tmp_path / "style"), data=str(photos),
                      loss_network="vgg16-random", image_size=32, batch_size=2, channels=4, num_residual=1,
                      style_size=32, style_layers=LAYERS2, style_weight=5.0, tv_weight=2.0, steps=2, num_workers=0,
                      shuffle_buffer=1, log_every=1, sample_every=1000, checkpoint_every=1000, save_dtype="fp32",
                      precision="fp32", channels_last=False)
    with pytest.warns(UserWarning):
        folder = train(cfg)
    assert len(calls) == 2
    ckpt = torch.load(folder / "checkpoint.pt", weights_only=True)
    for (_, *logged, _), (_, _, terms) in zip(ckpt["history"], calls):
        assert logged == pytest.approx(terms, rel=1e-6)
    training = json.loads((folder / "config.json").read_text())["training"]
    obj = _objective(ObjectiveSettings.from_training(training), style_image, seed=cfg.seed)
    y, x, logged = calls[-1]
    with torch.no_grad():
        assert [float(t) for t in obj(y, x)] == pytest.approx(logged, rel=1e-5)


def test_gatys_decreases_at_checkpoints(style_image):
    obj = _objective(ObjectiveSettings.from_training(TRAINING), style_image)
    content = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    points = gatys(content, obj, [8, 2, 0, 4, 16])
    assert [p.iterations for p in points] == [0, 2, 4, 8, 16]
    assert [p.evaluations for p in points] == [0, 2, 4, 8, 16]  # no line search: one evaluation per iteration
    totals = [p.loss["total"] for p in points]
    assert all(b < a for a, b in zip(totals, totals[1:])), totals
    with torch.no_grad():
        assert totals[0] == pytest.approx(float(obj(content, content).total))  # 0 iterations: the photo itself
    times = [p.time_s for p in points]
    assert times == sorted(times) and times[1] > 0
    for p in points:
        assert p.image.shape == (1, 3, 32, 32) and 0 <= float(p.image.min()) and float(p.image.max()) <= 1
        assert p.loss["total"] == pytest.approx(p.loss["content"] + p.loss["style"] + p.loss["tv"])
        with torch.no_grad():  # the reported loss is the loss of the reported (valid) image
            assert float(obj(p.image, content).total) == pytest.approx(p.loss["total"], rel=1e-5)
    with pytest.raises(ValueError):
        gatys(content, obj, [-1, 5])


def _points(*pairs):
    return [{"iterations": n, "loss": {"total": loss}, "time_s": n / 10} for n, loss in pairs]


def test_matched_iterations_logic():
    pts = _points((50, 4.0), (100, 2.0), (200, 1.0), (500, 0.5))
    assert matched_iterations(2.5, pts) == 100
    assert matched_iterations(2.0, pts) == 100       # equal loss counts as matched
    assert matched_iterations(9.0, pts) == 50        # worse than 50 iterations
    assert matched_iterations(0.1, pts) is None      # better than 500 iterations
    assert matched_iterations(2.5, list(reversed(pts))) == 100
    assert matched_estimate(9.0, pts) == 50.0 and matched_estimate(0.1, pts) is None
    assert matched_estimate(2.0 * 2 ** 0.5, pts) == pytest.approx(75.0)  # halfway in log-loss
    ff = {"loss": {"total": 2.5}, "time_s": 0.05}
    c = compare(ff, pts)
    assert c["matched"] == "100" and c["time_ratio_matched"] == 200 and c["time_ratio_last"] == 1000
    c = compare({"loss": {"total": 0.1}, "time_s": 0.05}, pts)
    assert c["matched"] == "> 500" and c["matched_iterations"] is None and c["time_ratio_matched"] is None
    assert picture_iterations([50, 100, 200, 300, 500]) == [50, 100]
    assert picture_iterations([0, 10, 20, 30, 50, 100]) == [50, 100]
    assert picture_iterations([2, 3]) == [3]


def test_side_by_side_has_five_panels(tmp_path):
    panels = [(name, smooth_image(60 + 7 * i, 50, seed=i)) for i, name in
              enumerate(["content", "style", "feed-forward", "Gatys 100", "Gatys 500"])]
    pic = side_by_side(panels, tmp_path / "sbs.jpg", size=48)
    assert pic.size == (5 * 48, 48 + label_height(48))
    saved = Image.open(tmp_path / "sbs.jpg")
    assert saved.format == "JPEG" and saved.size == pic.size


def test_training_photo_warning(tmp_path, photos):
    assert _training_photo_warning(photos / "a.png", {"dataset": str(photos)})
    assert _training_photo_warning(photos / "a.png", {"dataset": str(tmp_path)}) is None
    assert _training_photo_warning(photos / "a.png", {"dataset": "coco/hub-id"}) is None


def test_evaluate_style_result(eval_style, photos, tmp_path):
    result = evaluate_style(eval_style, [photos], sizes=(32,), iterations=(2, 4), max_photos=1, log=lambda s: None)
    assert "style.jpg" in result["style_image_source"]
    assert result["settings"]["loss_network"] == "vgg16-random" and result["settings"]["style_weight"] == 5.0
    (run,) = result["runs"]
    assert run["size"] == 32 and Path(run["photo"]).name == "a.png"
    assert set(run["feed_forward"]["loss"]) == {"content", "style", "tv", "total"}
    assert [c["iterations"] for c in run["gatys"]] == [0, 2, 4]
    assert run["matched_iterations"] == matched_iterations(run["feed_forward"]["loss"]["total"], run["gatys"])
    s = result["summary"]["32"]
    assert s["photos"] == 1 and s["matched_per_photo"] == [run["matched"]]
    md = markdown_summary(result)
    assert md.startswith("| size | photos | network | content photo | Gatys 2 | Gatys 4 |") and "| 32 px | 1 |" in md
    assert run["content_photo"]["loss"]["total"] == pytest.approx(run["gatys"][0]["loss"]["total"])  # 0 its = the photo
    assert s["direction_added_median"] == pytest.approx(run["feed_forward"]["direction_added"]) and s["direction_added_median"] > 0
    assert "Direction (a screen for streaks)" in md and f"{result['style_direction']:.2f}" in md
    # the style term split by layer, for the network and every Gatys snapshot: the layers sum to the term
    for part in (run["feed_forward"], *run["gatys"]):
        assert set(part["style_layers"]) == set(result["settings"]["style_layers"])
        assert sum(part["style_layers"].values()) == pytest.approx(part["loss"]["style"], rel=1e-4)
    assert s["style_layers"]["network"] == run["feed_forward"]["style_layers"]  # the median of one photo
    deepest = result["settings"]["style_layers"][-1]
    assert s["style_layers"]["gatys"]["4"][deepest] == run["gatys"][-1]["style_layers"][deepest]
    assert "The style term by VGG layer at 32 px" in md
    assert f"| {deepest} | {run['feed_forward']['style_layers'][deepest]:.3g} |" in md


def test_direction_tells_horizontal_stripes_from_vertical_and_none():
    rows = torch.arange(64).remainder(4).lt(2).float()
    stripes = rows.view(1, 1, 64, 1).expand(1, 3, 64, 64) * 0.6 + 0.2  # horizontal bands, 2 px each
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert direction(stripes + 0.01 * noise) > 10 and direction(stripes.transpose(2, 3) + 0.01 * noise) < 0.1
    assert 0.9 < direction(noise) < 1.1
    assert direction(tensor_to_pil(noise)) == pytest.approx(direction(noise), rel=0.05)  # PIL images too
    assert direction_added(noise, noise) == pytest.approx(1.0)
    assert direction_added(0.5 * noise + 0.5 * stripes, noise) > 1.5


def test_cli_eval_end_to_end(eval_style, photos, style_image, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["eval", str(eval_style), "--photos", str(photos), "--sizes", "32,40", "--iterations", "2,3",
            "--out", str(out), "--style-image", str(style_image)]
    assert cli_main(argv) == 0
    text = capsys.readouterr().out
    assert "given with --style-image" in text and "matched" in text and "mean" in text
    result = json.loads((out / "eval.json").read_text())
    assert len(result["runs"]) == 4 and set(result["summary"]) == {"32", "40"}
    for size in (32, 40):
        pic = Image.open(out / f"side_by_side_{size}.jpg")
        # 2 photos: one row each; 3 iterations give one Gatys panel (3) besides content, style, feed-forward
        assert pic.size == (4 * size, 2 * (size + label_height(size)))
    assert (out / "summary.md").read_text().count("px |") == 2
    # --resume reuses every finished photo/size instead of optimising again
    assert cli_main(argv + ["--resume"]) == 0
    err = capsys.readouterr().err
    assert err.count("reusing the Gatys runs") == 4 and " it  loss" not in err
    assert _gatys_only(json.loads((out / "eval.json").read_text())["runs"]) == _gatys_only(result["runs"])
    # ... and keeps them when another size is added, run to fewer iterations (as 512 px, which costs 4x)
    assert cli_main(argv[:4] + ["--sizes", "48", "--max-photos", "1", "--iterations", "2"] + argv[8:] + ["--resume"]) == 0
    merged = json.loads((out / "eval.json").read_text())
    assert len(merged["runs"]) == 5 and merged["sizes"] == [32, 40, 48] and set(merged["summary"]) == {"32", "40", "48"}
    assert _gatys_only(merged["runs"][:4]) == _gatys_only(result["runs"]) and (out / "side_by_side_48.jpg").is_file()
    assert [c["iterations"] for c in merged["summary"]["48"]["gatys"]] == [0, 2] and merged["iterations"] == [0, 2, 3]
    md = (out / "summary.md").read_text()
    assert md.count("px |") == 3 and md.split("| 48 px |")[1].split("\n")[0].count("not run") == 1
    # a size asked for with other iterations is optimised again, not reused
    capsys.readouterr()
    assert cli_main(argv[:4] + ["--sizes", "48", "--max-photos", "1"] + argv[6:] + ["--resume"]) == 0
    assert "reusing" not in capsys.readouterr().err
    again = json.loads((out / "eval.json").read_text())
    assert [c["iterations"] for c in again["summary"]["48"]["gatys"]] == [0, 2, 3]
    assert _gatys_only(again["runs"][:4]) == _gatys_only(result["runs"])
    assert cli_main(["eval", str(eval_style), "--photos", str(tmp_path / "none")]) == 1


def test_held_out_photos_of_a_training_source_elsewhere_are_never_pictured(eval_style, photos, tmp_path):
    """A style trained on another machine's folder (or a Hub dataset) names its held-out photos in its exclude
    list: those may be research-only, so they are measured but left out of the side-by-side picture."""
    style = tmp_path / "style"
    shutil.copytree(eval_style, style)
    held = tmp_path / "holdout.txt"
    held.write_text("# held out of the training photos\na.png\n")
    config = json.loads((style / "config.json").read_text())
    config["training"].update(data=str(tmp_path / "gone-with-the-gpu-machine"), exclude_list=str(held))
    (style / "config.json").write_text(json.dumps(config))
    out = tmp_path / "eval"
    assert cli_main(["eval", str(style), "--photos", str(photos), "--sizes", "32", "--iterations", "2",
                     "--out", str(out)]) == 0
    assert len(json.loads((out / "eval.json").read_text())["runs"]) == 2  # both measured
    assert Image.open(out / "side_by_side_32.jpg").height == 32 + label_height(32)  # only b.png pictured
    # only the pictured photo's shown Gatys snapshot is kept as an image; the other's runs are numbers alone
    assert sorted(p.name for p in (out / "images").iterdir()) == ["b-32-gatys_2.png"]


def test_resume_reuses_the_numbers_of_photos_it_does_not_picture(eval_style, photos, tmp_path, capsys):
    """Gatys images of research-only photos are never kept (nor committed), yet --resume on a fresh checkout
    reuses their runs from eval.json, so networks are compared on the same optimisations; a pictured photo
    whose snapshots are gone is optimised again (its picture needs them)."""
    style = tmp_path / "style"
    shutil.copytree(eval_style, style)
    held = tmp_path / "holdout.txt"
    held.write_text("a.png\n")
    config = json.loads((style / "config.json").read_text())
    config["training"]["exclude_list"] = str(held)
    (style / "config.json").write_text(json.dumps(config))
    out = tmp_path / "eval"
    argv = ["eval", str(style), "--photos", str(photos), "--sizes", "32", "--iterations", "2", "--out", str(out)]
    assert cli_main(argv) == 0
    first = json.loads((out / "eval.json").read_text())
    shutil.rmtree(out / "images")  # a fresh checkout: the numbers are committed, the images are not
    capsys.readouterr()
    assert cli_main(argv + ["--resume"]) == 0
    err = capsys.readouterr().err
    assert "a-32: reusing the Gatys runs" in err and "b-32: reusing" not in err
    again = json.loads((out / "eval.json").read_text())
    assert _gatys_only(again["runs"])[0] == _gatys_only(first["runs"])[0]


def _gatys_only(runs):
    return [(r["photo"], r["size"], r["gatys"]) for r in runs]


def test_median_matched_counts_unmatched_photos_as_more():
    assert median_matched([10.0, 30.0, 20.0]) == 20.0
    assert median_matched([10.0, None, None]) is None          # most photos beyond the longest run
    assert median_matched([5.0, 50.0, None, 7.0]) == pytest.approx(28.5)
    assert median_matched([]) is None


def _evaluated_copy(eval_style, photos, tmp_path) -> tuple[Path, Path, list[str], dict]:
    """A copy of the style evaluated once by the CLI: (style folder, out folder, the CLI's argv, its eval.json)."""
    style = tmp_path / "style"
    shutil.copytree(eval_style, style)
    out = tmp_path / "eval"
    argv = ["eval", str(style), "--photos", str(photos), "--sizes", "32", "--iterations", "2,3", "--out", str(out),
            "--max-photos", "1"]
    assert cli_main(argv) == 0
    first = json.loads((out / "eval.json").read_text())
    return style, out, argv, first


def test_resume_after_retraining_measures_only_the_network(eval_style, photos, tmp_path, capsys):
    """The Gatys runs do not depend on the weights: a retrained style reuses them, and its new loss is reported."""
    style, out, argv, first = _evaluated_copy(eval_style, photos, tmp_path)
    model = TransformerNet.from_pretrained(style)
    with torch.no_grad():
        model.decoder[-1][1].bias.add_(0.3)  # "more training": other weights, another output
    model.save_pretrained(style)
    config = json.loads((style / "config.json").read_text())
    config.setdefault("training", {})["image_size"] = 2 * int(config["training"].get("image_size", 256))
    (style / "config.json").write_text(json.dumps(config))  # continued at another crop size: same objective
    capsys.readouterr()
    assert cli_main(argv + ["--resume"]) == 0
    assert "reusing the Gatys runs" in capsys.readouterr().err
    second = json.loads((out / "eval.json").read_text())
    assert _gatys_only(second["runs"]) == _gatys_only(first["runs"])
    assert second["runs"][0]["feed_forward"]["loss"]["total"] != first["runs"][0]["feed_forward"]["loss"]["total"]


def test_runs_recorded_before_the_split_by_layer_gain_it_where_their_images_were_kept(eval_style, photos, tmp_path):
    style, out, argv, first = _evaluated_copy(eval_style, photos, tmp_path)
    old = json.loads((out / "eval.json").read_text())
    for run in old["runs"]:
        for c in run["gatys"]:
            del c["style_layers"]
    (out / "eval.json").write_text(json.dumps(old))
    kept = {int(p.stem.rsplit("_", 1)[1]) for p in (out / "images").glob("*gatys_*.png")}
    assert kept and kept != {c["iterations"] for c in first["runs"][0]["gatys"]}  # some snapshots have no image
    assert cli_main(argv + ["--resume"]) == 0
    again = json.loads((out / "eval.json").read_text())
    for before, after in zip(first["runs"][0]["gatys"], again["runs"][0]["gatys"]):
        if after["iterations"] in kept:  # measured again on the kept image
            assert set(after["style_layers"]) == set(before["style_layers"])
            assert all(v > 0 for v in after["style_layers"].values())
        else:
            assert "style_layers" not in after
    n = max(kept)
    layers = again["summary"]["32"]["style_layers"]
    assert layers["photos"] == 1 and layers["gatys"][str(n)]["photos"] == 1  # one photo each: no side column
    assert "The style term by VGG layer" in (out / "summary.md").read_text()


def test_the_split_by_layer_shows_the_network_on_the_photos_a_gatys_count_was_split_on():
    from fastnst.evaluate import _layers_markdown, style_layer_medians

    def run(net, gatys):
        return {"feed_forward": {"style_layers": {"relu1_2": net, "relu4_3": 10 * net}},
                "gatys": [{"iterations": 0}] + [{"iterations": 50, "style_layers": {"relu1_2": g, "relu4_3": 10 * g}}
                                                for g in gatys]}

    runs = [run(0.1, [0.02]), run(0.3, []), run(0.5, [])]  # only the first photo's Gatys 50 was split
    layers = style_layer_medians(runs)
    assert layers["network"]["relu4_3"] == pytest.approx(3.0) and layers["photos"] == 3
    assert layers["gatys"]["50"]["photos"] == 1 and layers["gatys"]["50"]["network"]["relu4_3"] == pytest.approx(1.0)
    md = _layers_markdown({"summary": {"256": {"style_layers": layers}}})
    assert "| layer | network | Gatys 50 / network, on 1 photo |" in md and "| relu4_3 | 3 | 0.2 / 1 |" in md
    assert style_layer_medians([{"feed_forward": {}, "gatys": []}]) == {}


@pytest.mark.parametrize("key, label, bad", [("content_weight", "content", 0.0), ("tv_weight", "TV", -1.0)])
def test_weight_override_measures_a_retrained_style_on_its_paintings_objective(eval_style, photos, tmp_path, capsys,
                                                                              key, label, bad):
    """A style whose last training changed the content or TV weight is measured, with --content-weight or --tv-weight,
    on the objective its painting's Gatys runs optimise (reusing them), and the summary says which weight it was
    measured at."""
    style, out, argv, first = _evaluated_copy(eval_style, photos, tmp_path)
    trained = first["settings"][key]
    config = json.loads((style / "config.json").read_text())
    config["training"][key] = 2 * trained
    (style / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert cli_main(argv + ["--resume", "--" + key.replace("_", "-"), str(trained)]) == 0
    assert "reusing the Gatys runs" in capsys.readouterr().err
    second = json.loads((out / "eval.json").read_text())
    assert second["settings"][key] == trained and second[f"trained_{key}"] == 2 * trained
    assert _gatys_only(second["runs"]) == _gatys_only(first["runs"])
    assert f"Measured at {label} weight {trained:g}" in (out / "summary.md").read_text()
    assert "Measured at" not in markdown_summary(first)
    # without the flag the retrained style's own objective differs: its Gatys runs are not reused
    result = evaluate_style(style, [photos], sizes=(32,), iterations=(2,), max_photos=1, log=lambda s: None)
    assert result["settings"][key] == 2 * trained and result["fingerprint"] != second["fingerprint"]
    with pytest.raises(FastNSTError, match=f"{label} weight must be"):
        evaluate_style(style, [photos], sizes=(32,), iterations=(2,), max_photos=1, log=lambda s: None, **{key: bad})


def test_noise_start_and_held_out_photos(eval_style, photos, tmp_path):
    noise = noise_image(torch.zeros(1, 3, 8, 8))
    assert noise.shape == (1, 3, 8, 8) and 0 < float(noise.std(dim=(2, 3)).max()) < 1e-4
    assert noise.mean(dim=(0, 2, 3)).tolist() == pytest.approx([0.485, 0.456, 0.406], abs=1e-4)
    result = evaluate_style(eval_style, [photos], sizes=(32,), iterations=(2,), max_photos=1, init="noise",
                            log=lambda s: None, out=tmp_path / "noise")
    run = result["runs"][0]
    assert run["gatys"][0]["loss"]["total"] > run["content_photo"]["loss"]["total"]  # noise is far worse than the photo
    assert "noise (start)" in (tmp_path / "noise" / "summary.md").read_text()
    with pytest.raises(FastNSTError, match="init"):
        evaluate_style(eval_style, [photos], sizes=(32,), iterations=(2,), init="zeros", log=lambda s: None)
    # a photo inside the training folder is held out when the training's list names it; never pictured
    held = tmp_path / "held.txt"
    held.write_text("a.png\n")
    assert _training_photo_warning(photos / "a.png", {"dataset": str(photos), "held_out": str(held)}) is None
    assert _training_photo_warning(photos / "b.png", {"dataset": str(photos), "held_out": str(held)})
    config = json.loads((eval_style / "config.json").read_text())
    style = tmp_path / "trained-here"
    shutil.copytree(eval_style, style)
    config["training"].update(dataset=str(photos), held_out=str(held))
    (style / "config.json").write_text(json.dumps(config))
    lst = tmp_path / "photos.txt"
    lst.write_text(f"# held-out\n{photos / 'a.png'}\n")
    assert photo_files([lst]) == [photos / "a.png"]
    result = evaluate_style(style, photo_files([lst]), sizes=(32,), iterations=(2,), log=lambda s: None,
                            out=tmp_path / "held")
    assert result["warnings"] == [] and result["pictures"] == []
    assert not (tmp_path / "held" / "side_by_side_32.jpg").exists()
    table = styles_table([result, result], 32)
    assert table.count("\n") == 4 and table.startswith("| style | photos | network | network's content term | photo | Gatys 2 |")


def test_into_card_records_the_evaluation_in_the_style_folder(eval_style, photos, tmp_path):
    style = tmp_path / "style"
    shutil.copytree(eval_style, style)
    argv = ["eval", str(style), "--photos", str(photos), "--sizes", "32", "--iterations", "2", "--out",
            str(tmp_path / "eval"), "--max-photos", "1", "--into-card"]
    assert cli_main(argv) == 0
    config = json.loads((style / "config.json").read_text())
    assert config["training"]["evaluation"].startswith("| size | photos | network |")
    assert Image.open(style / "evaluation.jpg").format == "JPEG"
    card = (style / "README.md").read_text()
    assert "| 32 px | 1 |" in card and 'src="evaluation.jpg"' in card
    assert TransformerNet.from_pretrained(style).training_info["evaluation"] == config["training"]["evaluation"]


def test_style_image_of_a_jointly_trained_style(tmp_path, style_image):
    from fastnst.evaluate import find_style_image

    other = tmp_path / "other.png"
    smooth_image(30, 30, seed=1).save(other)
    listing = tmp_path / "styles.json"
    listing.write_text(json.dumps([{"name": "a", "image": str(other)}, {"name": "b", "image": str(style_image)}]))
    training = {"command": f"python train_scripts/train.py --styles {listing} --only a,b -o out/x"}
    assert find_style_image(tmp_path, training, name="b")[0] == style_image
    assert find_style_image(tmp_path, {"style_image": str(other)}, name="b")[0] == other
    # a list given explicitly names each style's painting, over what the training read
    assert find_style_image(tmp_path, {"style_image": str(other)}, listing, name="b")[0] == style_image
    with pytest.raises(FastNSTError, match="no style named 'c'"):
        find_style_image(tmp_path, training, listing, name="c")


def test_default_photos_ship_inside_the_package():
    """`fastnst eval` without --photos must work after `pip install fastnst` (demo/examples is not installed)."""
    import fastnst
    from fastnst.evaluate import DEFAULT_PHOTOS

    package = Path(fastnst.__file__).parent
    assert DEFAULT_PHOTOS.resolve().is_relative_to(package.resolve())
    assert len(photo_files(None)) >= 4
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"assets/*"' in pyproject  # packaged as package data
