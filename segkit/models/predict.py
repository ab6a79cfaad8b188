"""The model's side of one image: image -> input tensor -> network -> masks at the image's size.

The steps follow rembg's arithmetic step for step (Lanczos resizes, division by
the image maximum, min-max rescaling, truncation to uint8) because matching
``rembg.remove()`` is the spec; the registry entry says which rule each model uses.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..pixels.resize import resize_exact
from . import _tensor_kernels as kernels
from .registry import ModelSpec, Preprocess


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
    tensor = np.empty((1, 3) + pixels.shape[:2], np.float32)
    kernels.normalise(pixels, pre.scale == "max", np.array(pre.mean, np.float64), np.array(pre.std, np.float64), tensor)
    return tensor


def masks_from_output(output: np.ndarray, spec: ModelSpec, size: tuple[int, int]) -> list[np.ndarray]:
    """Turn the network's first output into uint8 masks at the image's ``size`` (w, h)."""
    if spec.output in ("minmax", "sigmoid_minmax"):
        pred = np.ascontiguousarray(output[0, 0], dtype=np.float32)
        if spec.output == "sigmoid_minmax":
            pred = 1 / (1 + np.exp(-pred))  # rembg's float32 steps (BiRefNet's logits)
        mask = np.empty(pred.shape, np.uint8)
        kernels.minmax_mask(pred, mask)  # rembg's min-max rescaling and truncation to uint8
        return [resize_exact(mask, size)]
    if spec.output == "classes":
        labels = resize_exact(np.argmax(output[0], axis=0).astype(np.uint8), size)
        return [np.where(labels == i + 1, 255, 0).astype(np.uint8) for i in range(len(spec.mask_labels))]
    if spec.output == "matte":
        matte = (np.clip(output[0, 0], 0, 1) * 255 + 0.5).astype(np.uint8)
        return [resize_exact(matte, size, Image.Resampling.BILINEAR)]
    raise ValueError(f"model {spec.name!r}: unknown output rule {spec.output!r}")


def warm_up() -> None:
    """Compile (or load from numba's cache) the tensor kernels for the arrays ``predict`` passes them."""
    pixels = np.zeros((4, 4, 3), np.uint8)
    for by_max in (False, True):
        kernels.normalise(pixels, by_max, np.zeros(3), np.ones(3), np.empty((1, 3, 4, 4), np.float32))
    kernels.minmax_mask(np.zeros((4, 4), np.float32), np.empty((4, 4), np.uint8))


def predict(session, spec: ModelSpec, image: Image.Image, prompt=None) -> list[np.ndarray]:
    """One mask per entry of ``spec.mask_labels``, each at the image's size. ``prompt``
    (points and boxes, checked by ``segkit.options``) steers the prompted models only."""
    if spec.output == "prompted":
        from .sam import predict_prompted

        return predict_prompted(session, spec, image, prompt)
    tensor = model_input(image, spec.preprocess)
    feed = session.get_inputs()[0]
    if feed.type == "tensor(float16)":  # a float16 file that does not keep float32 inputs (a custom one)
        tensor = tensor.astype(np.float16)
    # the first output alone: u2net's six side outputs are not copied back (bench/RESULTS.md, GPU)
    output = session.run([session.get_outputs()[0].name], {feed.name: tensor})[0]
    return masks_from_output(output, spec, image.size)
