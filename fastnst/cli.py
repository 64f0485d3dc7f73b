"""The ``fastnst`` command line: stylize, train, push/pull/list styles, export, evaluate.

Each subcommand lives in a ``cmd_*`` function; errors fastnst raises on purpose end the program
with one line on stderr and exit code 1 (2 for bad options), never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from .errors import FastNSTError

EPILOG = """examples:
  fastnst stylize photo.jpg --style starry_night -o out.png
  fastnst stylize photos/ --style user/my-style -o stylized/ --strength 0.8
  fastnst list
  fastnst export starry_night --format onnx -o starry_night.onnx
  fastnst train --style-image painting.jpg --data ../shared/data/photos --preset cpu-small -o styles/painting
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
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
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
    p.set_defaults(func=cmd_stylize)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


def cmd_stylize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .images import list_images
    from .stylizer import Stylizer, save_image

    # (file, its folder relative to the input folder it was found in): outputs mirror subfolders,
    # so photos/a/x.jpg and photos/b/x.jpg do not overwrite each other
    jobs = [(f, f.parent.relative_to(item) if Path(item).is_dir() else Path())
            for item in args.inputs for f in list_images([item])]
    if not jobs:
        raise FastNSTError(f"no images found in {', '.join(args.inputs)}.")
    files = [f for f, _ in jobs]
    stylizer = make_stylizer(args)
    out = Path(args.output) if args.output else None
    single_file = out is not None and len(files) == 1 and out.suffix != "" and not out.is_dir()
    failures = 0
    for f, sub in tqdm(jobs, disable=len(files) < 2, unit="img", desc="stylizing"):
        try:
            img = stylizer(f, strength=args.strength, preserve_color=args.preserve_color, max_size=args.max_size)
        except FastNSTError as e:
            tqdm.write(f"fastnst: error: {e}", file=sys.stderr)
            failures += 1
            continue
        target = out if single_file else (out or Path(".")) / sub / f"{f.stem}-{stylizer.name}.png"
        save_image(img, target)
        if len(files) == 1:
            print(target)
    if failures:
        if len(files) > 1:  # one file: its error line says it all
            print(f"fastnst: {failures} of {len(files)} images failed", file=sys.stderr)
        return 1
    if len(files) > 1:
        print(f"wrote {len(files)} images to {out or Path('.')}")
    return 0


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


#: Other modules add subcommands here: each entry is ``register(subparsers)``.
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def _load_extra_commands() -> None:
    import importlib

    for module in ("fastnst.train", "fastnst.hub", "fastnst.onnx_backend", "fastnst.evaluate"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:
                continue  # that part of fastnst is not installed/built yet
            raise
        register = getattr(mod, "register_cli", None)
        if register is not None and register not in _EXTRA_COMMANDS:
            _EXTRA_COMMANDS.append(register)


def main(argv: list[str] | None = None) -> int:
    _load_extra_commands()
    parser = build_parser()
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
