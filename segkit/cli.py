"""Command line: ``python -m segkit remove|download|models|warm-up``.

``remove`` takes files and folders, writes PNG cutouts, shows a progress bar and
keeps going past bad files: each gets a one-line reason and the exit code is 1.
Its option flags come from ``segkit.options``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from . import options as declared_options
from . import warmup
from .batch import preload, process
from .errors import SegkitError
from .io.encode import save_png
from .models import catalog
from .models.registry import get_model
from .models.weights import model_path
from .options import Options

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif"}


def collect_inputs(paths: list[str]) -> list[tuple[Path, Path]]:
    """(input file, output path relative to -o) pairs; folders keep their structure."""
    pairs = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
                pairs.append((file, file.relative_to(path).with_suffix(".png")))
        else:
            pairs.append((path, Path(path.name).with_suffix(".png")))
    return pairs


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per declared option: booleans switch on, numbers and choices take a value."""
    for f, control in declared_options.declared():
        flags = [control.flag or "--" + f.name.replace("_", "-")] + ([control.short] if control.short else [])
        if str(f.type) == "bool":
            parser.add_argument(*flags, dest=f.name, action="store_true", help=control.help)
        else:
            metavar = "MODEL" if control.choices else None
            parser.add_argument(*flags, dest=f.name, default=f.default, metavar=metavar,
                                help=f"{control.help} (default: {f.default})")


def options_from(args: argparse.Namespace) -> dict:
    """The declared options' values from parsed flags; numbers stay text until ``Options`` checks them."""
    values = {name: getattr(args, name) for name in declared_options.names()}
    if values["background"] and Path(values["background"]).is_file():
        values["background"] = Path(values["background"])  # a file here is a background image
    return values


def _number_or_text(value):
    """CLI values arrive as text: whole numbers become ints, the rest is left for ``Options`` to name."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return float(value)
        except (TypeError, ValueError):
            return value


def _remove(args: argparse.Namespace) -> int:
    values = {name: _number_or_text(value) if isinstance(value, str) and name != "model" and name != "background"
              else value for name, value in options_from(args).items()}
    Options.of(**values)  # bad options stop here, before any work
    pairs = collect_inputs(args.inputs)
    if not pairs:
        print("error: no image files found in the given inputs", file=sys.stderr)
        return 2
    out_dir = Path(args.output)
    preload(values["model"])
    failed = 0
    for source, relative in tqdm(pairs, desc="cutting out", unit="img", disable=args.quiet or None):
        (result,) = process([source], **values)
        if result.error:
            failed += 1
            tqdm.write(f"error: {source}: {result.error}", file=sys.stderr)
            continue
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        save_png(result.mask if args.only_mask else result.cutout, target)
    done = len(pairs) - failed
    print(f"{done} of {len(pairs)} images written to {out_dir}" + (f", {failed} failed" if failed else ""),
          file=sys.stderr)
    return 1 if failed else 0


def _download(args: argparse.Namespace) -> int:
    status = 0
    for name in args.models or ["u2netp"]:
        try:
            print(f"{name}: {model_path(get_model(name))}")
        except SegkitError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
    return status


def _models(_: argparse.Namespace) -> int:
    for name, state, description in catalog.rows():
        print(f"{name:18} {state:8} {description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m segkit", description="Cut subjects out of images.")
    commands = parser.add_subparsers(dest="command", required=True)
    remove = commands.add_parser("remove", help="write PNG cutouts of images")
    remove.add_argument("inputs", nargs="+", help="image files or folders")
    remove.add_argument("-o", "--output", required=True, help="output folder")
    add_option_flags(remove)
    remove.add_argument("--only-mask", action="store_true", help="write the mask instead of the cutout")
    remove.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    remove.set_defaults(run=_remove)
    download = commands.add_parser("download", help="fetch model weights into the cache")
    download.add_argument("models", nargs="*", help="model names (default: u2netp)")
    download.set_defaults(run=_download)
    commands.add_parser("models", help="list models and whether they are cached").set_defaults(run=_models)
    commands.add_parser("warm-up", help="compile the pixel kernels into numba's cache (make setup runs it)"
                        ).set_defaults(run=warmup.command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SegkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
