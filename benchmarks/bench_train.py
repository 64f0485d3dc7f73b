"""Training throughput: images/s of one optimisation step at 256 px, batch 4, full (32) and small (16) width.

One step is what ``fastnst.train`` does per batch: the network's forward pass, the perceptual
loss of :class:`fastnst.objective.PerceptualObjective` (VGG16 features of output and content,
Gram matrices, total variation), backward, Adam. Variants, side by side in one run:

* ``plain``: fp32, NCHW, eager (the reference);
* ``channels_last``: fp32, NHWC;
* ``bf16`` (CPU with native bf16) / ``fp16`` or ``bf16`` (GPU): autocast, NHWC;
* ``fast``: the same plus ``torch.compile`` of the network (``fastnst train --compile``);
* ``full target pass``: ``low precision``, but the content target (features of the photo, no gradient)
  from a pass through every loss layer, as before the pass stopped at the content layer (relu2_2).

Printed as images/s and the speed-up over ``plain``; GPU rows when one is present.

    .venv/bin/python benchmarks/bench_train.py                        # ~10-15 min on 2 cores
    .venv/bin/python benchmarks/bench_train.py --size 64 --steps 1 --no-compile   # smoke
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from common import PeakMemory, describe, machine, report, time_it, with_loss_network, write_json

import torch  # noqa: E402

from fastnst.loss_network import LossNetwork  # noqa: E402
from fastnst.model import TransformerNet  # noqa: E402
from fastnst.objective import PerceptualObjective  # noqa: E402
from fastnst.device import pick_dtype  # noqa: E402
from fastnst.objective import style_targets  # noqa: E402
from fastnst.settings import TrainConfig  # noqa: E402
from fastnst.train import ASSETS, validation_batch  # noqa: E402

WIDTHS = {32: "full", 16: "small"}


@dataclass(frozen=True)
class Variant:
    name: str
    precision: str        # the TrainConfig precision: fp32 | auto (bf16/fp16 where it pays)
    channels_last: bool
    compile: bool = False
    full_target: bool = False  # content target from a pass through every loss layer (the old way)


VARIANTS = (Variant("plain", "fp32", False), Variant("channels_last", "fp32", True),
            Variant("low precision", "auto", True), Variant("fast", "auto", True, compile=True),
            Variant("full target pass", "auto", True, full_target=True))


class Step:
    """One training step of ``fastnst.train`` for a configuration, on a fixed batch."""

    def __init__(self, cfg: TrainConfig, loss_net: LossNetwork, grams: dict[str, torch.Tensor], batch: torch.Tensor,
                 v: Variant, device: torch.device) -> None:
        torch.manual_seed(cfg.seed)
        fmt = torch.channels_last if v.channels_last else torch.contiguous_format
        self.model = TransformerNet(channels=cfg.channels, num_residual=cfg.num_residual).to(device, memory_format=fmt).train()
        self.objective = PerceptualObjective(loss_net.to(memory_format=fmt), grams, cfg)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.net = torch.compile(self.model) if v.compile else self.model
        self.amp = pick_dtype(device, v.precision, training=True)
        self.device, self.x = device, batch.to(device).contiguous(memory_format=fmt)
        self.content_target = (torch.no_grad()(lambda x: loss_net(x)[cfg.content_layer]) if v.full_target
                               else self.objective.content_target)

    def __call__(self) -> float:
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp != torch.float32):
            loss = self.objective.terms(self.net(self.x), self.content_target(self.x)).total
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", default="32,16", help="network widths (default 32,16)")
    p.add_argument("--size", type=int, default=256, help="training crop side (default 256, the paper's)")
    p.add_argument("--batch", type=int, default=4, help="batch size (default 4, the paper's)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per variant (default 5; median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2; compiling happens here)")
    p.add_argument("--device", default="all", help="cpu, cuda or all (default all: cpu, then cuda if present)")
    p.add_argument("--loss-network", default="vgg16-hed", help="default vgg16-hed; vgg16-random if unavailable")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="skip the compiled variant")
    p.add_argument("--json", default="bench_train.json", help="write the figures here (default bench_train.json)")
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = p.parse_args(argv)

    info = machine()
    print(f"machine: {describe(info)}", file=sys.stderr)
    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
        torch.backends.cudnn.benchmark = True  # as fastnst.train does
    variants = [v for v in VARIANTS if args.compile or not v.compile]
    rows: list[dict[str, Any]] = []
    for device in devices:
        for width in (int(w) for w in args.widths.split(",") if w.strip()):
            cfg = TrainConfig(channels=width, image_size=args.size, batch_size=args.batch, loss_network=args.loss_network)
            layers = tuple(set(cfg.style_layers) | {cfg.content_layer})
            loss_net, used = with_loss_network(cfg.loss_network, lambda name: LossNetwork(name, layers=layers).to(device))
            # the style image does not change the time: the example photo stands in for a painting
            grams = style_targets(ASSETS / "astronaut.jpg", loss_net, cfg.style_layers, cfg.style_size, device)
            batch = validation_batch(cfg).repeat((args.batch + 1) // 2, 1, 1, 1)[:args.batch]
            base = None
            for v in variants:
                step = Step(cfg, loss_net, grams, batch, v, device)
                with PeakMemory(device) as mem:
                    t = time_it(step, args.steps, warmup=args.warmup, device=device)
                ips = args.batch / t["median_s"]
                base = base or ips
                amp = step.amp
                row = {"device": device.type, "width": WIDTHS.get(width, width), "variant": v.name,
                       "precision": {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}[amp],
                       "layout": "nhwc" if v.channels_last else "nchw", "compile": v.compile,
                       "step_s": t["median_s"], "images_per_s": ips, "speedup": ips / base, "peak_mib": mem.peak_mib,
                       "loss_network": used}
                rows.append(row)
                print(f"  {device.type} {row['width']:>5} {v.name:<14} {t['median_s']:.3f} s/step  {ips:.2f} img/s "
                      f"({row['speedup']:.2f}x)", file=sys.stderr)

    result = {"machine": info, "args": vars(args), "rows": rows,
              "gpu": None if any(d.type == "cuda" for d in devices) else "not measured: no CUDA GPU on this machine"}
    write_json(result, args.json)
    columns = [("device", "device"), ("width", "width"), ("variant", "variant"), ("precision", "precision"),
               ("layout", "layout"), ("compile", "compile"), ("step_s", "s/step"), ("images_per_s", "img/s"),
               ("speedup", "vs plain"), ("peak_mib", "peak MiB")]
    report(f"fastnst training step, {args.size} px, batch {args.batch}; {describe(info)}", rows, columns,
           notes=[f"GPU rows: {result['gpu']}"] if result["gpu"] else [], markdown=args.markdown, json_path=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
