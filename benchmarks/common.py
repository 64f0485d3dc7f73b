"""What the speed benchmarks share: the machine, timing, the hardware's peak, peak memory, tables, JSON.

Imported by ``bench_inference.py``, ``bench_gatys.py`` and ``bench_train.py`` (run as scripts from
the repository root: ``python benchmarks/bench_inference.py``; this folder is then on sys.path).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from fastnst.device import cpu_supports_bf16  # noqa: E402,F401  (re-exported for the benchmarks)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the figures were measured on (goes into every JSON file and table header)."""
    info: dict[str, Any] = {
        "cpu": cpu_model(), "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cpu_bf16": cpu_supports_bf16(), "torch": torch.__version__, "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def describe(info: dict[str, Any]) -> str:
    load = info.get("load_average_at_start")
    text = (f"{info['cpu']}, {info['cpu_cores']} cores ({'AVX-512 BF16' if info['cpu_bf16'] else 'no native bf16'}), "
            f"torch {info['torch']} ({info['torch_threads']} threads)")
    if info.get("onnxruntime"):
        text += f", onnxruntime {info['onnxruntime']}"
    if info.get("gpu"):
        text += f", GPU {info['gpu']}"
    if load:
        text += f"; load average at start {load[0]:.2f}"
    return text


def with_loss_network(name: str, build: Callable[[str], Any]) -> tuple[Any, str]:
    """``(build(name), name)``, or with ``vgg16-random`` when those weights cannot be had (offline):
    the loss network's weights do not change the time."""
    from fastnst.errors import LossNetworkUnavailableError

    try:
        return build(name), name
    except LossNetworkUnavailableError as e:
        print(f"note: {name} is not available ({e}); timing with vgg16-random (same FLOPs)", file=sys.stderr)
        return build("vgg16-random"), "vgg16-random"


def add_run_options(p: argparse.ArgumentParser, name: str) -> None:
    """The flags the speed benchmarks share: ``--threads``, ``--json`` (default ``NAME.json``), ``--markdown``."""
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--json", default=f"{name}.json", help=f"write the figures here (default {name}.json)")
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown (for the README)")


def parse_run_options(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``p``'s arguments, with ``--threads`` applied (``torch.set_num_threads``)."""
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def time_it(fn: Callable[[], Any], repeats: int, warmup: int = 1, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Median (and min) wall time of ``fn`` over ``repeats`` runs after ``warmup`` runs.

    Each run is one ``torch.utils.benchmark.Timer`` measurement, which synchronises CUDA and keeps
    torch's thread setting; single runs (not ``blocked_autorange``'s blocks) because one call of
    the slow cases (Gatys' optimisation, a training step) takes seconds to minutes.
    """
    from torch.utils.benchmark import Timer

    del device  # Timer synchronises CUDA itself
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    for _ in range(warmup):
        fn()
    times = [timer.timeit(1).median for _ in range(max(1, repeats))]
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": len(times)}


def matmul_peak(dtype: torch.dtype, device: torch.device | str = "cpu", n: int = 4096, repeats: int = 3) -> float:
    """This machine's practical peak in GFLOP/s at ``dtype``: the best of ``repeats`` n x n matmuls."""
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, generator=g, device=device).to(dtype)
    b = torch.randn(n, n, generator=g, device=device).to(dtype)
    t = time_it(lambda: torch.mm(a, b), repeats=repeats, warmup=1, device=device)
    return 2 * n**3 / t["min_s"] / 1e9


class PeakMemory:
    """Peak memory while the block runs, in MiB above what was in use when it started.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: the process's resident set, sampled every
    few milliseconds by a thread (allocations shorter than that can be missed), after returning
    the heap's free memory to the OS so that reused memory counts.
    """

    def __init__(self, device: torch.device | str = "cpu", interval_s: float = 0.002) -> None:
        self.cuda = torch.device(device).type == "cuda"
        self.interval_s, self.peak_mib = interval_s, 0.0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakMemory":
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
        else:
            _trim_heap()
            self._base = self._peak = _rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, _rss())

    def __exit__(self, *exc: Any) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, _rss())
        self.peak_mib = max(0.0, (peak - self._base) / 2**20)


def _trim_heap() -> None:
    """Give memory freed by earlier runs back to the OS (glibc keeps it), so the baseline is what is live."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return psutil.Process().memory_info().rss


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], markdown: bool = False) -> str:
    """Rows (dicts) as an aligned text table, or a Markdown one; ``columns`` are (key, header)."""
    cells = [[h for _, h in columns]] + [[_cell(r.get(k)) for k, _ in columns] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(c) + " |" for c in cells]
        lines.insert(1, "|" + "|".join(" --- " for _ in columns) + "|")
        return "\n".join(lines)
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c[i].rjust(widths[i]) if i else c[i].ljust(widths[i]) for i in range(len(c))) for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(title: str, rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], *, notes: Sequence[str] = (),
           goals: Sequence[dict[str, Any]] = (), markdown: bool = False, json_path: str | os.PathLike | None = None) -> None:
    """Print a benchmark's result: title, table, notes, the goals (met / NOT met), Markdown, where the JSON went."""
    print(f"\n{title}")
    print(table(rows, columns))
    for note in notes:
        print(f"\n{note}")
    if goals:
        print("\ngoals:")
        for g in goals:
            print(f"  [{ {True: 'met', False: 'NOT met', None: '-'}[g['met']] }] {g['goal']}: {g['value']}")
    if markdown:
        print("\n" + table(rows, columns, markdown=True))
    if json_path:
        print(f"\nwrote {json_path}")


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v == 0:
            return "0"
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    return path


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'256,512,1920x1080' -> [(256, 256), (512, 512), (1080, 1920)] as (height, width)."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        w, _, h = part.partition("x")
        sizes.append((int(h or w), int(w)))
    return sizes


def size_label(h: int, w: int) -> str:
    return f"{w}²" if h == w else f"{w}x{h}"
