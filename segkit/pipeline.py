"""The pipeline stages as small pure functions:
image -> model input -> network output -> masks -> post-process / matting -> cutout.

The stages follow rembg's arithmetic step for step (Lanczos resizes, division by
the image maximum, min-max rescaling, truncation to uint8) because matching
``rembg.remove()`` is the spec. The full-resolution pixel work (resizes, cutout)
lives in :mod:`segkit.pixels`, which gives Pillow's integers faster.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, grey_opening

from .pixels import cutout, resize_exact, warm_up  # noqa: F401 - the pixel stages, re-exported
from .registry import ModelSpec, Preprocess

_DISK1 = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def input_size(pre: Preprocess, width: int, height: int) -> tuple[int, int]:
    """The (width, height) the network sees for an image of this size."""
    if pre.resize == "square":
        return pre.size, pre.size
    if pre.resize == "short_side_32":
        ref = pre.size
        if max(width, height) < ref or min(width, height) > ref:
            if width >= height:
                width, height = int(width / height * ref), ref
            else:
                width, height = ref, int(height / width * ref)
        return max(32, width - width % 32), max(32, height - height % 32)
    raise ValueError(f"unknown resize rule {pre.resize!r}")


def model_input(image: Image.Image | np.ndarray, pre: Preprocess) -> np.ndarray:
    """The normalised NCHW float32 tensor for one RGB(A) image (its alpha is ignored)."""
    height, width = (image.height, image.width) if isinstance(image, Image.Image) else image.shape[:2]
    method = Image.Resampling.LANCZOS if pre.resize == "square" else Image.Resampling.BOX
    pixels = resize_exact(image, input_size(pre, width, height), method, rgb=True)
    divisor = max(float(pixels.max()), 1e-6) if pre.scale == "max" else 255.0
    tensor = np.empty((1, 3) + pixels.shape[:2], np.float32)
    for c in range(3):  # rembg's float64 steps, one channel at a time (no image-sized temporaries)
        tensor[0, c] = (pixels[:, :, c] / divisor - pre.mean[c]) / pre.std[c]
    return tensor


def masks_from_output(output: np.ndarray, spec: ModelSpec, size: tuple[int, int]) -> list[np.ndarray]:
    """Turn the network's first output into uint8 masks at the image's ``size`` (w, h)."""
    if spec.output == "minmax":
        pred = output[0, 0]
        low, high = pred.min(), pred.max()
        pred = (pred - low) / (high - low) if high > low else np.zeros_like(pred)
        return [resize_exact((np.clip(pred, 0, 1) * 255).astype(np.uint8), size)]
    if spec.output == "classes":
        labels = resize_exact(np.argmax(output[0], axis=0).astype(np.uint8), size)
        return [np.where(labels == i + 1, 255, 0).astype(np.uint8) for i in range(len(spec.mask_labels))]
    if spec.output == "matte":
        matte = (np.clip(output[0, 0], 0, 1) * 255 + 0.5).astype(np.uint8)
        return [resize_exact(matte, size, Image.Resampling.BILINEAR)]
    raise ValueError(f"model {spec.name!r}: unknown output rule {spec.output!r}")


def post_process(mask: np.ndarray) -> np.ndarray:
    """Smooth a mask's boundary: opening, Gaussian blur, threshold (rembg's recipe)."""
    opened = grey_opening(mask, footprint=_DISK1, mode="reflect")
    blurred = gaussian_filter(opened.astype(np.float64), sigma=2)
    return np.where(blurred < 127, 0, 255).astype(np.uint8)


def union(masks: list[np.ndarray]) -> np.ndarray:
    """One mask covering every class mask (for multi-class models)."""
    return masks[0] if len(masks) == 1 else np.maximum.reduce(masks)
