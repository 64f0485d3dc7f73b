"""Test harness: run the app in a subprocess on a free loopback port, and a load run against it
(the app tests and benchmarks/bench_app_load.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppProcess:
    url: str
    proc: subprocess.Popen
    log: Path
    env: dict[str, str]

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def rss_bytes(self) -> int:
        """Resident memory of the server and its children (needs psutil)."""
        import psutil

        try:
            p = psutil.Process(self.proc.pid)
            return p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
        except psutil.Error:
            return 0


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/gradio_api/info", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_app(env: Mapping[str, str], log: Path, args: tuple[str, ...] = (),
                timeout: float = 120.0) -> Iterator[AppProcess]:
    """Start ``python app.py`` on 127.0.0.1 with ``env`` added to a minimal offline environment;
    yield once it answers, stop it (and its process group) at the end."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "FASTNST_"))}
    full_env.update({"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                     "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    full_env.update(env)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port), *args],
                                cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    app = AppProcess(f"http://127.0.0.1:{port}", proc, log, dict(env))
    try:
        deadline = time.monotonic() + timeout
        while not _ready(app.url):
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited with {proc.returncode}:\n{app.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not answer within {timeout:.0f} s:\n{app.log_tail()}")
            time.sleep(0.3)
        yield app
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@dataclass
class LoadReport:
    requests: int
    ok: int
    failed: int
    errors: list[str]
    latencies_s: list[float]
    wall_s: float
    peak_rss_bytes: int = 0

    def percentile(self, q: float) -> float:
        xs = sorted(self.latencies_s)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))]

    def summary(self) -> dict:
        return {"requests": self.requests, "ok": self.ok, "failed": self.failed, "lost": self.requests - self.ok - self.failed,
                "p50_s": round(self.percentile(50), 3), "p95_s": round(self.percentile(95), 3),
                "max_s": round(max(self.latencies_s, default=float("nan")), 3), "wall_s": round(self.wall_s, 2),
                "throughput_rps": round(self.ok / self.wall_s, 2) if self.wall_s else 0.0,
                "peak_rss_mib": round(self.peak_rss_bytes / 2**20, 1), "errors": self.errors[:5]}


def run_load(app: AppProcess, images: list[Path], style: str, *, clients: int = 16, requests: int = 200,
             size: int = 128, deadline_s: float = 300.0, tolerance: int = 2, download_dir: Path | None = None) -> LoadReport:
    """``clients`` concurrent gradio_client sessions send ``requests`` /stylize calls in total, cycling
    through ``images``. Every answer is checked against a reference computed first, one request at a
    time, for the same image: a mixed-up, missing or wrong result counts as failed. Peak server
    memory is sampled throughout. Loopback only; bounded by ``deadline_s``."""
    import itertools
    import threading

    import numpy as np
    from gradio_client import Client, handle_file
    from PIL import Image

    def call(client: Client, img: Path) -> np.ndarray:
        out = client.predict(handle_file(str(img)), style, 1.0, False, size, api_name="/stylize")
        return np.asarray(Image.open(out[1]).convert("RGB"), dtype=np.int16)

    def client_() -> Client:
        return Client(app.url, verbose=False, analytics_enabled=False,
                      download_files=str(download_dir or app.log.parent / "downloads"))

    first = client_()
    refs = [call(first, img) for img in images]
    counter, lock = itertools.count(), threading.Lock()
    report = LoadReport(requests, 0, 0, [], [], 0.0, app.rss_bytes())
    stop = threading.Event()
    deadline = time.monotonic() + deadline_s

    def sample() -> None:
        while not stop.is_set():
            report.peak_rss_bytes = max(report.peak_rss_bytes, app.rss_bytes())
            stop.wait(0.2)

    def worker() -> None:
        client = client_()
        while time.monotonic() < deadline:
            n = next(counter)
            if n >= requests:
                return
            k = n % len(images)
            t0 = time.perf_counter()
            try:
                got = call(client, images[k])
                good = got.shape == refs[k].shape and int(np.abs(got - refs[k]).max()) <= tolerance
                err = None if good else f"request {n}: result differs from the reference for image {k}"
            except Exception as e:  # counted, not raised: the report says what failed
                err = f"request {n}: {type(e).__name__}: {e}"
            dt = time.perf_counter() - t0
            with lock:
                report.latencies_s.append(dt)
                if err:
                    report.failed += 1
                    report.errors.append(err)
                else:
                    report.ok += 1

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic() + 30))
    report.wall_s = time.perf_counter() - t0
    stop.set()
    sampler.join(2)
    return report
