"""Live cutouts: one webcam frame at a time, as fast as the model allows.

A stream has no time to fetch weights, so the model is the best one already here:
MODNet (made for webcam portraits) where its weights are cached, else u2netp, which
ships small and works offline. Frames are shrunk to a webcam's usual size first: a
stream is judged by its frame rate, and a phone's camera can send four times the pixels.
The rate a person sees is measured over the last few frames, so it follows a change
of background within a second.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Optional

import numpy as np
from PIL import Image, ImageOps

from ..batch import segment
from ..models.lookup import get_model
from ..models.weights import is_cached

LIVE_MODELS = ("modnet-w", "u2netp")  # best first; the last must work offline
RATE_WINDOW = 10  # frames the shown rate is averaged over
LONG_SIDE = 640  # a live frame's long side at most: the models see less, and the full-size pixel work stays quick


def live_model() -> str:
    """The first of ``LIVE_MODELS`` whose weights are cached (the last one otherwise)."""
    return next((name for name in LIVE_MODELS[:-1] if is_cached(get_model(name))), LIVE_MODELS[-1])


class FrameRate:
    """Frames per second over the last ``window`` frames (a running average)."""

    def __init__(self, window: int = RATE_WINDOW):
        self._times: deque[float] = deque(maxlen=window + 1)

    def tick(self, now: Optional[float] = None) -> float:
        """Count one frame; returns the rate so far (0 until two frames are in)."""
        self._times.append(time.perf_counter() if now is None else now)
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])


def cut_frame(frame: Any, rate: Optional[FrameRate] = None, *, model: Optional[str] = None,
              background=None, **options) -> tuple[Image.Image, str]:
    """One live frame (no larger than ``LONG_SIDE``) cut out over ``background`` (RGBA when
    transparent), and a line that says the frame rate, the model and the size, for the person watching."""
    model = model or live_model()
    image = frame if isinstance(frame, Image.Image) else Image.fromarray(np.asarray(frame))
    if max(image.size) > LONG_SIDE:
        image = ImageOps.contain(image, (LONG_SIDE, LONG_SIDE), Image.Resampling.BILINEAR)
    cutout = segment(image, model=model, background=background, **options)
    fps = rate.tick() if rate else 0.0
    shown = f"{fps:.1f} frames/s" if fps else "measuring frames/s…"
    return cutout, f"{shown} · {model} · {cutout.width}×{cutout.height}"
