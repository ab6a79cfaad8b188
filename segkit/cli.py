"""Command line: ``segkit remove|download|models|warm-up`` (or ``python -m segkit ...``).

``remove`` takes files and folders, writes PNG cutouts, shows a progress bar and
keeps going past bad files: each gets a one-line reason and the exit code is 1.
Its option flags come from ``segkit.options``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from . import options as declared_options, settings
from . import warmup
from .batch import preload, process
from .errors import InvalidInputError, SegkitError
from .io.decode import names_a_file
from .io.encode import distinct_outputs, found_kind, output_name, overwrites_input, save_png
from .models import catalog
from .models.lookup import get_model
from .models.weights import is_cached, licence_notice, model_path
from .options import Options
from .scale import ray_job
from .video.formats import DEFAULT_FORMAT, FORMATS as VIDEO_FORMATS, MEDIA_SUFFIXES, VIDEO_SUFFIXES


def collect_inputs(paths: list[str], video_format: str = DEFAULT_FORMAT,
                   output: Path | None = None) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(input file, output path relative to -o) pairs, and the given folders' files that are
    neither photo nor video. Folders keep their structure, photos become .png and videos
    ``video_format``, and no two inputs write one file; hidden files and what lies under
    ``output`` are left out (``io.encode.found_kind``)."""
    found, others = [], []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            found.append((path, None))
            continue
        inside = _inside(output, path)
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            kind = found_kind(file.as_posix(), path.as_posix(), MEDIA_SUFFIXES, inside)
            if kind == "input":
                found.append((file, path.as_posix()))
            elif kind == "other":
                others.append(file)
    named = [(file.as_posix(), output_name(file.as_posix(), folder, _output_suffix(file, video_format)))
             for file, folder in found]
    return [(Path(file), Path(name)) for file, name in distinct_outputs(named)], others


def output_file(inputs: list[str], output: Path, video_format: str | None) -> Path | None:
    """``-o`` as the output file itself, where one photo or video is given and ``-o`` ends as its
    output does (``remove photo.jpg -o cutout.png``, ``remove clip.mp4 -o clip.mov``) and is no
    folder; None where ``-o`` is the output folder. Another media suffix is a mistake, said before any
    work (a JPEG holds no transparency)."""
    source, suffix = Path(inputs[0]), output.suffix.lower()
    if len(inputs) != 1 or source.is_dir() or output.is_dir() or suffix not in MEDIA_SUFFIXES | {".zip"}:
        return None
    video = source.suffix.lower() in VIDEO_SUFFIXES
    wanted = [f".{f}" for f in VIDEO_FORMATS] if video else [".png"]
    if suffix not in wanted:
        raise InvalidInputError(f"{output}: a {'video' if video else 'photo'}'s cutout is written as "
                                f"{', '.join(wanted)}; name the output so, or give a folder", subject=str(output))
    if video_format and suffix != f".{video_format}":
        raise InvalidInputError(f"{output}: ends in {suffix} but --format is {video_format}; give one or the other",
                                subject=str(output))
    return output


def _error_line(source: Path, error) -> str:
    """One line for a file that failed: its path, then the reason (errors start with the file's name)."""
    return f"error: {source}: {str(error).removeprefix(f'{source.name}: ')}"


def _inside(output: Path | None, folder: Path) -> str | None:
    """``output`` in the form of the paths found under ``folder``, where it lies under it."""
    try:
        return (folder / output.resolve().relative_to(folder.resolve())).as_posix() if output else None
    except ValueError:  # elsewhere: nothing found in the folder is under it
        return None


def _output_suffix(file: Path, video_format: str) -> str:
    return f".{video_format}" if file.suffix.lower() in VIDEO_SUFFIXES else ".png"


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per declared option: booleans switch on, numbers and choices take a value."""
    for f, control in declared_options.declared():
        flags = [control.flag or "--" + f.name.replace("_", "-")] + ([control.short] if control.short else [])
        if declared_options.kind(f) == "bool":
            parser.add_argument(*flags, dest=f.name, action="store_true", help=control.help)
        else:
            metavar = "MODEL" if control.choices else None
            parser.add_argument(*flags, dest=f.name, default=f.default, metavar=metavar,
                                help=control.help + (f" (default: {f.default})" if f.default is not None else ""))


def options_from(args: argparse.Namespace) -> dict:
    """The declared options' values from parsed flags; numbers stay text until ``Options`` checks them."""
    values = {name: getattr(args, name) for name in declared_options.names()}
    text = values["background"] or ""
    if Path(text).is_file() or names_a_file(text):
        values["background"] = Path(text)  # a background image (one that isn't there is named as missing)
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
    if args.ray:
        from .scale.ray_job import main_from_args  # Ray loads only for --ray

        return main_from_args(args, values)
    out_dir = Path(args.output)
    video_format = args.format
    if single := output_file(args.inputs, out_dir, args.format):
        pairs, others, out_dir = [(Path(args.inputs[0]), Path(single.name))], [], single.parent
        video_format = single.suffix[1:].lower() if single.suffix.lower() != ".png" else None
    else:
        pairs, others = collect_inputs(args.inputs, args.format or DEFAULT_FORMAT, out_dir)
    if others:
        names = ", ".join(file.name for file in others[:3]) + ", ..." * (len(others) > 3)
        print(f"skipped {len(others)} file{'s' * (len(others) > 1)}, neither photo nor video: {names}",
              file=sys.stderr)
    if not pairs:
        print("error: no image or video files found in the given inputs", file=sys.stderr)
        return 2
    for source, relative in pairs:
        if (out_dir / relative).resolve() == source.resolve():
            raise overwrites_input(source, "choose another output " + ("file" if single else "folder"))
    todo = [(s, r) for s, r in pairs if not (args.skip_existing and (out_dir / r).exists())]  # whole, or absent
    if todo:
        _fetch(values["model"], args.quiet)
        preload(values["model"])
    failed = 0
    for source, relative in tqdm(todo, desc="cutting out", unit="file", disable=args.quiet or None):
        if source.suffix.lower() in VIDEO_SUFFIXES:  # one file, with a bar of its own in frames
            try:
                from .video.cli import segment_video_cli  # PyAV loads only for a video
            except ImportError as exc:
                failed += 1
                tqdm.write(f"error: {source}: videos need PyAV (pip install av), which did not load: {exc}",
                           file=sys.stderr)
                continue
            try:
                segment_video_cli(source, out_dir, relative, video_format, values, args.quiet,
                                  only_mask=args.only_mask, smooth=args.smooth)
            except (SegkitError, OSError) as exc:  # OSError: the output can't be written (a full disk...)
                failed += 1
                tqdm.write(_error_line(source, exc), file=sys.stderr)
            continue
        (result,) = process([source], **values)
        if result.error:
            failed += 1
            tqdm.write(_error_line(source, result.error), file=sys.stderr)
            continue
        target = out_dir / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            save_png(result.mask if args.only_mask else result.cutout, target)
        except OSError as exc:  # this file is lost, not the rest of the run
            failed += 1
            tqdm.write(f"error: {source}: could not write {target}: {exc.strerror or exc}", file=sys.stderr)
    done, there = len(todo) - failed, len(pairs) - len(todo)
    kind = "files" if any(source.suffix.lower() in VIDEO_SUFFIXES for source, _ in pairs) else "images"
    print(f"{done} of {len(pairs)} {kind} written to {args.output}" + (f", {there} already there" if there else "")
          + (f", {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


class _MegabyteBar:
    """A tqdm bar in MB for one model's downloads (the ``bytes`` hook of ``segkit.models.download``)."""

    def __init__(self, name: str):
        self.name, self.bar = name, None

    def __call__(self, fraction: float, text: str) -> None:
        if self.bar is not None:
            self.bar.set_description(text.split(":")[0])

    def bytes(self, done: int, total: int) -> None:
        if self.bar is None or self.bar.total != round(total / 1e6, 1):
            self.close()
            self.bar = tqdm(total=round(total / 1e6, 1), initial=round(done / 1e6, 1), unit="MB", desc=self.name,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} MB [{elapsed}<{remaining}]")
        self.bar.n = round(done / 1e6, 1)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _fetch(name: str, quiet: bool = False):
    """A model's file, downloaded with a bar in MB; a non-commercial licence is said before any byte."""
    spec = get_model(name)
    if not is_cached(spec):
        notice = licence_notice(spec)
        print(f"{spec.name}: downloading about {spec.download_mb:.0f} MB" + (f"; note: {notice}" if notice else ""),
              file=sys.stderr)
    bar = None if quiet else _MegabyteBar(spec.name)
    try:
        return model_path(spec, bar)
    finally:
        if bar:
            bar.close()


def _download(args: argparse.Namespace) -> int:
    status = 0
    for name in args.models or ["u2netp"]:
        try:
            print(f"{name}: {_fetch(name)}")
        except SegkitError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
    return status


def _models(_: argparse.Namespace) -> int:
    group = None
    for kind, name, state, licence, description in catalog.rows():
        if kind != group:
            group = kind
            print(f"\n{group}:")
        print(f"  {name:22} {state:18} {licence.split(' (')[0]:13} {description}")
    print("\nyour own ONNX file: -m u2net_custom:PATH (or dis_custom, ben_custom, birefnet_custom), PATH inside "
          "the model folder")
    return 0


def build_parser() -> argparse.ArgumentParser:
    command = "segkit" if Path(sys.argv[0]).name == "segkit" else "python -m segkit"  # as the user typed it
    parser = argparse.ArgumentParser(prog=command, description="Cut subjects out of images.")
    commands = parser.add_subparsers(dest="command", required=True)
    remove = commands.add_parser("remove", help="write PNG cutouts of images")
    remove.add_argument("inputs", nargs="+", help="image or video files, or folders of them")
    remove.add_argument("-o", "--output", required=True, help="output folder; for one photo or video, "
                        "the output file itself if named so (cutout.png, clip.webm/.mov/.mp4/.zip)")
    add_option_flags(remove)
    remove.add_argument("--only-mask", action="store_true", help="write the mask instead of the cutout")
    remove.add_argument("--format", choices=sorted(VIDEO_FORMATS), help="video output (default webm)")
    remove.add_argument("--smooth", action="store_true", help="steady video mattes across frames")
    remove.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    remove.add_argument("--skip-existing", action="store_true", help="leave outputs already written alone, to "
                        "go on after a stopped run (each output appears whole or not at all; --ray always does)")
    ray_job.add_flags(remove)
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
        settings.check_all()  # every SEGKIT_* variable, before any work
        return args.run(args)
    except SegkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
