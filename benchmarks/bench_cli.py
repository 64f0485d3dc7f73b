"""How long the ``fastnst`` command takes before it does anything, and what ``stylize`` adds to the network.

Each command runs as a fresh process (what a user waits for), median of several runs, side by side
with ``python -c "import torch"`` (what a command that imports torch cannot go below) and an empty
``python -c pass``. ``fastnst stylize`` on one photo is split into the network's own time (measured
in-process on the same prepared image) and the rest: interpreter and imports, loading the style,
reading and writing the images.

    .venv/bin/python benchmarks/bench_cli.py              # ~1 min
    .venv/bin/python benchmarks/bench_cli.py --repeats 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import REPO, describe, machine, report, write_json

GOAL_S = 0.5
PHOTO = REPO / "fastnst" / "assets" / "astronaut.jpg"


def wall(argv: list[str], repeats: int) -> float:
    """Median wall time of running ``argv`` (after one untimed run that warms the file cache)."""
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=REPO)
        if i:
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def network_time(style: str, max_size: int, repeats: int) -> float:
    """Median in-process time of the network alone on the photo as ``stylize`` prepares it."""
    from fastnst import Stylizer
    from fastnst.images import pil_to_tensor

    stylizer = Stylizer.from_pretrained(style)
    x = pil_to_tensor(stylizer.prepare(PHOTO, max_size))
    stylizer.stylize_tensor(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        stylizer.stylize_tensor(x)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="timed runs per command (default 5; median)")
    p.add_argument("--style", default="starry_night", help="style for the stylize rows (default starry_night)")
    p.add_argument("--max-size", type=int, default=1024, help="stylize output size (default 1024)")
    p.add_argument("--json", default="bench_cli.json", help="write the figures here (default bench_cli.json)")
    args = p.parse_args(argv)
    info = machine()
    py, fastnst = sys.executable, [sys.executable, "-m", "fastnst.cli"]
    out = Path(tempfile.mkdtemp()) / "out.png"
    commands = [
        ("python -c pass", [py, "-c", "pass"], True),
        ('python -c "import torch"', [py, "-c", "import torch"], True),
        ("fastnst --version", [*fastnst, "--version"], False),
        ("fastnst --help", [*fastnst, "--help"], False),
        ("fastnst train --help", [*fastnst, "train", "--help"], False),
        ("fastnst list --no-hub", [*fastnst, "list", "--no-hub"], False),
        (f"fastnst stylize (1 photo, {args.max_size} px)",
         [*fastnst, "stylize", str(PHOTO), "--style", args.style, "--max-size", str(args.max_size), "-o", str(out)], None),
    ]
    rows: list[dict[str, Any]] = []
    for label, cmd, reference in commands:
        t = wall(cmd, args.repeats)
        rows.append({"command": label, "wall_s": t, "reference": reference})
    torch_s = rows[1]["wall_s"]
    net = network_time(args.style, args.max_size, args.repeats)
    stylize = rows[-1]
    stylize["network_s"], stylize["overhead_s"] = net, stylize["wall_s"] - net
    for r in rows:
        r["vs_import_torch"] = r["wall_s"] / torch_s
    goals = [{"goal": f"{r['command']} under {GOAL_S} s", "value": f"{r['wall_s']:.2f} s", "met": r["wall_s"] < GOAL_S}
             for r in rows if r["command"] in ("fastnst --version", "fastnst --help")]
    write_json({"machine": info, "rows": rows, "goals": goals}, args.json)
    report(f"fastnst command start-up, {describe(info)} (median of {args.repeats} fresh processes)", rows,
           [("command", "command"), ("wall_s", "wall s"), ("vs_import_torch", "vs import torch"),
            ("network_s", "network s"), ("overhead_s", "rest s")], goals=goals, json_path=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
