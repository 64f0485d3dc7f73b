#!/usr/bin/env python
"""Drop a trained style's last residual blocks where they add next to nothing, without training.

Blocks added by deepening (`--init-from` a shallower style with more `--num-residual`) may never switch on: the
shipped 7-block styles' blocks 6-7 add well under 2% of the trunk's signal (docs/quality §30-31) yet weigh a quarter
of the file and of the trunk's time. This measures each block's share on the astronaut, refuses to drop a block
above ``--max-share``, writes the shallower style folder (weights in the source's precision, style.jpg, a new
example.jpg, the card with a "residual blocks dropped after training" row) and says how far the output moved.

    python train_scripts/drop_idle_blocks.py fastnst/embedded/composition_vii --num-residual 5 -o out/cvii5
"""

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from fastnst.card import save_model_card  # noqa: E402
from fastnst.errors import StyleNotFoundError  # noqa: E402
from fastnst.grow import block_shares, block_span, shallowed  # noqa: E402
from fastnst.images import load_image, pil_to_tensor  # noqa: E402
from fastnst.model import TransformerNet  # noqa: E402
from fastnst.styles import WEIGHTS_NAME, resolve_style, verify_safetensors  # noqa: E402
from fastnst.train import ASSETS, write_example  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("style", help="a style folder or embedded name")
    p.add_argument("--num-residual", type=int, required=True, help="residual blocks to keep (the first ones)")
    p.add_argument("--max-share", type=float, default=0.01,
                   help="refuse to drop a block that adds more than this share of the trunk's signal (default 0.01)")
    p.add_argument("-o", "--output", required=True, help="the new style folder")
    args = p.parse_args(argv)
    try:
        src = Path(resolve_style(args.style))
    except StyleNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not (src / WEIGHTS_NAME).is_file():
        print(f"error: {args.style} is not a style folder or embedded style here (a Hub style: `fastnst pull` it "
              f"first, then give its folder).", file=sys.stderr)
        return 2
    net = TransformerNet.from_pretrained(src).float().eval()
    if not 1 <= args.num_residual < net.num_residual:
        print(f"error: --num-residual {args.num_residual}: {args.style} has {net.num_residual} residual blocks; keep "
              f"at least 1 and fewer than that.", file=sys.stderr)
        return 2
    saved = {dtype for dtype, _ in verify_safetensors(src / WEIGHTS_NAME).values()}  # the header only
    saved_dtype = torch.float16 if saved == {"F16"} else torch.bfloat16 if saved == {"BF16"} else torch.float32
    photo = pil_to_tensor(load_image(ASSETS / "astronaut.jpg").convert("RGB").resize((256, 256)))
    shares = block_shares(net, photo)
    print("each block's share of the trunk's signal on the astronaut at 256 px:",
          ", ".join(f"{i + 1}: {s:.2%}" for i, s in enumerate(shares)))
    dropped = shares[args.num_residual:]
    if max(dropped, default=0.0) > args.max_share:
        print(f"error: of the blocks to drop, one adds {max(dropped):.2%} of the trunk's signal (limit --max-share "
              f"{args.max_share:.2%}): dropping it would change the style. Keep the blocks, or "
              f"train on from the shallower network (--init-from with --num-residual {args.num_residual}).",
              file=sys.stderr)
        return 2
    span = block_span(args.num_residual + 1, net.num_residual)
    training = {**net.training_info, "blocks_dropped": (
        f"{span} of {net.num_residual} (adding {', '.join(f'{s:.2%}' for s in dropped)} of the trunk's signal on the "
        f"astronaut at 256 px), by train_scripts/drop_idle_blocks.py")}
    cut = shallowed(net, args.num_residual)
    small = TransformerNet(**{**cut.config, "training": training}).eval()  # the config is saved as constructed
    small.load_state_dict(cut.state_dict())
    with torch.no_grad():
        moved = (small(photo) - net(photo)).abs().mul(255)
    out = Path(args.output)
    if out.resolve() != src.resolve():
        shutil.rmtree(out, ignore_errors=True)
    small.to(saved_dtype).save_pretrained(out)
    if (src / "style.jpg").is_file() and out.resolve() != src.resolve():
        shutil.copy(src / "style.jpg", out / "style.jpg")
    write_example(out, net.training_info.get("example_image") or "")  # the photo its training pictured
    save_model_card(out)
    print(f"wrote {out}: {net.num_residual} -> {args.num_residual} residual blocks; the astronaut at 256 px moved by "
          f"{moved.mean():.2f} grey levels on average, {moved.max():.1f} at most")
    return 0


if __name__ == "__main__":
    sys.exit(main())
