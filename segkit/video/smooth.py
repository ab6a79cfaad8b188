"""Temporal smoothing of mattes, and the flicker measure that judges it.

A per-frame network answers each frame afresh, so sensor noise and codec
blocking make a still edge shimmer. The smoother is an edge-aware moving
average: where the picture has not changed since the last frame, the matte
leans on its previous value; where the picture changed (motion, a cut), it
follows the new frame at once, so moving edges do not trail.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import shift as translate, uniform_filter

DEFAULT_STRENGTH = 0.6  # ``smooth=True``: how far a still pixel leans on its past (0 off, below 1)
CHANGE_SCALE = 10.0  # mean luma change (0..255, 5x5 window) at which a pixel is e^-1 as smooth
WINDOW = 5


def strength_of(smooth: bool | float | None) -> float:
    """``smooth`` as a number in [0, 1): False/None/0 off, True the default."""
    if smooth is True:
        return DEFAULT_STRENGTH
    value = float(smooth or 0)
    if not 0 <= value < 1:
        from ..errors import InvalidInputError

        raise InvalidInputError(f"smooth: must be between 0 and 1 (exclusive), got {smooth!r}")
    return value


class TemporalSmoother:
    """Feed it each frame's picture and matte in order; it returns the smoothed matte."""

    def __init__(self, strength: float):
        self.strength = strength
        self.previous_luma: np.ndarray | None = None
        self.previous_alpha: np.ndarray | None = None

    def __call__(self, image: Image.Image, alpha: np.ndarray) -> np.ndarray:
        luma = np.asarray(image.convert("L"), dtype=np.float32)
        current = alpha.astype(np.float32)
        if self.previous_luma is None or self.previous_luma.shape != luma.shape:
            smoothed = current
        else:
            change = uniform_filter(np.abs(luma - self.previous_luma), WINDOW)
            weight = self.strength * np.exp(-np.square(change / CHANGE_SCALE))
            smoothed = weight * self.previous_alpha + (1 - weight) * current
        self.previous_luma, self.previous_alpha = luma, smoothed
        return np.clip(smoothed + 0.5, 0, 255).astype(np.uint8)


def flicker(mattes: list[np.ndarray], motion: list[tuple[float, float]], margin: int = 8) -> float:
    """Mean change of a matte from one frame to the next once the known motion is undone, in 0..255.

    ``motion[t]`` is the (dy, dx) by which frame t's content moved from frame t-1;
    the previous matte is moved the same way, and a border of ``margin`` pixels
    (where content enters the picture) is left out.
    """
    changes = []
    for t in range(1, len(mattes)):
        expected = translate(mattes[t - 1].astype(np.float32), motion[t], order=1, mode="nearest")
        diff = np.abs(mattes[t].astype(np.float32) - expected)
        changes.append(float(diff[margin:-margin, margin:-margin].mean()))
    return float(np.mean(changes))
