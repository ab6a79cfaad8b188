"""The pipeline stages as small pure functions:
image -> model input -> network output -> masks -> post-process / matting -> cutout.

The stages follow rembg's arithmetic step for step (Lanczos resizes, division by
the image maximum, min-max rescaling, truncation to uint8) because matching
``rembg.remove()`` is the spec.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, grey_opening

from .registry import ModelSpec, Preprocess

_DISK1 = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
_CORES = os.cpu_count() or 1
_BANDS = ThreadPoolExecutor(max_workers=_CORES, thread_name_prefix="segkit-band")
_MIN_BAND_PIXELS = 400_000  # below this, splitting costs more than it saves


def _row_bands(width: int, height: int, work_pixels: int = 0) -> list[tuple[int, int]]:
    """Split ``height`` output rows into one band per core when the work is large
    (``work_pixels``: the pixels touched, e.g. a resize's source, if more than the output)."""
    count = max(1, min(_CORES, max(width * height, work_pixels) // _MIN_BAND_PIXELS, height))
    edges = [round(height * i / count) for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _banded(width: int, height: int, channels: int, fill, work_pixels: int = 0) -> np.ndarray:
    """Run ``fill(out_rows, y0, y1)`` for each row band in parallel (Pillow frees the GIL)."""
    shape = (height, width, channels) if channels > 1 else (height, width)
    out = np.empty(shape, dtype=np.uint8)
    list(_BANDS.map(lambda band: fill(out[band[0]:band[1]], *band), _row_bands(width, height, work_pixels)))
    return out


def resize_exact(image: Image.Image, size: tuple[int, int], method=Image.Resampling.LANCZOS) -> np.ndarray:
    """``image.resize(size, method)`` as an array, computed in row bands on all cores.

    Each band resizes its source ``box``; Pillow takes filter taps from the whole
    image, not the box, so the bands join into exactly the single-call result.
    """
    (src_w, src_h), (width, height) = image.size, size
    channels = len(image.getbands())

    def fill(rows, y0, y1):
        box = (0, y0 * src_h / height, src_w, y1 * src_h / height)
        rows[...] = np.asarray(image.resize((width, y1 - y0), method, box=box)).reshape(rows.shape)

    return _banded(width, height, channels, fill, work_pixels=src_w * src_h)


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


def model_input(image: Image.Image, pre: Preprocess) -> np.ndarray:
    """The normalised NCHW float32 tensor for one RGB(A) image."""
    size = input_size(pre, *image.size)
    method = Image.Resampling.LANCZOS if pre.resize == "square" else Image.Resampling.BOX
    rgb = image if image.mode == "RGB" else image.convert("RGB")  # RGBA resizes would premultiply
    pixels = resize_exact(rgb, size, method).astype(np.float64)
    divisor = max(pixels.max(), 1e-6) if pre.scale == "max" else 255.0
    pixels = (pixels / divisor - np.asarray(pre.mean)) / np.asarray(pre.std)
    return pixels.transpose(2, 0, 1)[None].astype(np.float32)


def _resize_mask(mask: np.ndarray, size: tuple[int, int], method=Image.Resampling.LANCZOS) -> np.ndarray:
    return resize_exact(Image.fromarray(mask, mode="L"), size, method)


def masks_from_output(output: np.ndarray, spec: ModelSpec, size: tuple[int, int]) -> list[np.ndarray]:
    """Turn the network's first output into uint8 masks at the image's ``size`` (w, h)."""
    if spec.output == "minmax":
        pred = output[0, 0]
        low, high = pred.min(), pred.max()
        pred = (pred - low) / (high - low) if high > low else np.zeros_like(pred)
        return [_resize_mask((np.clip(pred, 0, 1) * 255).astype(np.uint8), size)]
    if spec.output == "classes":
        labels = _resize_mask(np.argmax(output[0], axis=0).astype(np.uint8), size)
        return [np.where(labels == i + 1, 255, 0).astype(np.uint8) for i in range(len(spec.mask_labels))]
    if spec.output == "matte":
        matte = (np.clip(output[0, 0], 0, 1) * 255 + 0.5).astype(np.uint8)
        return [_resize_mask(matte, size, Image.Resampling.BILINEAR)]
    raise ValueError(f"model {spec.name!r}: unknown output rule {spec.output!r}")


def post_process(mask: np.ndarray) -> np.ndarray:
    """Smooth a mask's boundary: opening, Gaussian blur, threshold (rembg's recipe)."""
    opened = grey_opening(mask, footprint=_DISK1, mode="reflect")
    blurred = gaussian_filter(opened.astype(np.float64), sigma=2)
    return np.where(blurred < 127, 0, 255).astype(np.uint8)


def cutout(image: Image.Image, mask: np.ndarray) -> Image.Image:
    """RGBA cutout: the image pasted through the mask onto transparent black.

    rembg's ``Image.composite(image, transparent, mask)`` is exactly this paste;
    here each row band is pasted on its own core (Pillow frees the GIL). An RGBA
    image's own alpha is blended through the mask like its colours, as in rembg.
    """
    out = Image.new("RGBA", image.size, 0)
    matte = Image.fromarray(mask, mode="L")

    def paste(band):
        box = (0, band[0], image.width, band[1])
        out.paste(image.crop(box), box, matte.crop(box))

    list(_BANDS.map(paste, _row_bands(image.width, image.height)))
    return out


def union(masks: list[np.ndarray]) -> np.ndarray:
    """One mask covering every class mask (for multi-class models)."""
    return masks[0] if len(masks) == 1 else np.maximum.reduce(masks)
