"""Batches: ``process()`` runs ``pipeline.segment_one`` over any iterable of inputs,
one after another, keeping each image's error on that image; ``segment()`` is the
same for callers who want the cutouts themselves."""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any, Callable, Iterable, Mapping, Optional, Unpack

import numpy as np
from PIL import Image

from .errors import InvalidInputError, SegkitError, check_hooks
from .io.decode import describe, is_tensor, split_tensor_batch
from .models.batching import BatchingSession
from .models.sessions import session_for
from .models.lookup import get_model
from .options import Options, OptionValues
from .pipeline import Result, segment_one
from .pixels.resize import one_band_each
from .warmup import load_beside

log = logging.getLogger("segkit")
ProgressFn = Optional[Callable[[float, str], None]]
_SINGLE = (Image.Image, np.ndarray, bytes, bytearray, memoryview, str, os.PathLike)


def as_batch(images: Any) -> tuple[list, bool]:
    """(the inputs as a list, whether the caller passed a batch). Any iterable that is
    not itself one image is a batch, but a dict is refused; a ComfyUI tensor [B,H,W,C] is one per row."""
    if is_tensor(images):
        return split_tensor_batch(images), True
    if isinstance(images, Mapping):  # iterating it would read its keys as file names
        raise InvalidInputError("images: a dict is not a batch of images; pass its values "
                                "(list(images.values()))", subject="images")
    if isinstance(images, _SINGLE) or not isinstance(images, Iterable):
        return [images], False
    return list(images), True


def process(images: Any, *, progress: ProgressFn = None, **options: Unpack[OptionValues]) -> list[Result]:
    """Segment a batch and return one ``Result`` per input, in order.

    A bad image yields a ``Result`` with ``error`` set; the others still finish.
    Bad options and unavailable models raise at once (they affect every image),
    before any image is decoded. ``progress(fraction, text)`` hears each image's
    stages, with the time left once an image is done; an exception it raises
    stops the batch and reaches the caller as it was raised.
    """
    settings = Options.of(**options)
    check_hooks(progress, progress_call="progress(fraction, text)")
    items, _ = as_batch(images)
    if not items:
        return []
    load_beside(matting=settings.alpha_matting)  # while a first call's session builds
    session = session_for(settings.spec, progress)
    clock = _Clock(len(items), progress)
    try:
        if isinstance(session, BatchingSession) and len(items) > 1 and session.batches():
            results = _gathered(items, settings, session, clock)
        else:
            results = [_run_one(item, index, settings, session, clock) for index, item in enumerate(items)]
        clock.report(len(items), "done")
    except _ProgressRaised as stop:
        raise stop.error from None
    return results


class _ProgressRaised(BaseException):
    """The caller's ``progress`` raised: that stops the batch, and is no image's failure
    (a BaseException, so that the per-image ``except Exception`` lets it through)."""

    def __init__(self, error: Exception):
        super().__init__(error)
        self.error = error


def _gathered(items: list, settings: Options, session: BatchingSession, clock: "_Clock") -> list[Result]:
    """On a GPU: images run from three network batches' worth of threads, so that while one batch
    runs the next gathers and the last one's cutouts are made; the host's pixel work spreads over
    its cores an image per thread (bench/RESULTS.md, GPU)."""
    def run(index: int) -> Result:
        with one_band_each():
            return _run_one(items[index], index, settings, session, clock, nullcontext())

    with session.expecting(len(items)), ThreadPoolExecutor(3 * session.max_batch,
                                                           thread_name_prefix="segkit-batch") as pool:
        return list(pool.map(run, range(len(items))))


def _run_one(item: Any, index: int, settings: Options, session, clock: "_Clock", in_flight=None) -> Result:
    start = time.perf_counter()
    try:
        result = segment_one(item, settings, session, index, lambda stage: clock.report(index, stage), in_flight)
    except SegkitError as exc:
        result = Result(describe(item, index), error=exc)
    except Exception as exc:  # noqa: BLE001 - one image's failure must not lose the batch
        log.error("image %d failed unexpectedly", index + 1, exc_info=exc)
        label = describe(item, index)
        result = Result(label, error=SegkitError(f"{label}: processing failed ({type(exc).__name__})", subject=label))
    result.seconds = time.perf_counter() - start
    clock.finished(index)
    return result


def time_left(done: int, total: int, elapsed: float) -> str:
    """"about 12 s left": the rate so far, extrapolated to what is left ("" before the first is done)."""
    if not done or total <= done:
        return ""
    seconds = elapsed / done * (total - done)
    return f"about {seconds:.0f} s left" if seconds < 90 else f"about {seconds / 60:.0f} min left"


class _Clock:
    """Progress for people: which image, which stage, and the time left. The fraction counts
    each image's furthest stage, so it only moves forward when images run side by side (GPU)."""

    STAGES = ("decoding", "network", "matting", "cutout")

    def __init__(self, total: int, progress: ProgressFn):
        self.total, self.progress, self.start, self.done = total, progress, time.perf_counter(), 0
        self._reached = [0.0] * total  # per image: its furthest stage, as a fraction of one image
        self._sum = 0.0
        self._counting = threading.Lock()  # on a GPU, images report from several threads

    def report(self, index: int, stage: str) -> None:
        if not self.progress:
            return
        if stage == "done":
            self._tell(1.0, "done")
            return
        step = self.STAGES.index(stage) / len(self.STAGES) if stage in self.STAGES else 0.0
        text = f"image {index + 1} of {self.total}: {stage}"
        if self.total > 1 and (left := time_left(self.done, self.total, time.perf_counter() - self.start)):
            text += f" · {left}"
        with self._counting:
            self._advance(index, step)
            fraction = self._sum / self.total
        self._tell(fraction, text)

    def _tell(self, fraction: float, text: str) -> None:
        try:
            self.progress(fraction, text)
        except Exception as exc:  # noqa: BLE001 - the caller's own error, handed back by process()
            raise _ProgressRaised(exc) from exc

    def finished(self, index: int) -> None:
        with self._counting:
            self.done += 1
            self._advance(index, 1.0)

    def _advance(self, index: int, step: float) -> None:
        if step > self._reached[index]:
            self._sum += step - self._reached[index]
            self._reached[index] = step


def preload(model: str = "u2netp", progress: ProgressFn = None) -> None:
    """Fetch the model and build its session now, and compile the pixel kernels, so the first request is fast."""
    from .pixels.resize import warm_up

    session_for(get_model(model), progress)
    warm_up()


def segment(images: Any, *, only_mask: bool = False, separate_masks: bool = False, progress: ProgressFn = None,
            **options: Unpack[OptionValues]):
    """Cut the subject out of each image; returns RGBA cutouts at each input's size.

    ``images``: one image (PIL, numpy, bytes, path) or any iterable of them (a list
    comes back), or a ComfyUI IMAGE tensor [B,H,W,C] in 0..1, which gives back a
    [B,H,W,4] tensor ([B,H,W] masks with ``only_mask``). ``separate_masks`` returns,
    per image, a dict of label -> cutout (three garments for u2net_cloth_seg). The
    first bad input raises its ``InvalidInputError``; ``process()`` keeps the rest.
    """
    items, is_batch = as_batch(images)
    results = process(items, progress=progress, **options)
    for result in results:
        if result.error:
            raise result.error
    if separate_masks:
        outputs = [r.masks if only_mask else r.cutouts for r in results]
    else:
        outputs = [r.mask if only_mask else r.cutout for r in results]
    if is_tensor(images):
        return _to_tensor(outputs, like=images, only_mask=only_mask)
    return outputs if is_batch else outputs[0]


def _to_tensor(outputs: list, like, only_mask: bool) -> Any:
    import torch

    if any(isinstance(o, dict) for o in outputs):
        raise InvalidInputError("separate_masks is not supported with tensor input; use a list of images",
                                subject="separate_masks")
    if not outputs:  # an empty batch in, an empty batch of the same size out
        return torch.zeros((0, *like.shape[1:3]) + (() if only_mask else (4,)), device=like.device)
    arrays = [np.asarray(o, dtype=np.float32) / 255.0 for o in outputs]
    return torch.from_numpy(np.stack(arrays)).to(like.device)
