"""Concurrent load on the demo app: N gradio_client sessions send M /stylize requests in total.

Starts ``python app.py`` on 127.0.0.1 (offline, loopback only), checks every answer against a
reference computed one request at a time (a mixed-up, missing or wrong image counts as failed),
and reports p50/p95 latency, throughput and the server's peak resident memory::

    .venv/bin/python benchmarks/bench_app_load.py                       # 16 clients, 200 requests
    .venv/bin/python benchmarks/bench_app_load.py --style starry_night --size 512 --json out.json

Without ``--style`` it uses the first embedded style, or a random-weight style made on the fly
(the figures then measure the serving path rather than a real network). Bounded by ``--deadline``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the app harness the tests use too

from app_process import run_load, running_app  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--size", type=int, default=256, help="output longest side (px)")
    p.add_argument("--style", help="a style key of the app (default: first embedded, else a random one)")
    p.add_argument("--device", default="cpu", help="the app's device (FASTNST_DEVICE)")
    p.add_argument("--concurrency", type=int, help="the app's per-device concurrency limit")
    p.add_argument("--deadline", type=float, default=600.0, help="stop sending after this many seconds")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)

    import numpy as np  # noqa: F401  (fail early if the dev requirements are missing)
    import psutil  # noqa: F401
    from PIL import Image

    from fastnst import TransformerNet
    from fastnst.styles import embedded_styles

    with tempfile.TemporaryDirectory(prefix="fastnst-load-") as tmp_str:
        tmp = Path(tmp_str)
        style, sources = args.style, "embedded"
        if style is None and embedded_styles():
            style = next(iter(embedded_styles()))
        elif style is None:
            TransformerNet(channels=32, num_residual=5, style={"name": "random"}).save_pretrained(tmp / "styles" / "random")
            style, sources = "random", str(tmp / "styles")
        images = []
        for i, name in enumerate(("astronaut", "coffee", "chelsea")):
            img = Image.open(REPO / "demo" / "examples" / f"{name}.jpg").convert("RGB").resize((480, 360))
            images.append(tmp / f"in{i}.png")
            img.save(images[-1])          # same size: concurrent requests can share a batch
        env = {"FASTNST_STYLE_SOURCES": sources, "FASTNST_DEVICE": args.device, "FASTNST_DEMO_TMP": str(tmp / "app"),
               "HF_HOME": str(tmp / "hf"), "FASTNST_DEMO_QUEUE": str(max(64, 2 * args.clients))}
        if args.concurrency:
            env["FASTNST_DEMO_CONCURRENCY"] = str(args.concurrency)
        with running_app(env, log=tmp / "app.log") as app:
            idle = app.rss_bytes()
            t0 = time.perf_counter()
            report = run_load(app, images, style, clients=args.clients, requests=args.requests, size=args.size,
                              deadline_s=args.deadline, download_dir=tmp / "downloads")
            figures = {"style": style, "device": args.device, "clients": args.clients, "size": args.size,
                       "idle_rss_mib": round(idle / 2**20, 1), **report.summary(),
                       "total_s": round(time.perf_counter() - t0, 2)}
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["ok"] == args.requests else 1


if __name__ == "__main__":
    raise SystemExit(main())
