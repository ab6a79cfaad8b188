"""Command line: ``python -m segkit remove|download|models``.

``remove`` takes files and folders, writes PNG cutouts, shows a progress bar and
keeps going past bad files: each gets a one-line reason and the exit code is 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from . import api, weights
from .encode import save_png
from .errors import SegkitError
from .registry import get_model, list_models
from .video import FORMATS as VIDEO_FORMATS, VIDEO_SUFFIXES, segment_video_cli  # video hook

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif"}


def collect_inputs(paths: list[str]) -> list[tuple[Path, Path]]:
    """(input file, output path relative to -o) pairs; folders keep their structure."""
    pairs = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES):
                pairs.append((file, file.relative_to(path).with_suffix(".png")))
        else:
            pairs.append((path, Path(path.name).with_suffix(".png")))
    return pairs


def _remove(args: argparse.Namespace) -> int:
    settings = dict(model=args.model, alpha_matting=args.alpha_matting,
                    alpha_matting_foreground_threshold=args.foreground_threshold,
                    alpha_matting_background_threshold=args.background_threshold,
                    alpha_matting_erode_size=args.erode_size, post_process_mask=args.post_process)
    api.Settings(**settings)  # bad parameters stop here, before any work
    pairs = collect_inputs(args.inputs)
    if not pairs:
        print("error: no image files found in the given inputs", file=sys.stderr)
        return 2
    out_dir = Path(args.output)
    api.preload(args.model)
    failed = 0
    for source, relative in tqdm(pairs, desc="cutting out", unit="file", disable=args.quiet or None):
        if source.suffix.lower() in VIDEO_SUFFIXES:  # video hook: one file, a bar in frames
            try:
                segment_video_cli(source, out_dir, relative, args.format, settings, args.quiet,
                                  only_mask=args.only_mask, smooth=args.smooth)
            except SegkitError as exc:
                failed += 1
                tqdm.write(f"error: {source}: {exc}", file=sys.stderr)
            continue
        result = api.process([source], **settings)[0]
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
    names = args.models or ["u2netp"]
    status = 0
    for name in names:
        try:
            path = api.model_path(get_model(name))
            print(f"{name}: {path}")
        except SegkitError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
    return status


def _models(_: argparse.Namespace) -> int:
    for name in list_models():
        try:
            spec = get_model(name)
        except SegkitError as exc:
            print(f"{name:18} {'n/a':8} {exc}")
            continue
        state = "cached" if weights.is_cached(spec) else f"{spec.weights.size_mb:.0f} MB"
        print(f"{name:18} {state:8} {spec.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m segkit", description="Cut subjects out of images.")
    commands = parser.add_subparsers(dest="command", required=True)
    remove = commands.add_parser("remove", help="write RGBA PNG cutouts of images")
    remove.add_argument("inputs", nargs="+", help="image files or folders")
    remove.add_argument("-o", "--output", required=True, help="output folder")
    remove.add_argument("-m", "--model", default="u2netp", help="model name (see `models`)")
    remove.add_argument("-a", "--alpha-matting", action="store_true", help="refine edges with alpha matting")
    remove.add_argument("--foreground-threshold", type=int, default=240)
    remove.add_argument("--background-threshold", type=int, default=20)
    remove.add_argument("--erode-size", type=int, default=10)
    remove.add_argument("-p", "--post-process", action="store_true", help="smooth the mask's boundary")
    remove.add_argument("--only-mask", action="store_true", help="write the mask instead of the cutout")
    remove.add_argument("--format", choices=sorted(VIDEO_FORMATS), help="video output (default webm)")  # video hook
    remove.add_argument("--smooth", action="store_true", help="steady video mattes across frames")  # video hook
    remove.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    remove.set_defaults(run=_remove)
    download = commands.add_parser("download", help="fetch model weights into the cache")
    download.add_argument("models", nargs="*", help="model names (default: u2netp)")
    download.set_defaults(run=_download)
    commands.add_parser("models", help="list models and whether they are cached").set_defaults(run=_models)
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
