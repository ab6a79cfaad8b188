"""One image, top to bottom: decode -> model -> masks -> post-process / matting ->
cutout -> background. Batches, the app, video and Ray only schedule this function.

Each step lives where its kind of work lives: decoding in ``segkit.io``, the
network and its tensors in ``segkit.models``, full-resolution pixel work in
``segkit.pixels``. The model's side is one narrow call (``predict``), as in
rembg's ``remove()``. On a GPU, a lone plain cutout runs its model input, masks and
cutout there, beside the network (``models.on_device``), with the same bytes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import onnxruntime as ort
from PIL import Image

from . import settings
from .errors import SegkitError
from .io.compose import compose
from .io.decode import decode
from .models import on_device
from .models.predict import predict
from .options import Options
from .pixels.masks import post_process, union
from .pixels.matting import matte
from .pixels.resize import cutout, read_all

StageFn = Callable[[str], None]
# Images in flight at once across all threads, and one matting solve at a time: memory
# stays bounded however many threads call in (the network already uses every core).
_IN_FLIGHT: list[threading.BoundedSemaphore] = []  # made on first use, so a wrong setting is named there
_IN_FLIGHT_MADE = threading.Lock()
_MATTING_TURN = threading.Lock()


def _images_in_flight() -> threading.BoundedSemaphore:
    with _IN_FLIGHT_MADE:
        if not _IN_FLIGHT:
            _IN_FLIGHT.append(threading.BoundedSemaphore(settings.read("SEGKIT_IMAGES_IN_FLIGHT")))
        return _IN_FLIGHT[0]


@dataclass
class Result:
    """One image's outcome. ``error`` is set (and the images are None) when it failed."""

    label: str
    cutout: Optional[Image.Image] = None  # RGBA, or RGB over the chosen background
    image: Optional[Image.Image] = None  # the decoded input (RGB/RGBA, upright)
    mask: Optional[Image.Image] = None
    masks: dict[str, Image.Image] = field(default_factory=dict)  # per class, multi-class models
    cutouts: dict[str, Image.Image] = field(default_factory=dict)
    seconds: float = 0.0
    error: Optional[SegkitError] = None

    @property
    def ok(self) -> bool:
        return self.error is None


def segment_one(item: Any, options: Options, session: ort.InferenceSession, index: int = 0,
                stage: StageFn = lambda name: None, in_flight=None) -> Result:
    """Cut the subject out of one input; a bad input raises ``InvalidInputError``. ``in_flight``
    bounds the images in flight at once (by default the process-wide bound above)."""
    with in_flight or _images_in_flight():
        stage("decoding")
        decoded = decode(item, index)  # bytes, path, array, PIL... -> upright RGB(A), size checked first
        image, spec = decoded.image, options.spec
        stage("network")
        if on_device.takes(session, spec, options, image):  # a GPU: resizes and cutout beside the network there
            return _cut_on_device(decoded.label, image, session, options)
        masks = predict(session, spec, image, options.prompt)  # one uint8 mask per class, at the image's size
        stage("matting" if options.alpha_matting else "cutout")
        result = Result(decoded.label, image=image)
        for label, mask in zip(spec.mask_labels, masks):
            result.masks[label], result.cutouts[label] = _refine(image, mask, options)
        if len(masks) == 1:
            result.mask, result.cutout = result.masks[spec.mask_labels[0]], result.cutouts[spec.mask_labels[0]]
        else:
            result.mask, result.cutout = _refine(image, union(masks), options)
        return result


def _cut_on_device(label: str, image: Image.Image, session, options: Options) -> Result:
    """The same steps as below with ``options``' defaults, run by ``models.on_device``."""
    alpha, rgba = on_device.cutout(on_device.network(session), options.spec, image)
    mask, name = Image.fromarray(alpha, mode="L"), options.spec.mask_labels[0]
    cut = compose(Image.fromarray(rgba, mode="RGBA"), image, options.background, matted=False)
    return Result(label, cutout=cut, image=image, mask=mask, masks={name: mask}, cutouts={name: cut})


def _refine(image: Image.Image, mask: np.ndarray, options: Options) -> tuple[Image.Image, Image.Image]:
    """One mask -> (final alpha, cutout over the chosen background)."""
    if options.post_process_mask:
        mask = post_process(mask)
    if options.alpha_matting:
        with _MATTING_TURN:
            rgba = matte(read_all(image, rgb=True), mask, options.alpha_matting_foreground_threshold,
                         options.alpha_matting_background_threshold, options.alpha_matting_erode_size)
        alpha, cut = rgba[:, :, 3], Image.fromarray(rgba, mode="RGBA")
    else:
        alpha, cut = mask, cutout(image, mask)
    return Image.fromarray(alpha, mode="L"), compose(cut, image, options.background, matted=options.alpha_matting)
