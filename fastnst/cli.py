"""The ``fastnst`` command line: stylize, train, push/pull/list styles, export, evaluate.

Every subcommand is here: its options in ``build_parser``, its work in a ``cmd_*`` function that
imports the heavy modules (torch, the Hub) only when it runs, so ``--help`` answers at once.
Errors fastnst raises on purpose end the program with one line on stderr and exit code 1 (2 for
bad options), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from . import settings
from .errors import FastNSTError
from .files import human_size

EPILOG = """examples:
  fastnst stylize photo.jpg --style starry_night -o out.png
  fastnst stylize photos/ --style user/my-style -o stylized/ --strength 0.8
  fastnst list
  fastnst export starry_night --format onnx -o starry_night.onnx
  fastnst train --preset cpu-joint --loss-network vgg16-hed --style-image painting.jpg --data photos/ -o styles/painting
  fastnst eval starry_night --init noise
"""


def _positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {s}")
    return v


def _unit_float(s: str) -> float:
    v = float(s)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {s}")
    return v


class _Parser(argparse.ArgumentParser):
    """Bad options end with one line (and exit code 2), not the usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fastnst", description="Fast neural style transfer (Johnson et al., 2016): apply, train and share styles.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"fastnst {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("stylize", help="apply a style to images or folders of images",
                       description="Apply a style to image files or to every image in folders.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image or video files (.mp4 .mov .m4v .mkv .webm .avi), or folders of them (searched recursively)")
    p.add_argument("--style", "-s", required=True,
                   help="embedded style name, local style folder, or Hub repo id (user/name)")
    p.add_argument("-o", "--output", default=None,
                   help="output file (one input) or folder; default: INPUT_STEM-STYLE.png in the current folder "
                        "(images found in input folders keep their subfolders)")
    p.add_argument("--strength", type=_unit_float, default=1.0, help="0 = original, 1 = full style (default 1)")
    p.add_argument("--preserve-color", action="store_true", help="keep the input's colours, take the style's luminance")
    p.add_argument("--max-size", type=_positive_int, default=1024, help="longest side of the output in px (default 1024)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"], help="inference backend (default torch)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network (torch backend): pays off for many images of one size")
    p.add_argument("--threads", type=_positive_int, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) of the style")
    p.add_argument("--stabilize", default="flow", choices=["flow", "blend", "stats", "both", "none"],
                   help="video: against flicker, blend each frame with the previous one moved along the optical flow "
                        "where the input matches it (default), the same without motion (blend), smooth the "
                        "instance-norm statistics over a shot (stats), stats and flow (both), or none")
    p.add_argument("--keyframe-interval", type=_positive_int, default=1, metavar="N",
                   help="video, with --stabilize flow: run the network on every N-th frame only and move its output "
                        "along the optical flow in between, stylizing only what that does not show (faster and "
                        "steadier; light changes show at key frames only). Default 1: every frame")
    p.set_defaults(func=cmd_stylize)

    _add_train(sub)
    _add_hub_commands(sub)
    _add_export(sub)
    _add_eval(sub)
    return parser


def cmd_stylize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .images import IMAGE_SUFFIXES, list_images
    from .stylizer import save_image
    from .video import VIDEO_SUFFIXES, is_video

    # (file, its folder relative to the input folder it was found in): outputs mirror subfolders,
    # so photos/a/x.jpg and photos/b/x.jpg do not overwrite each other
    jobs = [(f, f.parent.relative_to(item) if Path(item).is_dir() else Path())
            for item in args.inputs for f in list_images([item], (*IMAGE_SUFFIXES, *VIDEO_SUFFIXES))]
    if not jobs:
        raise FastNSTError(f"no images or videos found in {', '.join(args.inputs)}.")
    files = [f for f, _ in jobs]
    stylizer = make_stylizer(args)
    out = Path(args.output) if args.output else None
    single_file = out is not None and len(files) == 1 and out.suffix != "" and not out.is_dir()
    failures = 0
    for f, sub in tqdm(jobs, disable=len(files) < 2, unit="file", desc="stylizing"):
        suffix = ".mp4" if is_video(f) else ".png"
        target = out if single_file else (out or Path(".")) / sub / f"{f.stem}-{stylizer.name}{suffix}"
        try:
            if is_video(f):
                _stylize_video(f, target, stylizer, args)
            else:
                save_image(stylizer(f, strength=args.strength, preserve_color=args.preserve_color,
                                    max_size=args.max_size), target)
        except FastNSTError as e:
            tqdm.write(f"fastnst: error: {e}", file=sys.stderr)
            failures += 1
            continue
        if len(files) == 1:
            print(target)
    if failures:
        if len(files) > 1:  # one file: its error line says it all
            print(f"fastnst: {failures} of {len(files)} files failed", file=sys.stderr)
        return 1
    if len(files) > 1:
        print(f"wrote {len(files)} files to {out or Path('.')}")
    return 0


def _stylize_video(src: Path, target: Path, stylizer, args: argparse.Namespace) -> None:  # noqa: ANN001
    """One clip, with a progress bar in frames (frames/s and the time left)."""
    from tqdm import tqdm

    from .video import probe, stylize_video

    if getattr(args, "backend", "torch") != "torch":
        raise FastNSTError(f"{src}: video needs --backend torch.")
    with tqdm(total=probe(src).frames, unit="frame", desc=src.name, leave=False) as bar:
        stylize_video(src, target, stylizer, max_size=args.max_size, strength=args.strength,
                      preserve_color=args.preserve_color, stabilize=args.stabilize,
                      keyframe_interval=args.keyframe_interval, on_frames=bar.update)


def make_stylizer(args: argparse.Namespace):
    """A Stylizer for --style/--device/--precision/--backend/--revision/--compile/--threads."""
    from .stylizer import Stylizer

    if getattr(args, "backend", "torch") == "onnx":
        try:
            from .onnx_backend import OnnxStylizer
        except ModuleNotFoundError as e:
            if e.name not in ("fastnst.onnx_backend", "onnxruntime", "onnx"):
                raise
            raise FastNSTError(f"the onnx backend is not available ({e}); "
                               "install fastnst[onnx] or use --backend torch.") from None

        if getattr(args, "compile", False):
            raise ValueError("--compile is for --backend torch.")
        return OnnxStylizer.from_pretrained(args.style, revision=args.revision, device=args.device,
                                            precision=args.precision, threads=getattr(args, "threads", None))
    return Stylizer.from_pretrained(args.style, device=args.device, precision=args.precision, revision=args.revision,
                                    compile=getattr(args, "compile", False), threads=getattr(args, "threads", None))


# --- train ---------------------------------------------------------------------------------------

TRAIN_DESCRIPTION = ("Train a style network on a stream of photos (Hub dataset, image folder or Parquet). "
                     "Writes a style folder (config.json, model.safetensors, model card, style.jpg, example.jpg), "
                     "checkpoints to resume from, sample images and TensorBoard logs.")
TRAIN_EPILOG = """examples:
  fastnst train --preset paper --style-image starry.jpg -o styles/starry   # GPU, COCO streamed from the Hub
  fastnst train --preset cpu-joint --loss-network vgg16-hed --style-image starry.jpg --data photos/ -o styles/starry
  torchrun --nproc_per_node=8 train_scripts/train.py --preset paper --style-image starry.jpg -o styles/starry"""


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a style from a painting", description=TRAIN_DESCRIPTION,
                       epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    settings.add_arguments(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from .train import train

    command = getattr(args, "command_line", None) or "fastnst " + shlex.join(sys.argv[1:])
    print(train(settings.config_from_args(args, launcher(command))))
    return 0


def launcher(command: str) -> str:
    """``command`` as it was launched: under torchrun, with torchrun's process count in front (the batch of a
    step is --batch-size times that), so a model card's command reproduces the run."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world == 1:
        return command
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    nodes = f"--nnodes={world // local} " if world != local else ""
    script = command.removeprefix("python ") if command.startswith("python ") else "-m fastnst.cli " + command.removeprefix("fastnst ")
    return f"torchrun {nodes}--nproc_per_node={local} {script}"


# --- share on the Hub ----------------------------------------------------------------------------

def _add_hub_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("push", help="upload a style folder to a Hugging Face Hub model repo",
                              description="Validate a style folder and upload it to a Hub model repo in one commit. "
                                          "Uses the token of `hf auth login` or HF_TOKEN.")
    p.add_argument("folder", metavar="STYLE_DIR", help="style folder (config.json, model.safetensors, ...)")
    p.add_argument("--repo-id", required=True, help="target repo, owner/name (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.set_defaults(func=cmd_push)

    p = subparsers.add_parser("pull", help="download a style from the Hub into the local cache",
                              description="Download a style repo into the Hugging Face cache (verified), so it "
                                          "works offline afterwards. Prints the local folder.")
    p.add_argument("repo_id", metavar="ID", help="Hub repo id, owner/name")
    p.add_argument("--revision", default=None, help="branch, tag or commit (default: main)")
    p.add_argument("--max-mb", type=float, default=None, metavar="MB",
                   help="largest file and whole style allowed, in MB (default: weights 64, images 20, all 128; "
                        "FASTNST_PULL_MAX_*_MB); checked against the Hub's listing before downloading")
    p.set_defaults(func=cmd_pull)

    p = subparsers.add_parser("list", help="list local, cached and Hub styles",
                              description="List styles: local sources (--styles or FASTNST_STYLE_SOURCES, default "
                                          "'embedded'), styles in the Hugging Face cache, and fastnst styles on "
                                          "the Hub (by the 'fastnst' tag).")
    p.add_argument("--author", default=None, help="only styles of this Hub user or organisation")
    p.add_argument("--search", default=None, help="only styles whose name or repo id contains this text")
    p.add_argument("--styles", default=None, metavar="SOURCES",
                   help="comma-separated sources: embedded, folders, owner/name, hub:owner/name, author:NAME, cache")
    p.add_argument("--no-hub", action="store_true", help="do not ask the Hub (local and cached styles only)")
    p.set_defaults(func=cmd_list)


def cmd_push(args: argparse.Namespace) -> int:
    from .hub import push_style

    print(push_style(args.folder, args.repo_id, private=args.private))
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from .hub import PullLimits, pull_style

    limits = PullLimits.at_most(args.max_mb) if args.max_mb else None
    print(pull_style(args.repo_id, revision=args.revision, limits=limits))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .hub import list_hub_styles
    from .registry import available_styles, parse_sources

    sources = parse_sources(args.styles)
    styles, warnings = available_styles(sources + ([] if "cache" in sources else ["cache"]), hub=not args.no_hub)
    if not args.no_hub:
        try:
            styles += list_hub_styles(author=args.author, search=args.search)
        except FastNSTError as e:
            warnings.append(f"{e} Showing local and cached styles only.")
    rows, seen = [], set()
    for s in styles:  # local sources, then the cache, then the Hub: a cached Hub style shows as "cache"
        if s.ref in seen:
            continue
        seen.add(s.ref)
        if args.author and not s.ref.startswith(args.author + "/"):
            continue
        if args.search and args.search.lower() not in f"{s.name} {s.ref} {s.title}".lower():
            continue
        rows.append((s.name, s.ref, s.source, human_size(s.size_bytes)))
    for w in warnings:
        print(f"fastnst: warning: {w}", file=sys.stderr)
    if not rows:
        print("no styles found")
        return 0
    widths = [max(len(r[i]) for r in rows + [("NAME", "REPO ID / PATH", "SOURCE", "SIZE")]) for i in range(4)]
    for row in [("NAME", "REPO ID / PATH", "SOURCE", "SIZE")] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


# --- export --------------------------------------------------------------------------------------

def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a style network (ONNX) for other runtimes",
                       description="Export a style's network as one self-contained file. ONNX: float32, opset "
                                   f"{settings.ONNX_OPSET}, dynamic batch/height/width; the input must be padded on the bottom/right "
                                   "to multiples of 4 (at least 16 px), the output is cropped back (fastnst's "
                                   "OnnxStylizer and `fastnst stylize --backend onnx` do both).",
                       epilog="examples:\n  fastnst export starry_night --format onnx -o starry_night.onnx\n"
                              "  fastnst stylize photo.jpg --style starry_night.onnx --backend onnx -o out.png",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("style", help="embedded style name, local style folder, or Hub repo id")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format (default onnx)")
    p.add_argument("-o", "--output", default=None, help="output file (default: STYLE_NAME.onnx)")
    p.add_argument("--opset", type=int, default=settings.ONNX_OPSET, help=f"ONNX opset (default {settings.ONNX_OPSET})")
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) of the style")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from .model import TransformerNet
    from .onnx_backend import export_onnx
    from .styles import resolve_style

    model = TransformerNet.from_pretrained(resolve_style(args.style), revision=args.revision)
    name = str(model.style.get("name") or Path(str(args.style).rstrip("/")).name)
    out = Path(args.output or f"{name}.onnx")
    if out.suffix.lower() != ".onnx":
        raise FastNSTError(f"{out}: an ONNX export needs a .onnx file name.")
    print(export_onnx(model, out, opset=args.opset))
    return 0


# --- evaluate ------------------------------------------------------------------------------------

def _int_list(s: str) -> list[int]:
    try:
        values = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, not {s!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, not {s!r}")
    return values


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="compare style networks' loss with Gatys et al.'s optimisation",
        description="Quality evaluation after Johnson et al. (2016), Fig. 5: on held-out photos, the training loss "
                    "of the feed-forward output against L-BFGS optimisation of the pixels (Gatys et al.) after "
                    "10..100 iterations; the matched iteration count (median over the photos), the wall-time ratio "
                    "and side-by-side pictures.",
        epilog="examples:\n"
               "  fastnst eval starry_night --photos demo/examples --out eval/starry_night\n"
               "  fastnst eval all --photos held-out/ --out docs/eval --table docs/eval/README-table.md --resume",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("styles", metavar="STYLE", nargs="+",
                   help="embedded style name, style folder or Hub repo id; 'all': every embedded style")
    p.add_argument("--photos", nargs="+", default=None,
                   help="held-out photos: files, folders, or .txt lists of paths (default: the public-domain "
                        "photos shipped in fastnst/assets)")
    p.add_argument("--sizes", type=_int_list, default=list(settings.EVAL_SIZES), help="square sizes in px (default 256)")
    p.add_argument("--iterations", type=_int_list, default=list(settings.GATYS_ITERATIONS),
                   help="Gatys L-BFGS iteration checkpoints (default 10,20,30,50,100)")
    p.add_argument("--init", choices=settings.GATYS_INITS, default="content",
                   help="where Gatys starts: the content photo (default, the harder bar) or white noise "
                        "(Johnson et al.'s baseline)")
    p.add_argument("--max-photos", type=int, default=None, help="use only the first N photos")
    p.add_argument("--out", default=None, help="output folder (default eval/STYLE_NAME; with several styles or "
                                               "--table, one sub-folder per style)")
    p.add_argument("--table", default=None, help="also write one markdown table of all the styles to this file")
    p.add_argument("--into-card", action="store_true",
                   help="write the result into each (local) style folder: config.json's training.evaluation, "
                        "evaluation.jpg (the side-by-side picture) and a regenerated model card")
    p.add_argument("--style-image", default=None,
                   help="the style image to measure against, or a JSON list of styles ({\"name\", \"image\"}, as train "
                        "--styles reads) giving each style's (default: the image the training read, else style.jpg)")
    p.add_argument("--content-weight", type=float, default=None,
                   help="measure against this content weight instead of the training's (a style trained with a "
                        "raised one, to keep photos recognisable, measured on its painting's shared objective)")
    p.add_argument("--tv-weight", type=float, default=None,
                   help="measure against this total-variation weight instead of the training's (a style trained "
                        "with a lowered one measured on its painting's shared objective and Gatys runs)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps, auto (default cpu)")
    p.add_argument("--loss-network-path", default=None, help="weights file of the loss network (as in training)")
    p.add_argument("--line-search", action="store_true", help="L-BFGS with strong-Wolfe line search (default: none)")
    p.add_argument("--resume", action="store_true",
                   help="reuse the Gatys runs of earlier runs in --out (same style image, settings and start): only "
                        "the network is measured again; also continues an interrupted run or adds photos/sizes")
    p.set_defaults(func=cmd_eval)



def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_style, format_table, photo_files, record_in_style, resolve_style_dir, styles_table
    from .styles import embedded_styles

    specs = list(embedded_styles()) if args.styles == ["all"] else args.styles
    results = []
    for spec in specs:
        style_dir = resolve_style_dir(spec)
        if args.out:
            out = Path(args.out) / style_dir.name if len(specs) > 1 or args.table else Path(args.out)
        else:
            out = Path("eval") / style_dir.name
        result = evaluate_style(style_dir, photo_files(args.photos), args.sizes, args.iterations,
                                style_image=args.style_image, max_photos=args.max_photos, device=args.device, out=out,
                                loss_network_path=args.loss_network_path, line_search=args.line_search,
                                resume=args.resume, init=args.init, content_weight=args.content_weight,
                                tv_weight=args.tv_weight)
        print(f"{result['style']}: style image {result['style_image']} ({result['style_image_source']})")
        print(format_table(result))
        print(f"wrote {out / 'eval.json'}, {out / 'summary.md'}, " + ", ".join(result.get("pictures", [])))
        if args.into_card:
            print(f"updated {record_in_style(style_dir, result)}")
        results.append(result)
    if args.table:
        table = "\n\n".join(styles_table(results, size) for size in args.sizes)
        Path(args.table).parent.mkdir(parents=True, exist_ok=True)
        Path(args.table).write_text(table)
        print(table)
        print(f"wrote {args.table}")
    return 0


# --- running -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Run a parsed subcommand, turning fastnst's errors into one line on stderr and an exit code."""
    try:
        return int(args.func(args) or 0)
    except FastNSTError as e:
        print(f"fastnst: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastnst: interrupted", file=sys.stderr)
        return 130
    except ValueError as e:  # bad option values found past argparse (e.g. precision on a device)
        print(f"fastnst: error: {e}", file=sys.stderr)
        return 2


def train_script_main(argv: list[str] | None = None) -> int:
    """``python train_scripts/train.py``: ``fastnst train`` as a script (also under torchrun)."""
    argv = sys.argv[1:] if argv is None else argv
    parser = _Parser(prog="train.py", description=TRAIN_DESCRIPTION, epilog=TRAIN_EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    settings.add_arguments(parser)
    args = parser.parse_args(argv)
    args.func, args.command_line = cmd_train, "python train_scripts/train.py " + shlex.join(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
