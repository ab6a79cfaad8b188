"""Serving a batch to a remote user: run it, write PNG files and a zip into a
per-request folder, and collect per-file warnings. The web app binds its controls
to these functions; nothing here knows about Gradio."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Unpack
from urllib.parse import urlsplit

from PIL import Image

from . import settings
from .batch import ProgressFn, process
from .errors import InvalidInputError, ModelNotAvailableError, SegkitError
from .io.encode import save_for_browser, save_png, unique_names, write_zip
from .io.url import fetch_url
from .models import catalog
from .options import OptionValues

log = logging.getLogger("segkit")
# The app's limits, read when used (``segkit.settings``): service.MAX_BATCH and so on.
LIMITS = {"MAX_BATCH": "SEGKIT_MAX_BATCH",  # photos per request
          "MAX_FILE_MB": "SEGKIT_MAX_FILE_MB",  # per photo; a bigger one is a warning, not a lost batch
          "OUTPUT_TTL": "SEGKIT_OUTPUT_TTL",  # seconds a request's files are kept at most
          "OUTPUT_MAX_MB": "SEGKIT_OUTPUT_MAX_MB"}  # all requests' files together, oldest go first


def __getattr__(name: str):
    if name in LIMITS:  # not read at import: a wrong one is named where it is used, not as segkit loads
        return settings.read(LIMITS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# A results gallery shows cutouts about 150 pixels high: 480 is sharp on a 2x screen, even for a wide photo,
# and a browser fetches a few hundred KB per photo instead of the full cutout's megabytes.
PREVIEW_SIDE = 480


@dataclass
class ServedImage:
    """One finished image: files on disk and the caption a person sees."""

    label: str
    original: str
    cutout: str
    mask: str
    preview: str  # the cutout at most PREVIEW_SIDE pixels long (the cutout itself when it is that small)
    caption: str
    class_masks: list[tuple[str, str]] = field(default_factory=list)  # (file, label), multi-class models


@dataclass
class ServedBatch:
    images: list[ServedImage]
    warnings: list[str]
    zip_path: Optional[str]


def public_message(exc: BaseException) -> str:
    """The error's text for a remote user: server folders are replaced by their role."""
    from .models.weights import cache_dir

    text = str(exc)
    for folder, role in ((str(cache_dir()), "the model cache"), (os.path.expanduser("~"), "~")):
        text = text.replace(folder, role)
    return text


def output_root(root: str | os.PathLike | None = None) -> Path:
    # not ".../segkit": run in the temp folder, ``import segkit`` would take a package-less folder of that
    # name for segkit, ahead of the editable install's finder (make setup's)
    return Path(root or os.getenv("SEGKIT_OUTPUT_DIR") or Path(tempfile.gettempdir()) / "segkit-results")


def prune_outputs(base: Path, max_age: float | None = None, max_bytes: int | None = None) -> None:
    """Remove request folders older than ``max_age`` seconds, then the oldest until the
    rest fit in ``max_bytes`` (by default ``SEGKIT_OUTPUT_TTL`` and ``SEGKIT_OUTPUT_MAX_MB``):
    a busy server's disk stays bounded either way."""
    max_age = max_age or settings.read("SEGKIT_OUTPUT_TTL")
    max_bytes = max_bytes or settings.read("SEGKIT_OUTPUT_MAX_MB") << 20
    folders = []
    for folder in os.scandir(base) if base.is_dir() else ():
        try:
            if folder.is_dir():
                folders.append((*_mtime_and_bytes(folder), folder.path))
        except OSError:
            continue  # removed by another request meanwhile
    for gone in _summed.keys() - {path for _, _, path in folders}:  # by another process, say
        _summed.pop(gone, None)
    folders.sort()
    total = sum(size for _, size, _ in folders)
    for mtime, size, folder in folders:
        if mtime >= time.time() - max_age and total <= max_bytes:
            break
        shutil.rmtree(folder, ignore_errors=True)
        _summed.pop(folder, None)
        total -= size


# Request folders' sizes, summed once their last file came: every request prunes, and a full store
# holds a thousand folders or more (bench/prune_bench.py)
_summed: dict[str, tuple[float, int]] = {}
SETTLED = 10  # seconds after a folder's last new file: its files are written by then (videos: renamed)


def _mtime_and_bytes(folder: os.DirEntry) -> tuple[float, int]:
    mtime = folder.stat().st_mtime  # a new, removed or renamed file moves it
    if (known := _summed.get(folder.path)) and known[0] == mtime:
        return known
    summed = mtime, sum(entry.stat().st_size for entry in os.scandir(folder.path))
    if time.time() - mtime > SETTLED:
        _summed[folder.path] = summed
    return summed


def check_output_root(root: str | os.PathLike | None = None) -> None:
    """Before serving: the results folder can be written, else an error that names it."""
    base = output_root(root)
    try:
        base.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=base).close()
    except OSError as exc:
        raise SegkitError(f"the results folder {base} (SEGKIT_OUTPUT_DIR) can't be written: "
                          f"{exc.strerror or exc}", subject="SEGKIT_OUTPUT_DIR") from None


@contextmanager
def storing() -> Iterator[None]:
    """A full disk or a results folder that can't be written is the server's fault, not the
    visitor's: one message that says so, and the details in the server's log."""
    try:
        yield
    except OSError as exc:
        log.error("could not write results: %s", exc)  # the error names the file or folder
        raise SegkitError("the server could not store the results (its disk is full, or its results folder "
                          "can't be written). Try again later, or tell whoever runs this server") from None


def output_dir(root: str | os.PathLike | None = None) -> Path:
    """A fresh folder for one request's files; old ones are pruned on the way."""
    base = output_root(root)
    with storing():
        base.mkdir(parents=True, exist_ok=True)
        prune_outputs(base)
        folder = base / uuid.uuid4().hex
        folder.mkdir()
    return folder


def for_visitor(exc: ModelNotAvailableError) -> ModelNotAvailableError:
    """A web visitor cannot fetch files onto the server: a short message for them;
    the sources tried and the by-hand fix go to the server's log for its operator.
    The model is marked unavailable in the model list from then on."""
    log.warning("%s", public_message(exc))
    catalog.mark_unavailable(exc.model, exc.reason)
    return ModelNotAvailableError(
        exc.model, f"its weights can't be downloaded on this server ({exc.reason}). Choose a model marked "
        "cached (u2netp works offline), or ask whoever runs this server to install it")


def _process(inputs: Any, progress: ProgressFn, options: OptionValues):
    try:
        return process(inputs, progress=progress, **options)
    except ModelNotAvailableError as exc:
        raise for_visitor(exc) from exc


class NamedBytes(bytes):
    """Fetched bytes with the name of where they came from (for captions and messages)."""

    name: str = ""


def gather_inputs(files: list[str], urls: list[str]) -> tuple[list[Any], list[str]]:
    """Uploaded files and URLs -> (inputs, warnings): a file over ``MAX_FILE_MB`` or a URL
    that can't be fetched is a warning, and the rest of the batch still runs."""
    inputs: list[Any] = []
    warnings: list[str] = []
    for path in files:
        size_mb = os.path.getsize(path) / 1e6
        if size_mb > (limit := settings.read("SEGKIT_MAX_FILE_MB")):
            warnings.append(f"{Path(path).name}: {size_mb:.0f} MB is over the {limit:.0f} MB limit per photo")
        else:
            inputs.append(path)
    for url in urls:
        try:
            data = NamedBytes(fetch_url(url))
        except InvalidInputError as exc:
            warnings.append(str(exc))
            continue
        data.name = Path(urlsplit(url).path).name or urlsplit(url).hostname or "url"
        inputs.append(data)
    return inputs, warnings


def serve_batch(inputs: list[Any], *, progress: ProgressFn = None, root: str | os.PathLike | None = None,
                **options: Unpack[OptionValues]) -> ServedBatch:
    """Segment up to ``MAX_BATCH`` inputs; bad files become warnings, the rest are served."""
    if not inputs:
        raise InvalidInputError("no image given: add one or more photos first", subject="files")
    if len(inputs) > (most := settings.read("SEGKIT_MAX_BATCH")):
        raise InvalidInputError(f"{len(inputs)} images is more than the {most} allowed at once",
                                subject="files")
    results = _process(inputs, progress, options)
    folder = output_dir(root)
    served = []
    good = [r for r in results if r.ok]
    warnings = [public_message(r.error) for r in results if not r.ok]
    for result, stem in zip(good, unique_names([r.label for r in good])):
        if progress:
            progress(0.99, f"writing {stem}.png")
        served.append(_save(result, stem, folder))
    zip_path = None
    if served:
        zip_path = str(folder / "cutouts.zip")
        with storing():
            write_zip([Path(s.cutout) for s in served], zip_path)
    return ServedBatch(served, warnings, zip_path)


def _save(result, stem: str, folder: Path) -> ServedImage:
    """One finished image's files (original, cutout, its preview, mask, per-class masks) and its caption."""
    cutout, preview, mask = (str(folder / f"{stem}{suffix}.png") for suffix in ("", "-preview", "-mask"))
    class_masks = []
    with storing():
        original = save_for_browser(result.image, folder / f"{stem}-original")
        save_png(result.cutout, cutout)
        if max(result.cutout.size) > PREVIEW_SIDE:
            small = result.cutout.copy()
            small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0)
            save_png(small, preview)
        else:
            preview = cutout
        save_png(result.mask, mask)
        if len(result.masks) > 1:
            for label, class_mask in result.masks.items():
                path = str(folder / f"{stem}-{label.replace(' ', '_')}.png")
                save_png(class_mask, path)
                class_masks.append((path, label))
    caption = f"{stem}.png · {result.cutout.width}×{result.cutout.height}"
    return ServedImage(result.label, original, cutout, mask, preview, caption, class_masks)


def clicks_to_prompt(points: list, box: Optional[tuple] = None) -> Optional[list[dict]]:
    """The app's clicks as a prompt: ``points`` are (x, y, keep) in photo pixels, ``box`` (x0, y0, x1, y1)."""
    marks = [{"type": "point", "data": [x, y], "label": 1 if keep else 0} for x, y, keep in points or ()]
    if box:
        marks.append({"type": "rectangle", "data": list(box), "label": 1})
    return marks or None


def serve_prompted(image: Any, points: list, box: Optional[tuple] = None, *, model: str = "sam",
                   root: str | os.PathLike | None = None, **options: Unpack[OptionValues]) -> ServedImage:
    """One photo cut out by what was clicked on it: kept/removed points and an optional box.
    The photo's embedding is computed on the first click and reused for the next ones."""
    (result,) = _process([image], None, {**options, "model": model, "prompt": clicks_to_prompt(points, box)})
    if result.error:
        raise InvalidInputError(public_message(result.error), subject=result.error.subject)
    (stem,) = unique_names([result.label])
    return _save(result, stem, output_dir(root))


def serve_one(image: Any, *, root: str | os.PathLike | None = None, **options: Unpack[OptionValues]) -> str:
    """One image in, the path of its PNG cutout out; a bad image raises its error."""
    (result,) = _process([image], None, options)
    if result.error:
        raise InvalidInputError(public_message(result.error), subject=result.error.subject)
    (stem,) = unique_names([result.label])
    path = output_dir(root) / f"{stem}.png"
    with storing():
        save_png(result.cutout, path)
    return str(path)
