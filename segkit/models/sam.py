"""Segment Anything: an encoder turns the photo into an embedding once, a small decoder
turns the embedding plus points and boxes into masks, again for every click.

The arithmetic is rembg's ``SamSession`` step for step (fit into 684x1024 at the
top left, bilinear warps, the decoder's seven inputs, the union of every mask above
zero), because matching rembg is the spec. What segkit adds: embeddings are kept per
photo (a small LRU keyed by the pixels), so the clicks after the first cost only the
decoder; and prompts are checked with messages that say which mark is wrong.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from PIL import Image

from .. import settings
from ..errors import InvalidInputError
from .registry import ModelSpec

FRAME = (684, 1024)  # (h, w) the encoder sees; rembg's input_size
TARGET = 1024  # rembg's target_size (the long side coordinates are scaled to)
MAX_MARKS = 64
_SIZES = {"point": 2, "rectangle": 4}


@dataclass
class SamModel:
    """The two sessions of one SAM checkpoint and the embeddings of the photos seen last."""

    encoder: Any
    decoder: Any
    keep: int = field(default_factory=lambda: settings.read("SEGKIT_SAM_EMBEDDINGS"))
    encoder_runs: int = 0
    _embeddings: OrderedDict = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def embedding(self, pixels: np.ndarray, transform: np.ndarray) -> np.ndarray:
        """The encoder's output for this photo, computed once while it stays among the last ``keep``."""
        key = hashlib.blake2b(pixels.tobytes(), digest_size=16, person=str(pixels.shape).encode()[:16]).hexdigest()
        with self._lock:
            if key in self._embeddings:
                self._embeddings.move_to_end(key)
                return self._embeddings[key]
        framed = _warp(pixels, transform[:2], FRAME).astype(np.float32)
        value = self.encoder.run(None, {self.encoder.get_inputs()[0].name: framed})[0]
        with self._lock:
            self.encoder_runs += 1
            self._embeddings[key] = value
            while len(self._embeddings) > max(1, self.keep):
                self._embeddings.popitem(last=False)
        return value


def _warp(image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """cv2.warpAffine's mapping with bilinear sampling and zeros outside, as rembg computes it."""
    from scipy.ndimage import map_coordinates

    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    xs, ys = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]))
    src_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    src_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    planes = image[:, :, None] if image.ndim == 2 else image
    out = np.stack([map_coordinates(planes[:, :, c].astype(np.float64), [src_y, src_x], order=1, mode="constant",
                                    cval=0) for c in range(planes.shape[2])], axis=2)
    return (out[:, :, 0] if image.ndim == 2 else out).astype(image.dtype)


def parse_prompt(value: Any, name: str) -> Optional[tuple[dict, ...]]:
    """rembg's ``sam_prompt`` list (or its JSON text), checked mark by mark; None means no prompt."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidInputError(f"{name}: not valid JSON ({exc})", subject=name) from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise InvalidInputError(f"{name}: must be a non-empty list of marks such as "
                                '{"type": "point", "data": [x, y], "label": 1}', subject=name)
    if len(value) > MAX_MARKS:
        raise InvalidInputError(f"{name}: {len(value)} marks is more than the {MAX_MARKS} allowed", subject=name)
    return tuple(_mark(mark, f"{name}: mark {i + 1}", name) for i, mark in enumerate(value))


def _mark(mark: Any, where: str, name: str) -> dict:
    if not isinstance(mark, dict) or mark.get("type") not in _SIZES:
        raise InvalidInputError(f'{where}: must be a dict whose "type" is "point" or "rectangle"', subject=name)
    kind, data = mark["type"], mark.get("data")
    if (not isinstance(data, (list, tuple)) or len(data) != _SIZES[kind]
            or not all(_number(v) and math.isfinite(v) and v >= 0 for v in data)):
        shape = "[x, y]" if kind == "point" else "[x0, y0, x1, y1]"
        raise InvalidInputError(f'{where}: "data" must be {shape} in pixels (numbers from 0), got {data!r:.60}',
                                subject=name)
    label = mark.get("label", 1 if kind == "rectangle" else None)
    if isinstance(label, bool) or label not in (0, 1):
        raise InvalidInputError(f'{where}: "label" must be 1 (keep) or 0 (remove), got {label!r:.20}', subject=name)
    data = [float(v) for v in data]
    if kind == "rectangle":  # corners in either order: SAM wants top-left, bottom-right
        data = [min(data[0], data[2]), min(data[1], data[3]), max(data[0], data[2]), max(data[1], data[3])]
    return {"type": kind, "data": data, "label": int(label)}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _check_inside(prompt: tuple[dict, ...], width: int, height: int) -> None:
    for i, mark in enumerate(prompt):
        xs, ys = mark["data"][0::2], mark["data"][1::2]
        if max(xs) > width or max(ys) > height:
            raise InvalidInputError(f"prompt: mark {i + 1} ({mark['type']} at {mark['data']}) is outside the "
                                    f"image ({width}x{height})", subject="prompt")


def _decoder_points(prompt: tuple[dict, ...], transform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points and labels as the decoder takes them: boxes as two corners labelled 2 and 3, one padding point."""
    points, labels = [], []
    for mark in prompt:
        if mark["type"] == "point":
            points.append(mark["data"])
            labels.append(mark["label"])
        else:
            points += [mark["data"][:2], mark["data"][2:]]
            labels += [2, 3]
    coords = np.concatenate([np.array(points), np.array([[0.0, 0.0]])], axis=0)[None, :, :]
    label = np.concatenate([np.array(labels), np.array([-1])], axis=0)[None, :].astype(np.float32)
    scale = TARGET * 1.0 / max(FRAME)  # rembg's apply_coords on the frame itself: a no-op kept for parity
    new_h, new_w = int(FRAME[0] * scale + 0.5), int(FRAME[1] * scale + 0.5)
    coords = coords.astype(float)
    coords[..., 0] *= new_w / FRAME[1]
    coords[..., 1] *= new_h / FRAME[0]
    coords = coords.astype(np.float32)
    coords = np.concatenate([coords, np.ones((1, coords.shape[1], 1), dtype=np.float32)], axis=2)
    return np.matmul(coords, transform.T)[:, :, :2].astype(np.float32), label


def predict_prompted(model: SamModel, spec: ModelSpec, image: Image.Image,
                     prompt: Optional[tuple[dict, ...]]) -> list[np.ndarray]:
    """One mask: everything the decoder marks above zero for these points and boxes."""
    pixels = np.array(image.convert("RGB"))
    height, width = pixels.shape[:2]
    if prompt is None:  # rembg's default: the centre of the photo, kept
        prompt = ({"type": "point", "data": [float(int(width / 2)), float(int(height / 2))], "label": 1},)
    _check_inside(prompt, width, height)
    scale = min(FRAME[1] / width, FRAME[0] / height)
    transform = np.array([[scale, 0, 0], [0, scale, 0], [0, 0, 1]])
    embedding = model.embedding(pixels, transform)
    coords, labels = _decoder_points(prompt, transform)
    masks = model.decoder.run(None, {
        "image_embeddings": embedding, "point_coords": coords, "point_labels": labels,
        "mask_input": np.zeros((1, 1, 256, 256), dtype=np.float32),
        "has_mask_input": np.zeros(1, dtype=np.float32), "orig_im_size": np.array(FRAME, dtype=np.float32),
    })[0]
    inverse = np.linalg.inv(transform)
    mask = np.zeros((height, width), np.uint8)
    for plane in masks[0]:
        mask[_warp(plane, inverse[:2], (height, width)) > 0.0] = 255
    return [mask]
