"""Johnson et al.'s Table 1 on this machine: Gatys et al.'s optimisation against one forward pass.

Gatys: L-BFGS on the pixels for 100, 300 and 500 iterations (one run, cumulative wall time at
each count; :func:`fastnst.evaluate.gatys`, one loss+gradient evaluation per iteration) with the
VGG16 loss network and loss of training (content relu2_2, style relu1_2..relu4_3). Feed-forward:
one pass of the full-width (32) network, median of several after a warm-up, in fp32 (the same
precision as the optimisation) and, on CPUs with native bf16, in bf16. Printed as speed-up ratios;
the paper reports about 1000x against 500 iterations (GTX Titan X: 15 ms at 256², 50 ms at 512²).

    .venv/bin/python benchmarks/bench_gatys.py                                 # 256² and 512² (about 50 min; 512² is ~5 s an iteration on one core)
    .venv/bin/python benchmarks/bench_gatys.py --sizes 64 --iterations 2,3     # smoke

The loss network's weights do not change the time; ``vgg16-hed`` (cached after first use) is
the default, ``vgg16-random`` the fallback when it cannot be had offline.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from common import (REPO, add_run_options, cpu_supports_bf16, describe, machine, parse_run_options, report, time_it,
                    with_loss_network, write_json)

import torch  # noqa: E402

from fastnst import Stylizer, TransformerNet  # noqa: E402
from fastnst.evaluate import feed_forward, gatys, prepare_photo  # noqa: E402
from fastnst.objective import PerceptualObjective  # noqa: E402
from fastnst.settings import ObjectiveSettings  # noqa: E402

ASSETS = REPO / "fastnst" / "assets"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="256,512", help="square image sides (default 256,512)")
    p.add_argument("--iterations", default="100,300,500", help="Gatys L-BFGS iterations (default 100,300,500)")
    p.add_argument("--width", type=int, default=32, help="feed-forward network width (default 32, the paper's)")
    p.add_argument("--repeats", type=int, default=5, help="timed forward passes (default 5)")
    p.add_argument("--loss-network", default="vgg16-hed", help="vgg16, vgg16-hed or vgg16-random (default vgg16-hed)")
    p.add_argument("--content", default=str(ASSETS / "astronaut.jpg"), help="content photo")
    p.add_argument("--style-image", default=str(ASSETS / "chelsea.jpg"),
                   help="style image (any picture: it does not change the time)")
    add_run_options(p, "bench_gatys")
    args = parse_run_options(p, argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    iterations = sorted({int(i) for i in args.iterations.split(",") if i.strip()})

    info = machine()
    print(f"machine: {describe(info)}", file=sys.stderr)
    objective, loss_network = with_loss_network(args.loss_network, lambda name: PerceptualObjective.for_style(
        ObjectiveSettings(loss_network=name, loss_scaling="relative"), args.style_image))
    torch.manual_seed(0)
    model = TransformerNet(channels=args.width).eval()
    bf16 = Stylizer(TransformerNet(channels=args.width).eval(), device="cpu", precision="bf16") if cpu_supports_bf16() else None

    rows: list[dict[str, Any]] = []
    for size in sizes:
        content = prepare_photo(args.content, size)
        _, forward_s = feed_forward(model, content, "cpu", repeats=args.repeats)
        row: dict[str, Any] = {"size": f"{size}²", "forward_fp32_s": forward_s}
        if bf16 is not None:
            row["forward_bf16_s"] = time_it(lambda: bf16.stylize_tensor(content), args.repeats)["median_s"]
        print(f"{size}²: forward {forward_s:.3f} s; Gatys running to {iterations[-1]} iterations...", file=sys.stderr)
        for point in gatys(content, objective, iterations, keep_images=False,
                           progress=lambda c: print(f"  {c.iterations} iterations: {c.time_s:.1f} s", file=sys.stderr)):
            n = point.iterations
            row[f"gatys_{n}_s"] = point.time_s
            row[f"speedup_{n}"] = point.time_s / forward_s
            if bf16 is not None:
                row[f"speedup_{n}_bf16"] = point.time_s / row["forward_bf16_s"]
        rows.append(row)
        write_json({"machine": info, "args": vars(args), "rows": rows, "partial": True}, args.json)  # kept if stopped

    columns = [("size", "size"), ("forward_fp32_s", "forward fp32 s")]
    columns += [("forward_bf16_s", "forward bf16 s")] if bf16 is not None else []
    columns += [(f"gatys_{n}_s", f"Gatys {n} s") for n in iterations]
    columns += [(f"speedup_{n}", f"speed-up {n}") for n in iterations]
    columns += [(f"speedup_{n}_bf16", f"speed-up {n} (bf16)") for n in iterations[-1:]] if bf16 is not None else []
    result = {"machine": info, "args": vars(args), "loss_network": loss_network, "width": args.width,
              "gatys": "L-BFGS (torch.optim.LBFGS, history 100, no line search), from the content photo", "rows": rows}
    last = iterations[-1]
    r256 = next((r for r in rows if r["size"] == "256²"), None)
    if r256 is not None and last == 500:
        result["goal"] = {"goal": ">= 1000x speed-up at 256² against 500 iterations (fp32 forward)",
                          "value": f"{r256['speedup_500']:.0f}x", "met": r256["speedup_500"] >= 1000}
    write_json(result, args.json)

    report(f"Gatys et al. vs one forward pass (Johnson et al. Table 1), {describe(info)}; loss network {loss_network}",
           rows, columns, goals=[result["goal"]] if "goal" in result else [], markdown=args.markdown, json_path=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
