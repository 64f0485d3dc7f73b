"""Soak test of the demo under mixed, partly hostile traffic, against a local Hub server.

The app runs as a subprocess (``python app.py``) pointed at the test suite's Hub server
(``tests/hub_server.py``), which holds a valid style, a repo advertising a 20 GB weights file, one
that sends far more than it advertises, and one that trickles. ``--clients`` gradio_client
clients send, for ``--seconds``, a random mix of: stylizations at several sizes, uploads at the
size limit, corrupt files, contact sheets, and Pulls of the four repos. Reported: requests served,
outcomes by kind (a result, or the clear error expected), latency p50/p95 per kind, and the peak
memory of the server and disk use of its folders (temporary files and Hub cache) over time, with a
plot. It fails (exit 1) if a request gets no answer, an unexpected error, or the server dies.

    .venv/bin/python benchmarks/bench_soak.py                           # 10 minutes, 16 clients
    .venv/bin/python benchmarks/bench_soak.py --seconds 90 --clients 8  # a short run
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from common import REPO, describe, machine, write_json

sys.path.insert(0, str(REPO / "tests"))
from app_process import running_app  # noqa: E402
from hub_server import FakeHub  # noqa: E402

from fastnst.files import folder_bytes  # noqa: E402

UPLOAD_LIMIT = 8 * 2**20
#: What each kind of request may answer besides a result: the clear errors it is expected to get.
EXPECTED = {
    "corrupt": ("not an image", "corrupt or truncated", "no image"),
    "pull-huge": ("refused before downloading",),
    "pull-liar": ("grew past", "more than the", "refused before downloading"),
    "pull-slow": ("did not finish within",),
}
LIMITS = ("too many Hub pulls", "pulled", "its limit", "queue is full", "Queue is full")


def make_inputs(tmp: Path) -> dict[str, Path]:
    import numpy as np
    from PIL import Image

    photo = tmp / "photo.jpg"
    Image.open(REPO / "fastnst" / "assets" / "chelsea.jpg").convert("RGB").save(photo, quality=90)
    rng = np.random.default_rng(0)
    side = int((UPLOAD_LIMIT / 3.05) ** 0.5)   # noise does not compress: a PNG just under the upload limit
    big = tmp / "big.png"
    Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(big, compress_level=0)
    corrupt = tmp / "corrupt.jpg"
    corrupt.write_bytes(photo.read_bytes()[:2000] + b"\x00" * 500)
    return {"photo": photo, "big": big, "corrupt": corrupt}


def setup_hub() -> FakeHub:
    """The local Hub: a valid style, one advertising 20 GB, one advertising 1 kB but serving 5 MB, one trickling."""
    import os

    hub = FakeHub().start()
    files = {q.name: q.read_bytes() for q in (REPO / "fastnst" / "embedded" / "starry_night").iterdir() if q.is_file()}
    for repo in ("alice/valid", "mallory/huge", "mallory/slow"):
        hub.add_repo(repo, files)
    hub.add_repo("mallory/liar", {**files, "model.safetensors": os.urandom(5 * 2**20)})
    hub.faults["advertise"] = {"mallory/huge/model.safetensors": 20 * 2**30, "mallory/liar/model.safetensors": 1000}
    hub.faults["slow_download"] = {"file": "mallory/slow/model.safetensors", "bytes_per_s": 2000}
    return hub


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=600.0, help="how long clients send (default 600)")
    p.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    p.add_argument("--json", default="bench_soak.json", help="figures (default bench_soak.json)")
    p.add_argument("--plot", default="bench_soak.png", help="memory and disk over time (default bench_soak.png)")
    args = p.parse_args(argv)
    from gradio_client import Client, handle_file

    info = machine()
    tmp = Path(tempfile.mkdtemp(prefix="fastnst-soak-"))
    inputs = make_inputs(tmp)
    hub = setup_hub()
    env = {"FASTNST_STYLE_SOURCES": "embedded", "FASTNST_DEMO_TMP": str(tmp / "app"), "HF_HOME": str(tmp / "hf"),
           "FASTNST_DEVICE": "cpu", "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url,
           "FASTNST_MAX_FILE_BYTES": str(UPLOAD_LIMIT), "FASTNST_PULL_MAX_WEIGHTS_MB": "2",
           "FASTNST_PULL_TIMEOUT_S": "10", "FASTNST_DEMO_TMP_MB": "256", "FASTNST_DEMO_PULL_DISK_MB": "8",
           "FASTNST_DEMO_PULLS_PER_MIN": "30", "FASTNST_DEMO_PULLS_PER_SESSION": "1000",
           "FASTNST_DEMO_MAX_ADDED": "1000"}
    outcomes: Counter = Counter()
    latencies: dict[str, list[float]] = defaultdict(list)
    failures: list[str] = []
    samples: list[tuple[float, int, int]] = []
    lock = threading.Lock()
    stop = threading.Event()
    with running_app(env, log=tmp / "app.log") as app:

        def monitor() -> None:
            t0 = time.monotonic()
            while not stop.is_set():
                samples.append((time.monotonic() - t0, app.rss_bytes(), folder_bytes(tmp / "app") + folder_bytes(tmp / "hf")))
                time.sleep(0.5)

        def client_loop(seed: int) -> None:
            rng = random.Random(seed)
            client = Client(app.url, verbose=False, analytics_enabled=False, download_files=str(tmp / f"dl{seed}"))
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                kind = rng.choice(["stylize", "stylize", "stylize", "big", "corrupt", "sheet",
                                   "pull-valid", "pull-huge", "pull-liar", "pull-slow"])
                t = time.monotonic()
                try:
                    if kind in ("stylize", "big", "corrupt"):
                        image = inputs["photo" if kind == "stylize" else kind]
                        client.predict(handle_file(str(image)), "starry_night", 1.0, False, rng.choice([128, 256, 512]),
                                       api_name="/stylize")
                    elif kind == "sheet":
                        client.predict(handle_file(str(inputs["photo"])), 1.0, False, api_name="/contact_sheet")
                    else:
                        repo = {"pull-valid": "alice/valid", "pull-huge": "mallory/huge", "pull-liar": "mallory/liar",
                                "pull-slow": "mallory/slow"}[kind]
                        client.predict(repo, api_name="/add_style")
                    result = "ok"
                except Exception as e:  # noqa: BLE001 - classified below
                    message = str(e)
                    if any(k in message for k in EXPECTED.get(kind, ())):
                        result = "refused as expected"
                    elif any(k in message for k in LIMITS):
                        result = "rate or queue limit"
                    else:
                        result = "UNEXPECTED"
                        with lock:
                            failures.append(f"{kind}: {message[:300]}")
                with lock:
                    outcomes[(kind, result)] += 1
                    latencies[kind].append(time.monotonic() - t)

        mon = threading.Thread(target=monitor, daemon=True)
        mon.start()
        threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(args.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        stop.set()
        mon.join()
        alive = app.proc.poll() is None
    hub.stop()
    rows = []
    for kind in sorted(latencies):
        lat = sorted(latencies[kind])
        rows.append({"kind": kind, "requests": len(lat),
                     "outcomes": {r: n for (k, r), n in outcomes.items() if k == kind},
                     "p50_s": statistics.median(lat), "p95_s": lat[min(len(lat) - 1, int(0.95 * len(lat)))]})
    peak_rss = max(s[1] for s in samples) if samples else 0
    peak_disk = max(s[2] for s in samples) if samples else 0
    result = {"machine": info, "seconds": args.seconds, "clients": args.clients, "rows": rows, "server_alive": alive,
              "unexpected": failures, "peak_rss_mb": peak_rss / 2**20, "peak_disk_mb": peak_disk / 2**20,
              "samples": samples}
    write_json(result, args.json)
    plot(samples, args.plot)
    print(f"\nSoak: {args.clients} clients for {args.seconds:.0f} s against the demo and a local Hub server; {describe(info)}")
    print(f"{'kind':<12} {'requests':>8} {'p50 s':>7} {'p95 s':>7}  outcomes")
    for r in rows:
        print(f"{r['kind']:<12} {r['requests']:>8} {r['p50_s']:>7.2f} {r['p95_s']:>7.2f}  {r['outcomes']}")
    print(f"served {sum(r['requests'] for r in rows)} requests; server alive: {alive}; unexpected errors: {len(failures)}; "
          f"peak server memory {peak_rss / 2**20:.0f} MB; peak disk (tmp + Hub cache) {peak_disk / 2**20:.0f} MB")
    for f in failures[:10]:
        print("  UNEXPECTED", f)
    print(f"wrote {args.json}, {args.plot}")
    return 0 if alive and not failures else 1


def plot(samples: list[tuple[float, int, int]], path: str) -> None:
    """Memory and disk over time as a small PNG (Pillow only)."""
    from PIL import Image, ImageDraw

    from fastnst.images import label_font

    w, h, pad = 800, 300, 40
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    if len(samples) < 2:
        img.save(path)
        return
    t_max = samples[-1][0] or 1
    for i, (color, label) in ((1, ("#c0392b", "server memory (MB)")), (2, ("#2471a3", "disk: tmp + Hub cache (MB)"))):
        v_max = max(s[i] for s in samples) or 1
        pts = [(pad + (w - 2 * pad) * s[0] / t_max, h - pad - (h - 2 * pad) * s[i] / v_max) for s in samples]
        d.line(pts, fill=color, width=2)
        d.text((pad, 8 + 16 * (i - 1)), f"{label}: peak {v_max / 2**20:.0f}", fill=color, font=label_font(13))
    d.line([(pad, h - pad), (w - pad, h - pad)], fill="black")
    d.text((w - pad - 60, h - pad + 6), f"{t_max:.0f} s", fill="black", font=label_font(12))
    img.save(path)


if __name__ == "__main__":
    sys.exit(main())
