"""Alpha matting: refine a model mask into a soft alpha with closed-form matting."""

from __future__ import annotations

import numpy as np
from pymatting import estimate_alpha_cf, estimate_foreground_ml, stack_images
from scipy.ndimage import binary_erosion


def make_trimap(mask: np.ndarray, foreground_threshold: int, background_threshold: int,
                erode_size: int) -> np.ndarray:
    """Sure foreground 255, sure background 0, unknown 128, each side eroded (rembg's rule)."""
    structure = np.ones((erode_size, erode_size), dtype=np.uint8) if erode_size > 0 else None
    foreground = binary_erosion(mask > foreground_threshold, structure=structure)
    background = binary_erosion(mask < background_threshold, structure=structure, border_value=1)
    trimap = np.full(mask.shape, 128, dtype=np.uint8)
    trimap[foreground] = 255
    trimap[background] = 0
    return trimap


def _foreground_cutout(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    foreground = estimate_foreground_ml(image, alpha)
    return np.clip(stack_images(foreground, alpha) * 255, 0, 255).astype(np.uint8)


def alpha_matting_reference(image: np.ndarray, mask: np.ndarray, foreground_threshold: int,
                            background_threshold: int, erode_size: int) -> np.ndarray:
    """rembg's matting over every pixel; falls back like rembg when the trimap has no fg or bg."""
    pixels = image / 255.0
    trimap = make_trimap(mask, foreground_threshold, background_threshold, erode_size)
    try:
        alpha = estimate_alpha_cf(pixels, trimap / 255.0)
    except ValueError:
        alpha = mask / 255.0
    return _foreground_cutout(pixels, alpha)


alpha_matting = alpha_matting_reference
