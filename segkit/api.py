"""The public entry points: ``segment()`` for callers who want cutouts, ``process()``
for callers (app, CLI) who want per-image results and errors without losing the
rest of a batch."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np
from PIL import Image

from . import matting, pipeline, weights
from .errors import InvalidInputError, SegkitError
from .inputs import decode, describe, is_tensor, split_tensor_batch
from .pixels import one_band, read_all
from .registry import ModelSpec, get_model
from .sessions import POOL, batch_threads

log = logging.getLogger("segkit")
ProgressFn = Optional[Callable[[float, str], None]]
MAX_ERODE = 100


@dataclass(frozen=True)
class Settings:
    """The seed node's parameters, validated once per call."""

    model: str = "u2netp"
    alpha_matting: bool = False
    alpha_matting_foreground_threshold: int = 240
    alpha_matting_background_threshold: int = 20
    alpha_matting_erode_size: int = 10
    post_process_mask: bool = False

    def __post_init__(self):
        get_model(self.model)  # unknown names fail before any image is touched
        for name in ("alpha_matting_foreground_threshold", "alpha_matting_background_threshold",
                     "alpha_matting_erode_size"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating))
                    or not np.isfinite(value) or value != int(value)):
                raise InvalidInputError(f"{name}: must be a whole number, got {value!r}")
            object.__setattr__(self, name, int(value))
        fg, bg = self.alpha_matting_foreground_threshold, self.alpha_matting_background_threshold
        for name, value in (("alpha_matting_foreground_threshold", fg), ("alpha_matting_background_threshold", bg)):
            if not 0 <= value <= 255:
                raise InvalidInputError(f"{name}: must be between 0 and 255, got {value}")
        if self.alpha_matting and bg > fg:
            raise InvalidInputError(
                f"alpha_matting_background_threshold ({bg}) is above alpha_matting_foreground_threshold ({fg}); "
                "the background threshold must be the lower one")
        if not 0 <= self.alpha_matting_erode_size <= MAX_ERODE:
            raise InvalidInputError(
                f"alpha_matting_erode_size: must be between 0 and {MAX_ERODE}, got {self.alpha_matting_erode_size}")

    @property
    def spec(self) -> ModelSpec:
        return get_model(self.model)


@dataclass
class Result:
    """One image's outcome. ``error`` is set (and the images are None) when it failed."""

    label: str
    cutout: Optional[Image.Image] = None
    image: Optional[Image.Image] = None  # the decoded input (RGB/RGBA, upright), for composing
    mask: Optional[Image.Image] = None
    masks: dict[str, Image.Image] = field(default_factory=dict)
    cutouts: dict[str, Image.Image] = field(default_factory=dict)
    seconds: float = 0.0
    error: Optional[SegkitError] = None

    @property
    def ok(self) -> bool:
        return self.error is None


def model_path(spec: ModelSpec, progress: ProgressFn = None) -> Path:
    """The ONNX file for a model, fetched (and converted, for checkpoints) if needed."""
    path = weights.fetch_weights(spec, progress)
    if spec.converter:
        path = weights.converted_onnx(spec, path, progress)
    return path


def session_for(spec: ModelSpec, progress: ProgressFn = None, threads: int | None = None):
    return POOL.get(spec, lambda s: model_path(s, progress), threads)


def preload(model: str = "u2netp", progress: ProgressFn = None) -> None:
    """Fetch the model and build its session now, so the first request is fast."""
    session_for(get_model(model), progress)
    pipeline.warm_up()


def _apply_settings(image: Image.Image, mask: np.ndarray, settings: Settings) -> tuple[np.ndarray, Image.Image]:
    """Post-process and/or matte one mask; returns the final alpha and the cutout."""
    if settings.post_process_mask:
        mask = pipeline.post_process(mask)
    if not settings.alpha_matting:
        return mask, pipeline.cutout(image, mask)
    rgba = matting.alpha_matting(
        read_all(image, rgb=True), mask, settings.alpha_matting_foreground_threshold,
        settings.alpha_matting_background_threshold, settings.alpha_matting_erode_size)
    return rgba[:, :, 3], Image.fromarray(rgba, mode="RGBA")


def prepare(item: Any, index: int, spec: ModelSpec):
    """Stage 1 (any thread): decode one input and build the model's input tensor."""
    decoded = decode(item, index)
    return decoded, pipeline.model_input(decoded.image, spec.preprocess)


def finish(image: Image.Image, label: str, output: np.ndarray, settings: Settings) -> Result:
    """Stage 3 (any thread): network output -> masks -> post-process / matting -> cutouts."""
    spec = settings.spec
    raw_masks = pipeline.masks_from_output(output, spec, image.size)
    result = Result(label, image=image)
    for name, raw in zip(spec.mask_labels, raw_masks):
        alpha, cut = _apply_settings(image, raw, settings)
        result.masks[name] = Image.fromarray(alpha, mode="L")
        result.cutouts[name] = cut
    if len(raw_masks) == 1:
        result.mask, result.cutout = result.masks[spec.mask_labels[0]], result.cutouts[spec.mask_labels[0]]
    else:
        alpha, result.cutout = _apply_settings(image, pipeline.union(raw_masks), settings)
        result.mask = Image.fromarray(alpha, mode="L")
    return result


def _infer(session, tensor: np.ndarray) -> np.ndarray:
    """Stage 2: the network itself (onnxruntime uses every core here)."""
    return session.run(None, {session.get_inputs()[0].name: tensor})[0]


def process(images: Iterable[Any] | Any, model: str = "u2netp", alpha_matting: bool = False,
            alpha_matting_foreground_threshold: int = 240, alpha_matting_background_threshold: int = 20,
            alpha_matting_erode_size: int = 10, post_process_mask: bool = False,
            progress: ProgressFn = None) -> list[Result]:
    """Segment a batch and return one ``Result`` per input, in order.

    A bad image yields a ``Result`` with ``error`` set; the others still finish.
    Bad parameters and unavailable models raise at once (they affect every image).
    On CPU a batch runs two images at once, each network on half the cores
    (``sessions.batch_threads``); elsewhere the network takes one image at a time
    while the next is decoded and the previous one composed.
    """
    settings = Settings(model, bool(alpha_matting), alpha_matting_foreground_threshold,
                        alpha_matting_background_threshold, alpha_matting_erode_size, bool(post_process_mask))
    items = list(images) if isinstance(images, (list, tuple)) else [images]
    threads = batch_threads() if len(items) > 1 else None
    session = session_for(settings.spec, progress, threads)
    results = (_run_side_by_side if threads else _run_pipelined)(items, settings, session, progress)
    if progress:
        progress(1.0, "done")
    return results


def _run_side_by_side(items: list, settings: Settings, session, progress: ProgressFn) -> list[Result]:
    """Two images at a time, each decoded, segmented and composed in its own thread."""
    def segment_one(index: int) -> Result:
        decoded, tensor = prepare(items[index], index, settings.spec)
        return finish(decoded.image, decoded.label, _infer(session, tensor), settings)

    def one(index: int) -> Result:
        start = time.perf_counter()
        with one_band():  # the other image's network keeps the other cores busy
            done = _InlineStages.submit(segment_one, index)
        return _collect((start, done), items, index)  # a failure becomes this image's error

    workers = ThreadPoolExecutor(2, "segkit-image")
    try:
        futures = [workers.submit(one, index) for index in range(len(items))]
        results = []
        for index, future in enumerate(futures):
            if progress:
                progress(index / len(items), f"image {index + 1} of {len(items)}")
            results.append(future.result())
        return results
    finally:
        workers.shutdown(cancel_futures=True)  # a caller that gave up does not wait for the rest


def _run_pipelined(items: list, settings: Settings, session, progress: ProgressFn) -> list[Result]:
    """The network on one image at a time in this thread, a bounded step ahead of
    decoding the next image and composing the previous one."""
    spec = settings.spec
    results: list[Result] = []
    pipelined = len(items) > 1
    with ThreadPoolExecutor(2, "segkit-stage") if pipelined else _InlineStages() as stages:
        prepared = [stages.submit(prepare, item, i, spec) for i, item in enumerate(items[:1])]
        finishing: list = []
        for index, item in enumerate(items):
            if progress:
                progress(index / max(len(items), 1), f"image {index + 1} of {len(items)}")
            if index + 1 < len(items):  # decode the next image while this one runs
                prepared.append(stages.submit(prepare, items[index + 1], index + 1, spec))
            start = time.perf_counter()
            try:
                decoded, tensor = prepared[index].result()
                prepared[index] = None  # let the tensor go
                output = _infer(session, tensor)
                finishing.append((start, stages.submit(finish, decoded.image, decoded.label, output, settings)))
            except Exception as exc:  # noqa: BLE001 - one image's failure must not lose the batch
                finishing.append((start, _as_segkit_error(exc, items, index)))
            if len(finishing) > 1:  # keep at most one image composing behind the network
                results.append(_collect(finishing.pop(0), items, len(results)))
        results.extend(_collect(entry, items, len(results) + i) for i, entry in enumerate(finishing))
    return results


class _InlineStages:
    """An executor that runs work at once in the caller's thread: one image needs no pipeline."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    @staticmethod
    def submit(fn, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - delivered through the future like a thread's
            future.set_exception(exc)
        return future


def _as_segkit_error(exc: Exception, items: list, index: int) -> SegkitError:
    """Our own errors pass through; anything else is logged and reported for this image."""
    if isinstance(exc, SegkitError):
        return exc
    log.error("image %d failed unexpectedly", index + 1, exc_info=exc)
    return SegkitError(f"{describe(items[index], index)}: processing failed ({type(exc).__name__}: {exc})"[:300])


def _collect(entry, items: list, index: int) -> Result:
    start, outcome = entry
    try:
        if isinstance(outcome, SegkitError):
            raise outcome
        result = outcome.result()
    except Exception as exc:  # noqa: BLE001 - reported on this image only
        return Result(describe(items[index], index), error=_as_segkit_error(exc, items, index))
    result.seconds = time.perf_counter() - start
    return result


def segment(images: Any, model: str = "u2netp", alpha_matting: bool = False,
            alpha_matting_foreground_threshold: int = 240, alpha_matting_background_threshold: int = 20,
            alpha_matting_erode_size: int = 10, post_process_mask: bool = False, *,
            only_mask: bool = False, separate_masks: bool = False, progress: ProgressFn = None):
    """Cut the subject out of each image; returns RGBA cutouts at each input's size.

    ``images``: one image or a list (PIL, numpy, bytes, path), or a ComfyUI IMAGE
    tensor [B,H,W,C] in 0..1, which gives back a [B,H,W,4] tensor ([B,H,W] masks
    with ``only_mask``). ``separate_masks`` returns, per image, a dict of
    label -> cutout (three garments for u2net_cloth_seg). The first bad input
    raises ``InvalidInputError``; use ``process()`` to keep the rest of a batch.
    """
    tensor_in = is_tensor(images)
    items = split_tensor_batch(images) if tensor_in else images
    results = process(items, model, alpha_matting, alpha_matting_foreground_threshold,
                      alpha_matting_background_threshold, alpha_matting_erode_size, post_process_mask, progress)
    for result in results:
        if result.error:
            raise result.error
    if separate_masks:
        outputs = [r.masks if only_mask else r.cutouts for r in results]
    else:
        outputs = [r.mask if only_mask else r.cutout for r in results]
    if tensor_in:
        return _to_tensor(outputs, like=images)
    return outputs if isinstance(images, (list, tuple)) else outputs[0]


def _to_tensor(outputs: list, like) -> Any:
    import torch

    if any(isinstance(o, dict) for o in outputs):
        raise InvalidInputError("separate_masks is not supported with tensor input; use a list of images")
    arrays = [np.asarray(o, dtype=np.float32) / 255.0 for o in outputs]
    return torch.from_numpy(np.stack(arrays)).to(like.device)
