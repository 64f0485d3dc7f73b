#!/usr/bin/env python
"""Per-style history of the training legs: matched Gatys iterations and held-out loss per leg.

    python docs/quality/style_progress.py [--legs docs/quality/legs.json] [--out docs/quality]

Reads ``legs.json`` (the legs of ``docs/quality/README.md``'s sections, transcribed by hand) and
writes ``<out>/progress_<style>.png`` for every style: the lineage that leads to the shipped network as a
line (median over the five held-out photos, per-photo values as faint dots, shipped legs as filled
stars), the measured side branches as hollow markers beside the leg they started from, the goal of 50
matched iterations as a dashed line, and the held-out loss in a second panel. Why: the README tells each
style's history in prose and tables spread over many sections; one picture per style shows where each
lever helped and how far every style still is from the goal. Needs matplotlib; reads no model.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

Leg = dict[str, Any]
HERE = Path(__file__).resolve().parent


def positions(lineage: list[Leg], sides: list[Leg]) -> tuple[list[float], list[float]]:
    """x of each lineage leg and side branch: the gap after a leg widens with the side branches it has."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(sides):
        groups[int(s["from_leg"])].append(i)
    xl: list[float] = []
    xs = [0.0] * len(sides)
    pos = 0.0
    for leg in range(len(lineage)):
        xl.append(pos)
        idx = groups.get(leg, [])
        gap = max(1.0, 0.3 * (len(idx) + 1))
        for k, i in enumerate(idx):
            xs[i] = pos + 0.85 * gap * (k + 1) / (len(idx) + 1)
        pos += gap
    return xl, xs


def plot_style(name: str, style: dict[str, Any], goal: float, out: Path) -> Path:
    lineage: list[Leg] = style["lineage"]
    sides: list[Leg] = style.get("side_branches", [])
    x, sx = positions(lineage, sides)

    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 6), dpi=100, sharex=True,
                                  gridspec_kw={"height_ratios": [2.2, 1]})
    # per-photo values, faint
    for xi, e in list(zip(x, lineage)) + list(zip(sx, sides)):
        if e.get("matched_per_photo"):
            ax.scatter([xi] * len(e["matched_per_photo"]), e["matched_per_photo"], s=10, color="grey",
                       alpha=0.35, zorder=1, linewidths=0)
    # lineage median line, shipped legs as stars
    ax.plot(x, [e["matched"] for e in lineage], "-", color="tab:blue", zorder=2)
    for xi, e in zip(x, lineage):
        if e["shipped"]:
            ax.plot(xi, e["matched"], "*", ms=14, color="tab:blue", mec="black", mew=0.6, zorder=4)
        else:
            ax.plot(xi, e["matched"], "o", ms=6, color="tab:blue", zorder=3)
    # side branches: hollow markers, chains joined by a dotted line, labelled by section
    chains: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for xi, e in zip(sx, sides):
        ax.plot(xi, e["matched"], "o", ms=6, mfc="none", mec="tab:red", mew=1.2, zorder=3)
        ax.annotate(f"§{e['section']}", (xi, e["matched"]), textcoords="offset points", xytext=(3, 3),
                    fontsize=6, color="tab:red")
        if e.get("chain"):
            chains[e["chain"]].append((xi, e["matched"]))
    for pts in chains.values():
        ax.plot(*zip(*pts), ":", color="tab:red", lw=0.8, zorder=2)
    ax.axhline(goal, ls="--", color="black", lw=1)
    top = max([goal] + [v for e in lineage + sides for v in (e.get("matched_per_photo") or [e["matched"]])])
    ax.set_ylim(-2, top + 5)
    ax.set_ylabel("matched Gatys iterations\n(median of 5 held-out photos)")
    ax.set_title(f"{name}: matched Gatys iterations per training leg")
    ax.grid(alpha=0.3)
    ax.legend(handles=[
        Line2D([], [], color="tab:blue", marker="o", label="lineage (median)"),
        Line2D([], [], color="tab:blue", marker="*", ms=12, ls="", mec="black", label="shipped leg"),
        Line2D([], [], color="tab:red", marker="o", mfc="none", ls="", label="side branch (not shipped)"),
        Line2D([], [], color="grey", marker=".", ls="", alpha=0.5, label="per photo"),
        Line2D([], [], color="black", ls="--", label=f"goal {goal:g}"),
    ], fontsize=7, loc="upper left")

    # held-out loss where known
    lx = [(xi, e["heldout_loss"]) for xi, e in zip(x, lineage) if e.get("heldout_loss") is not None]
    if lx:
        ax2.plot(*zip(*lx), "-o", color="tab:green", ms=4)
    for xi, e in zip(sx, sides):
        if e.get("heldout_loss") is not None:
            ax2.plot(xi, e["heldout_loss"], "o", ms=5, mfc="none", mec="tab:red", mew=1.0)
    ax2.set_ylabel("held-out loss")
    ax2.grid(alpha=0.3)
    ax2.set_xticks(x, [f"§{e['section']}" for e in lineage])
    ax2.set_xlabel("training leg (section of docs/quality/README.md)")
    ax2.set_xlim(-0.4, max([x[-1] + 0.4] + [v + 0.3 for v in sx]))
    fig.tight_layout()
    path = out / f"progress_{name}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", type=Path, default=HERE / "legs.json", help="legs file (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for progress_<style>.png (default: %(default)s)")
    args = parser.parse_args(argv)
    data = json.loads(args.legs.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    for name, style in data["styles"].items():
        print(plot_style(name, style, float(data.get("goal", 50)), args.out))


if __name__ == "__main__":
    main()
