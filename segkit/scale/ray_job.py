"""Bulk cut-outs on Ray Data: ``python -m segkit remove IN -o OUT --ray`` or ``run()``.

Ray Data reads the files (local folders, or any filesystem pyarrow reaches: s3://, gs://),
a pool of actors each holding one segkit session cuts them out and writes the PNGs itself,
under the names the plain CLI gives them, so nothing but a status per file comes back to
the driver. A bad file is listed in ``errors.jsonl`` beside the outputs and the job goes
on; a rerun skips the files whose outputs are already there. Ray is imported only here,
only when a job runs: ``import segkit`` works without it.
"""

from __future__ import annotations

import argparse
import json
import logging
import numbers
import os
import posixpath
import sys
import time
from dataclasses import dataclass
from pathlib import PurePosixPath

from ..batch import preload, process
from ..errors import InvalidInputError
from ..io.encode import distinct_outputs, found_kind, output_name, overwrites_input, save_png
from ..options import Options
from ..video.formats import MEDIA_SUFFIXES, VIDEO_SUFFIXES

VIDEO_NOT_DONE = "a video: --ray cuts out photos only; run videos without --ray"
INSTALL_HINT = "--ray needs Ray: pip install -r requirements-ray.txt"
ERRORS_FILE = "errors.jsonl"
MASK_SUFFIX = ".mask.png"
BATCH_SIZE = 4  # small: a batch is a few decoded photos in an actor's memory, and ends sooner on a slow node


@dataclass
class Summary:
    written: int
    skipped: int  # outputs already there from an earlier run
    failed: list[tuple[str, str]]  # (input, reason)
    seconds: float
    errors_file: str | None  # None when nothing failed

    def describe(self, output: str) -> str:
        text = f"{self.written} written to {output}, {self.skipped} skipped (already there)"
        if self.failed:
            text += f", {len(self.failed)} failed (listed in {self.errors_file})"
        return f"{text} in {self.seconds:.1f} s"




def mask_name(name: str) -> str:
    return name[: -len(".png")] + MASK_SUFFIX


def open_location(location: str):
    """(pyarrow filesystem, path on it) for a local path or a URI such as s3://bucket/prefix."""
    from pyarrow import fs

    if "://" in location:
        return fs.FileSystem.from_uri(location)
    return fs.LocalFileSystem(), os.path.abspath(location)


def list_inputs(inputs: list[str], output: str | None = None):
    """(filesystem, [(path, output name)], [(input, reason)] for inputs that are not there or are
    videos). Folders yield what the CLI takes from them (``io.encode.found_kind``); videos are named
    as not done, since the Ray job cuts out photos only, rather than passed over in silence."""
    from pyarrow import fs

    filesystem, pairs, missing = None, [], []
    target_fs, root = open_location(output) if output else (None, None)
    for raw in inputs:
        this_fs, path = open_location(raw)
        if filesystem is not None and this_fs.type_name != filesystem.type_name:
            raise InvalidInputError("--ray reads all inputs from one filesystem; run once per filesystem")
        filesystem = this_fs
        info = filesystem.get_file_info(path)
        if info.type == fs.FileType.Directory:
            found = filesystem.get_file_info(fs.FileSelector(path, recursive=True))
            output_here = root if target_fs and target_fs.type_name == this_fs.type_name else None
            files = sorted(f.path for f in found
                           if f.is_file and found_kind(f.path, path, MEDIA_SUFFIXES, output_here) == "input")
            pairs += [(file, output_name(file, path)) for file in files]
        elif info.type == fs.FileType.NotFound:
            missing.append((raw, "no such file or folder"))
        else:
            pairs.append((path, output_name(path, None)))
    videos = [path for path, _ in pairs if PurePosixPath(path).suffix.lower() in VIDEO_SUFFIXES]
    missing += [(path, VIDEO_NOT_DONE) for path in videos]
    pairs = [pair for pair in pairs if pair[0] not in videos]
    return filesystem, distinct_outputs(pairs), missing


def existing_outputs(output: str) -> set[str]:
    from pyarrow import fs

    filesystem, root = open_location(output)
    found = filesystem.get_file_info(fs.FileSelector(root, recursive=True, allow_not_found=True))
    return {PurePosixPath(f.path).relative_to(root).as_posix() for f in found if f.is_file}


def targets(name: str, only_mask: bool, write_masks: bool) -> list[str]:
    return [name, mask_name(name)] if write_masks and not only_mask else [name]


def save(filesystem, path: str, image) -> None:
    """A local PNG appears whole or not at all, since a rerun trusts what it finds (object
    stores publish an upload only once it is complete)."""
    local = filesystem.type_name == "local"
    if local:
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    partial = path + ".part" if local else path
    with filesystem.open_output_stream(partial) as stream:
        save_png(image, stream)
    if local:
        filesystem.move(partial, path)


class CutoutWriter:
    """One Ray actor: one segkit session for the whole job, fed small batches of file bytes."""

    def __init__(self, names: dict[str, str], output: str, only_mask: bool, write_masks: bool, options: dict):
        self.names, self.only_mask, self.write_masks, self.options = names, only_mask, write_masks, options
        self.filesystem, self.root = open_location(output)
        preload(Options.of(**options).spec.name)

    def __call__(self, batch: dict) -> dict:
        paths = [str(p) for p in batch["path"]]
        results = process([bytes(data) for data in batch["bytes"]], **self.options)
        return {"path": paths, "reason": [self.write(self.names[p], r) for p, r in zip(paths, results)]}

    def write(self, name: str, result) -> str:
        """Writes one result's files; returns why it failed, or "" when written."""
        if not result.ok:
            return str(result.error).removeprefix(f"{result.label}: ")  # the label of bytes says nothing
        images = {name: result.mask if self.only_mask else result.cutout}
        if self.write_masks and not self.only_mask:
            images[mask_name(name)] = result.mask
        for relative, image in images.items():
            try:
                save(self.filesystem, f"{self.root}/{relative}", image)
            except OSError as exc:
                return f"could not write {relative}: {exc}"
        return ""


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401 - ray without the [data] extra lacks it
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return ray


def default_workers(ray, gpus_per_worker: float) -> int:
    """One actor per core, or as many as the cluster's GPUs hold at ``gpus_per_worker`` each."""
    resources = ray.cluster_resources()
    if gpus_per_worker:
        return max(1, int(resources.get("GPU", 0) / gpus_per_worker))
    return max(1, int(resources.get("CPU", 1)))


def cut_out_on_ray(ray, source_fs, pairs, output, *, address, workers, gpus_per_worker, progress,
                   **writer_args) -> list[tuple[str, str]]:
    """Runs the actors over ``pairs``; returns (input, reason) for each file that failed."""
    started_here = not ray.is_initialized()
    if started_here:  # a remote cluster gets this package with the job; its nodes need requirements-library.txt
        package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # segkit/
        ray.init(address=address, include_dashboard=False, logging_level=logging.INFO if progress else logging.WARNING,
                 runtime_env={"py_modules": [package]} if address else None)
    if not progress:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = progress
        workers = min(workers or default_workers(ray, gpus_per_worker), len(pairs))
        # Reading is I/O: it reserves no core, or actors holding every core would starve it.
        dataset = ray.data.read_binary_files([path for path, _ in pairs], include_paths=True,
                                             filesystem=source_fs, num_cpus=0)
        statuses = dataset.map_batches(
            CutoutWriter, batch_size=BATCH_SIZE, num_gpus=gpus_per_worker or None,
            compute=ray.data.ActorPoolStrategy(size=workers),
            fn_constructor_kwargs=dict(names=dict(pairs), output=output, **writer_args)).take_all()
    finally:
        if started_here:
            ray.shutdown()
    return [(row["path"], row["reason"]) for row in statuses if row["reason"]]


def write_errors(output: str, failed: list[tuple[str, str]]) -> str | None:
    """One JSON line per failed input; a stale list from an earlier run is removed."""
    filesystem, root = open_location(output)
    path = f"{root}/{ERRORS_FILE}"
    if not failed:
        if filesystem.get_file_info(path).is_file:
            filesystem.delete_file(path)
        return None
    filesystem.create_dir(root, recursive=True)
    with filesystem.open_output_stream(path) as stream:
        stream.write("".join(json.dumps({"input": i, "reason": r}) + "\n" for i, r in failed).encode())
    return path if "://" not in output else f"{output.rstrip('/')}/{ERRORS_FILE}"


def run(inputs: list[str], output: str, *, address: str | None = None, workers: int | None = None,
        gpus_per_worker: float = 0.0, only_mask: bool = False, write_masks: bool = False,
        progress: bool = True, **options) -> Summary:
    """Cut out every image under ``inputs`` into ``output`` on Ray; ``options`` go to
    ``segkit.process`` untouched. Starts a local Ray (or joins ``address``) unless one is
    already initialised in this process, and shuts down only one it started."""
    _check_sizes(workers, gpus_per_worker)
    ray = import_ray()
    started = time.perf_counter()
    Options.of(**options)  # a bad option fails here, not in every actor
    source_fs, pairs, failed = list_inputs(inputs, output)
    if not pairs and not failed:
        raise InvalidInputError("no image files found in the given inputs")
    target_fs, root = open_location(output)
    for path, name in pairs:
        if target_fs.type_name == source_fs.type_name and posixpath.join(root, name) == path:
            raise overwrites_input(path)
    there = existing_outputs(output)
    todo = [(p, n) for p, n in pairs if not all(t in there for t in targets(n, only_mask, write_masks))]
    ray_failed = []
    if todo:
        ray_failed = cut_out_on_ray(ray, source_fs, todo, output, address=address, workers=workers,
                                    gpus_per_worker=gpus_per_worker, progress=progress, only_mask=only_mask,
                                    write_masks=write_masks, options=options)
    scheme = inputs[0].split("://")[0] + "://" if "://" in inputs[0] else ""  # s3://bucket/key, not bucket/key
    failed += [(scheme + path, reason) for path, reason in ray_failed]
    return Summary(written=len(todo) - len(ray_failed), skipped=len(pairs) - len(todo), failed=failed,
                   seconds=time.perf_counter() - started, errors_file=write_errors(output, failed))


def _check_sizes(workers, gpus_per_worker) -> None:
    """Ray would refuse these only once it had started (seconds later), in its own words."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1):
        raise InvalidInputError(f"workers: must be a whole number of actors, 1 or more, got {workers!r}",
                                subject="workers")
    try:
        gpus = float(gpus_per_worker)
    except (TypeError, ValueError):
        gpus = float("nan")
    if isinstance(gpus_per_worker, bool) or not 0 <= gpus < float("inf") or (gpus > 1 and gpus != int(gpus)):
        raise InvalidInputError(f"gpus_per_worker: must be 0 (CPU), a share of one GPU such as 0.5, or a whole "
                                f"number of GPUs, got {gpus_per_worker!r}", subject="gpus_per_worker")


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("bulk jobs on Ray (pip install -r requirements-ray.txt)")
    group.add_argument("--ray", action="store_true", help="run on Ray; skips outputs already written")
    group.add_argument("--address", help="Ray cluster to join: auto, or ray://HEAD:10001 (default: a local Ray)")
    group.add_argument("--workers", type=int, help="actors, one segkit session each (default: one per core, "
                       "or per GPU share)")
    group.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per actor: 1, or 0.5 for two per GPU")
    group.add_argument("--write-masks", action="store_true", help="with --ray: also write NAME.mask.png")


def main_from_args(args: argparse.Namespace, options: dict) -> int:
    """The CLI's ``remove --ray``; ``options`` are the declared options' values."""
    try:
        import_ray()
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = run(args.inputs, args.output, address=args.address, workers=args.workers,
                  gpus_per_worker=args.gpus_per_worker, only_mask=args.only_mask,
                  write_masks=args.write_masks, progress=not args.quiet, **options)
    for name, reason in summary.failed:
        print(f"error: {name}: {reason}", file=sys.stderr)
    print(summary.describe(args.output), file=sys.stderr)
    return 1 if summary.failed else 0
