"""Large images: the network whole against in bands (:mod:`fastnst.bands`), side by side in one run.

For each size and precision, with an embedded style (width 32): the median time of ``--repeats`` runs of
``Stylizer.stylize_tensor`` on the image already in memory (no warm-up run: the first is timed too), its peak memory above the baseline
(``PeakMemory``: resident set, sampled), and how far each output is from a reference, the whole image in
fp32 in the contiguous (NCHW) memory format (mean and max grey levels), which is within 0.001 grey levels of
float64 at 1 MP. Above 4 MP the whole image's channels-last pass, the ``Stylizer``'s, measures its norms'
statistics apart (``InstanceNorm.batch_norm_drifts``): torch's own sums drift as the pixels add up. The fp32
"one-sweep stats" row runs it with torch's statistics, for their cost and error side by side.
Bands use the ``Stylizer``'s ``tile_pixels`` (``--tile-pixels``, default the library's 4 MP), the
whole image runs with the limit lifted.

    .venv/bin/python benchmarks/bench_bands.py                              # 6 MP and 12 MP, fp32 and bf16: ~10 min
    .venv/bin/python benchmarks/bench_bands.py --sizes 1024x768 --tile-pixels 65536 --repeats 1   # smoke
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time
from unittest import mock

from common import (PeakMemory, add_run_options, cpu_supports_bf16, describe, machine, parse_run_options, parse_sizes,
                    report, size_label, time_it, write_json)

import torch  # noqa: E402  (after common, which puts the repository on sys.path)

from fastnst import Stylizer, TransformerNet  # noqa: E402
from fastnst.model import InstanceNorm  # noqa: E402
from fastnst.stylizer import DEFAULT_TILE_PIXELS  # noqa: E402
from fastnst.styles import embedded_styles  # noqa: E402


def one_sweep_stats(on: bool) -> contextlib.AbstractContextManager:
    """If ``on``, within the block every norm uses torch's batch-norm statistics whatever the image's size."""
    return mock.patch.object(InstanceNorm, "batch_norm_drifts", staticmethod(lambda x: False)) if on \
        else contextlib.nullcontext()


def photo_like(h: int, w: int) -> torch.Tensor:
    """A smooth random image with some edges (1x3xHxW in [0, 1]): blurred noise, upscaled."""
    g = torch.Generator().manual_seed(0)
    small = torch.rand(1, 3, max(4, h // 32), max(4, w // 32), generator=g)
    return torch.nn.functional.interpolate(small, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--style", default="starry_night", help="embedded style (default starry_night)")
    p.add_argument("--sizes", default="3000x2000,4000x3000", help="WxH (default 3000x2000,4000x3000: 6 and 12 MP)")
    p.add_argument("--tile-pixels", type=int, default=DEFAULT_TILE_PIXELS, help="the bands' pixels (default the library's)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per figure (default 2)")
    add_run_options(p, "bench_bands")
    args = parse_run_options(p, argv)
    net = TransformerNet.from_pretrained(embedded_styles()[args.style]).float().eval()
    precisions = ["fp32"] + (["bf16"] if cpu_supports_bf16() else [])
    rows = []
    for h, w in parse_sizes(args.sizes):
        x = photo_like(h, w)
        ref = Stylizer(copy.deepcopy(net), device="cpu", precision="fp32", tile_pixels=10**12,
                       channels_last=False).stylize_tensor(x)
        for precision in precisions:
            ways = [("whole", 10**12, True), ("bands", args.tile_pixels, True)]
            if precision == "fp32":  # the statistics' cost: torch's one-sweep float32 sums, as before the fix
                ways.insert(1, ("whole, one-sweep stats", 10**12, False))
            for how, limit, exact in ways:
                s = Stylizer(copy.deepcopy(net), device="cpu", precision=precision, tile_pixels=limit)
                # the first run, timed too (a minute at 12 MP)
                with one_sweep_stats(not exact), PeakMemory() as mem:
                    start = time.perf_counter()
                    y = s.stylize_tensor(x)
                    first = time.perf_counter() - start
                    more = [time_it(lambda: s.stylize_tensor(x), repeats=1, warmup=0)["median_s"]
                            for _ in range(args.repeats - 1)]
                row = {"size": size_label(h, w), "precision": precision, "how": how,
                       "s": statistics.median([first, *more]), "peak_mib": mem.peak_mib}
                err = (y - ref).abs() * 255
                row.update(err_mean=float(err.mean()), err_max=float(err.max()))
                rows.append(row)
                del s, y, err
            whole = rows[-len(ways)]
            for other in rows[-len(ways) + 1:]:
                other["time_ratio"] = other["s"] / whole["s"]
                other["memory_ratio"] = other["peak_mib"] / max(whole["peak_mib"], 1e-9)
    columns = [("size", "size"), ("precision", "precision"), ("how", "how"), ("s", "s"), ("time_ratio", "x whole"),
               ("peak_mib", "peak MiB"), ("memory_ratio", "x whole"), ("err_mean", "grey mean vs NCHW fp32"),
               ("err_max", "grey max")]
    info = machine()
    write_json({"machine": info, "style": args.style, "tile_pixels": args.tile_pixels, "rows": rows}, args.json)
    report(f"Large images, {args.style} (width {net.channels}), bands of {args.tile_pixels / 1e6:.2g} MP: {describe(info)}",
           rows, columns, markdown=args.markdown, json_path=args.json,
           notes=["x whole: time and peak memory over the whole image's, same size and precision.",
                  "one-sweep stats: the whole image with torch's own batch-norm statistics (float32 sums in one "
                  "sweep on channels_last), which the Stylizer replaces above 4 MP (InstanceNorm.batch_norm_drifts)."])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
