"""Serving a batch to a remote user: run it, compose backgrounds, write PNG files and
a zip into a per-request folder, and collect per-file warnings. The web app binds
its controls to these functions; nothing here knows about Gradio."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .api import ProgressFn, process
from .compose import Background, compose
from .encode import save_png, write_zip
from .errors import InvalidInputError, ModelNotAvailableError, public_message
from .inputs import decode
from .registry import get_model

log = logging.getLogger("segkit")
MAX_BATCH = int(os.getenv("SEGKIT_MAX_BATCH", 16))
OUTPUT_TTL = int(os.getenv("SEGKIT_OUTPUT_TTL", 3600))


@dataclass
class ServedImage:
    """One finished image: files on disk and the caption a person sees."""

    label: str
    original: str
    cutout: str
    mask: str
    caption: str
    class_masks: list[tuple[str, str]] = field(default_factory=list)  # (file, label), multi-class models


@dataclass
class ServedBatch:
    images: list[ServedImage]
    warnings: list[str]
    zip_path: Optional[str]


def output_dir(root: str | os.PathLike | None = None) -> Path:
    """A fresh folder for one request's files (under the system temp folder by default);
    folders older than ``OUTPUT_TTL`` seconds are removed on the way, so a server's disk stays bounded."""
    base = Path(root or os.getenv("SEGKIT_OUTPUT_DIR") or Path(tempfile.gettempdir()) / "segkit")
    base.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - OUTPUT_TTL
    for old in base.iterdir():
        try:
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    folder = base / uuid.uuid4().hex
    folder.mkdir()
    return folder


def _load_background(background: Background) -> Background:
    """An uploaded background arrives as a path: decode it like any input (same limits)."""
    if isinstance(background, (str, os.PathLike)) and os.path.isfile(background):
        return decode(background).image
    return background


def _for_visitor(exc: ModelNotAvailableError, model: str) -> ModelNotAvailableError:
    """A web visitor cannot fetch files onto the server: the message's first line (what is wrong) and
    what they can do; the sources tried and the by-hand fix go to the server's log for its operator."""
    log.warning("%s", public_message(exc))
    summary = public_message(exc).split("\n", 1)[0].removesuffix(" Tried:").rstrip(" .:") + "."
    source = get_model(model).weights.sources[0].describe()
    return ModelNotAvailableError(
        f"{summary} Its weights download from {source}. Choose a model marked cached (u2netp works offline), "
        f"or ask whoever runs this server to run `python -m segkit download {model}` (details are in the "
        "server's log).")


def _process(inputs: list[Any], model: str, *args, progress: ProgressFn = None):
    try:
        return process(inputs, model, *args, progress=progress)
    except ModelNotAvailableError as exc:
        raise _for_visitor(exc, model) from exc


def serve_batch(inputs: list[Any], model: str = "u2netp", alpha_matting: bool = False,
                alpha_matting_foreground_threshold: int = 240, alpha_matting_background_threshold: int = 20,
                alpha_matting_erode_size: int = 10, post_process_mask: bool = False,
                background: Background = None, progress: ProgressFn = None,
                root: str | os.PathLike | None = None) -> ServedBatch:
    """Segment up to ``MAX_BATCH`` inputs; bad files become warnings, the rest are served."""
    if not inputs:
        raise InvalidInputError("no image given: upload one or more photos first")
    if len(inputs) > MAX_BATCH:
        raise InvalidInputError(f"{len(inputs)} images is more than the {MAX_BATCH} allowed per batch")
    background = _load_background(background)
    results = _process(inputs, model, alpha_matting, alpha_matting_foreground_threshold,
                       alpha_matting_background_threshold, alpha_matting_erode_size, post_process_mask,
                       progress=progress)
    folder = output_dir(root)
    served, warnings, named = [], [], []
    for index, result in enumerate(results):
        if result.error:
            warnings.append(public_message(result.error))
            continue
        stem = f"{index:02d}-{Path(result.label).stem or 'image'}"
        original = result.image
        final = compose(result.cutout, original, background, matted=alpha_matting)
        paths = {kind: str(folder / f"{stem}-{kind}.png") for kind in ("original", "cutout", "mask")}
        save_png(original, paths["original"])
        save_png(final, paths["cutout"])
        save_png(result.mask, paths["mask"])
        class_masks = []
        if len(result.masks) > 1:
            for label, mask in result.masks.items():
                path = str(folder / f"{stem}-{label.replace(' ', '_')}.png")
                save_png(mask, path)
                class_masks.append((path, label))
        caption = f"{result.label} · {final.width}×{final.height} · {result.seconds:.2f} s"
        served.append(ServedImage(result.label, paths["original"], paths["cutout"], paths["mask"], caption,
                                  class_masks))
        named.append((result.label, final))
    zip_path = None
    if named:
        zip_path = str(folder / "cutouts.zip")
        write_zip(named, zip_path)
    return ServedBatch(served, warnings, zip_path)


def serve_one(image: Any, model: str = "u2netp", alpha_matting: bool = False,
              alpha_matting_foreground_threshold: int = 240, alpha_matting_background_threshold: int = 20,
              alpha_matting_erode_size: int = 10, post_process_mask: bool = False,
              root: str | os.PathLike | None = None) -> str:
    """One image in, the path of its RGBA PNG cutout out; a bad image raises its error."""
    (result,) = _process([image], model, alpha_matting, alpha_matting_foreground_threshold,
                         alpha_matting_background_threshold, alpha_matting_erode_size, post_process_mask)
    if result.error:
        raise InvalidInputError(public_message(result.error))
    path = output_dir(root) / f"{Path(result.label).stem or 'image'}.png"
    save_png(result.cutout, path)
    return str(path)
