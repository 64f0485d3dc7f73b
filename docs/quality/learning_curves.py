#!/usr/bin/env python
"""Learning curves of a joint training run: loss and matched Gatys iterations against steps and CPU minutes.

    python docs/quality/learning_curves.py out/a out/snapshots/a-*.pt --eval docs/eval/noise --plots docs/quality

For every style of the run: its training loss (content and style terms, smoothed over 100 of its
steps) from the final checkpoint's history, and, for each snapshot checkpoint taken during the
run, the network's loss on the held-out photos of ``--eval``'s Gatys runs (reused, so a snapshot
costs a few forward passes) and the matched iteration count (median over those photos). Writes
``<plots>/curves_<style>.png`` and ``<plots>/curves_<run>.json``. Needs matplotlib.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

import torch

from fastnst.evaluate import matched_estimate, median_matched, prepare_photo
from fastnst.multistyle import MultiStyleNet
from fastnst.objective import PerceptualObjective
from fastnst.settings import ObjectiveSettings, TrainConfig, style_entries
from fastnst.train import build_model


def load_run(checkpoint: Path) -> tuple[TrainConfig, dict]:
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    cfg = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in ckpt["config"].items()})
    return cfg, ckpt


def snapshot_models(cfg: TrainConfig, ckpt: dict) -> list[torch.nn.Module]:
    """Every style of a checkpoint as an ordinary network (its own weights; no warm start is read)."""
    model = build_model(dataclasses.replace(cfg, init_from=""), style_entries(cfg))
    model.load_state_dict(ckpt["model"])
    if isinstance(model, MultiStyleNet):
        return [model.export(k).eval() for k in range(model.num_styles)]
    return [model.eval()]


def held_out_matched(model: torch.nn.Module, eval_json: dict, objective: PerceptualObjective) -> dict:
    estimates, losses = [], []
    for run in eval_json["runs"]:
        x = prepare_photo(run["photo"], run["size"])
        with torch.no_grad():
            loss = objective(model(x).clamp(0, 1), x).as_floats()["total"]
        losses.append(loss)
        estimates.append(matched_estimate(loss, run["gatys"]))
    return {"loss_mean": statistics.fmean(losses), "matched_median": median_matched(estimates),
            "matched_per_photo": estimates}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="the run's output folder (holds checkpoint.pt)")
    ap.add_argument("snapshots", type=Path, nargs="*", help="checkpoint copies taken during the run")
    ap.add_argument("--eval", type=Path, required=True, help="folder of <style>/eval.json (Gatys runs to reuse)")
    ap.add_argument("--plots", type=Path, required=True)
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg, final = load_run(args.run / "checkpoint.pt")
    entries = style_entries(cfg)
    names = [e.metadata()["name"] for e in entries]
    history = final["history"]
    minutes_per_step = final["wall_time_s"] / 60 / max(1, final["step"])
    points: dict[str, list[dict]] = {n: [] for n in names}
    seen: set[int] = set()
    for snap in sorted(args.snapshots, key=lambda p: torch.load(p, weights_only=True)["step"]) + [args.run / "checkpoint.pt"]:
        scfg, ckpt = load_run(snap)
        if ckpt["step"] in seen:  # a snapshot taken at the final step
            continue
        seen.add(ckpt["step"])
        models = snapshot_models(scfg, ckpt)
        for k, (name, entry) in enumerate(zip(names, entries)):
            path = args.eval / name / "eval.json"
            if not path.is_file():
                continue
            eval_json = json.loads(path.read_text())
            settings = ObjectiveSettings.from_training(eval_json["settings"])
            objective = PerceptualObjective.for_style(settings, eval_json["style_image"])
            points[name].append({"step": ckpt["step"], "cpu_minutes": round(ckpt["wall_time_s"] / 60, 1),
                                 **held_out_matched(models[k], eval_json, objective)})
            print(name, points[name][-1], file=sys.stderr)
    args.plots.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        rows = [h for h in history if h[4] == k]
        steps = [h[0] for h in rows]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
        for col, label in ((1, "content"), (2, "style")):
            vals = [h[col] for h in rows]
            smooth = [statistics.fmean(vals[max(0, i - 100):i + 1]) for i in range(len(vals))]
            ax1.plot(steps, smooth, label=f"{label} (training batches)")
        ax1.set_yscale("log")
        ax1.set_xlabel("step" if len(names) == 1 else f"step of the joint run (this style: one step in {len(names)})")
        ax1.set_ylabel("weighted loss term")
        top = ax1.secondary_xaxis("top", functions=(lambda s: s * minutes_per_step, lambda m: m / minutes_per_step))
        top.set_xlabel("CPU minutes (one core)")
        ax1.legend(fontsize=8)
        pts = points[name]
        if pts:
            ax2.plot([p["step"] for p in pts], [p["matched_median"] if p["matched_median"] is not None else float("nan")
                                                for p in pts], "o-", label="matched Gatys iterations (median)")
            ax2.set_ylabel("Gatys L-BFGS iterations matched")
            ax3 = ax2.twinx()
            ax3.plot([p["step"] for p in pts], [p["loss_mean"] for p in pts], "s--", color="tab:red",
                     label="held-out loss (mean)")
            ax3.set_ylabel("held-out loss", color="tab:red")
            ax2.legend(fontsize=8, loc="upper left")
        ax2.set_xlabel("step")
        fig.suptitle(f"{name}: training loss and held-out quality")
        fig.tight_layout()
        fig.savefig(args.plots / f"curves_{name}.png", dpi=80)
        plt.close(fig)
    (args.plots / f"curves_{args.run.name}.json").write_text(json.dumps(points, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
