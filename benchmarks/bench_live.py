"""The demo's live webcam: frames/s and the working size its adaptive loop settles at, per style.

Each style gets a fresh ``FpsMeter`` started where the UI starts it (256 px on a CPU) and a stream of
webcam-sized frames (a public-domain photo panned 2 px a frame with sensor noise) through
``StyleService.stylize_frame``, the function the UI's webcam stream calls: resize, network, the
stream's flicker stabiliser. The first frames let the size settle; the figures are over the rest.
Then every style at one fixed size, side by side, so wide and narrow networks compare directly.
What the browser adds (encoding, the round trip) is not in it.

    .venv/bin/python benchmarks/bench_live.py                 # every embedded style, 640x480, ~2 min
    .venv/bin/python benchmarks/bench_live.py --styles udnie,starry_night --frames 60
    .venv/bin/python benchmarks/bench_live.py --sources embedded,out/run/starry_night   # a trained folder, before it ships
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import numpy as np
from common import REPO, describe, machine, parse_sizes, report, write_json

import torch  # noqa: E402

from demo.service import LIVE_SIZES, Settings, StyleService  # noqa: E402
from fastnst.errors import StyleNotFoundError  # noqa: E402
from fastnst.images import load_image  # noqa: E402

GOAL_FPS = 5.0  # the floor for the live webcam at its automatic size


def webcam_frames(count: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` HxWx3 uint8 frames: a photo panned 2 px a frame, with sensor noise (what Gradio hands over)."""
    photo = load_image(REPO / "fastnst" / "assets" / "astronaut.jpg").convert("RGB")
    base = np.asarray(photo.resize((width + 2 * count, height)), dtype=np.int16)
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        crop = base[:, 2 * i: 2 * i + width] + rng.normal(0, 2.0, (height, width, 3)).round().astype(np.int16)
        frames.append(np.clip(crop, 0, 255).astype(np.uint8))
    return frames


def stream(service: StyleService, style: str, frames: list[np.ndarray], settle: int, size: Any = "auto") -> dict[str, Any]:
    """Frames through ``stylize_frame`` as the UI sends them (its meter, its start size); figures over the
    frames after ``settle``: the working size (median, smallest), ms a frame (median) and frames/s."""
    meter = service.live_meter()
    times, sizes = [], []
    for i, frame in enumerate(frames):
        t0 = time.perf_counter()
        out = service.stylize_frame(frame, style, 1.0, False, meter, size)
        if i >= settle:
            times.append(time.perf_counter() - t0)
            sizes.append(max(out.size))
    return {"px": int(statistics.median(sizes)), "min_px": min(sizes), "ms": statistics.median(times) * 1000,
            "fps": len(times) / sum(times)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--styles", default="", help="comma-separated style keys (default: every embedded style)")
    p.add_argument("--sources", default=None,
                   help="style sources as FASTNST_STYLE_SOURCES takes them (default: the app's); a local folder's "
                        "style whose name is taken gets a suffixed key, e.g. starry_night-2")
    p.add_argument("--frame", default="640x480", help="webcam frame WxH (default 640x480)")
    p.add_argument("--frames", type=int, default=40, help="frames a style after the size settled (default 40)")
    p.add_argument("--settle", type=int, default=20, help="frames first, for the adaptive size (default 20)")
    p.add_argument("--fixed", type=int, default=512, help="the fixed size every style is also run at (0: skip)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice, as the app)")
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    p.add_argument("--json", default="bench_live.json", help="write the figures here (default bench_live.json)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    (h, w), = parse_sizes(args.frame)
    info = machine()
    service = StyleService(Settings.from_env(**({"sources": args.sources} if args.sources else {})))
    keys = [k for k in args.styles.split(",") if k] or service.keys()
    for key in keys:  # the service's own check, before any frame is timed
        try:
            service.entry(key)
        except StyleNotFoundError as e:
            p.error(f"{e} A trained folder is added with --sources embedded,FOLDER.")
    frames = webcam_frames(args.settle + args.frames, w, h)
    rows = []
    for key in keys:
        arch = service.stylizer(key).model.architecture
        row = {"style": key, "width": arch["channels"], "decoder": arch.get("upsample", "nearest")}
        row.update({f"auto_{k}": v for k, v in stream(service, key, frames, args.settle).items()})
        if args.fixed:
            fixed = stream(service, key, frames[: args.settle // 2 + args.frames], args.settle // 2, size=str(args.fixed))
            row.update({f"fixed_{k}": v for k, v in fixed.items()})
        rows.append(row)
        print(f"{key}: {row}", file=sys.stderr)
    if args.fixed:
        fastest = min(r["fixed_ms"] for r in rows)
        for r in rows:
            r["fixed_vs_fastest"] = r["fixed_ms"] / fastest
    columns = [("style", "style"), ("width", "width"), ("decoder", "upsampling"), ("auto_px", "auto size px"),
               ("auto_min_px", "smallest px"), ("auto_ms", "ms/frame"), ("auto_fps", "frames/s")]
    if args.fixed:
        columns += [("fixed_ms", f"ms/frame at {args.fixed}"), ("fixed_fps", f"frames/s at {args.fixed}"),
                    ("fixed_vs_fastest", "vs fastest")]
    slowest = min(rows, key=lambda r: r["auto_fps"])
    goals = [{"goal": f"live webcam >= {GOAL_FPS:g} frames/s at its automatic size, every style",
              "value": f"slowest {slowest['style']}: {slowest['auto_fps']:.1f} frames/s at {slowest['auto_px']} px",
              "met": slowest["auto_fps"] >= GOAL_FPS}]
    notes = [f"{describe(info)}; {w}x{h} frames, {args.settle} to settle, {args.frames} timed; device {service.device.type}",
             f"auto: the adaptive size (between {LIVE_SIZES[0]} and {LIVE_SIZES[1]} px, longest side) the UI uses; "
             "frames/s: timed frames over their total time (resize, network, flicker stabiliser)"]
    report("Live webcam (StyleService.stylize_frame)", rows, columns, notes=notes, goals=goals, markdown=args.markdown)
    print(f"\nwrote {write_json({'machine': info, 'rows': rows, 'goals': goals}, args.json)}")
    return 0 if goals[0]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
