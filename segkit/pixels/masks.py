"""Mask clean-up: rembg's post-processing, and the union of a multi-class model's masks."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, grey_opening

_DISK1 = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def post_process(mask: np.ndarray) -> np.ndarray:
    """Smooth a mask's boundary: opening, Gaussian blur, threshold (rembg's recipe)."""
    opened = grey_opening(mask, footprint=_DISK1, mode="reflect")
    blurred = gaussian_filter(opened.astype(np.float64), sigma=2)
    return np.where(blurred < 127, 0, 255).astype(np.uint8)


def union(masks: list[np.ndarray]) -> np.ndarray:
    """One mask covering every class mask (for multi-class models)."""
    return masks[0] if len(masks) == 1 else np.maximum.reduce(masks)
