"""Decoding: turn whatever the caller passed into validated RGB(A) PIL images.

Accepts PIL images, numpy arrays, encoded bytes, file paths and ComfyUI IMAGE
tensors. Every failure becomes an ``InvalidInputError`` naming the input, and
the pixel limit is checked from the header, before any pixel is decoded, so a
decompression bomb is refused without allocating it.
"""

from __future__ import annotations

import functools
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .. import settings
from ..errors import InvalidInputError
from .url import names_a_url, sniff_kind

ORIENTATION = 0x0112
# The formats segkit reads, with their file suffixes: folders yield these files, messages name the formats.
IMAGE_FORMATS = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg", ".jfif"), "WebP": (".webp",), "HEIC": (".heic", ".heif"),
                 "AVIF": (".avif",), "TIFF": (".tif", ".tiff"), "BMP": (".bmp",), "GIF": (".gif",)}
IMAGE_SUFFIXES = {suffix for suffixes in IMAGE_FORMATS.values() for suffix in suffixes}
READABLE = ", ".join(list(IMAGE_FORMATS)[:-1]) + " or " + list(IMAGE_FORMATS)[-1]


def names_a_file(text: str) -> bool:
    """Whether text given for a colour reads as a picture's path: a folder separator or a photo's suffix."""
    return "/" in text or "\\" in text or Path(text.strip()).suffix.lower() in IMAGE_SUFFIXES


def max_pixels() -> int:
    """Largest image (width x height) accepted: ``SEGKIT_MAX_PIXELS`` (64 MP: a 64 MP photo is
    processed, a 60000x60000 "PNG" is not)."""
    return settings.read("SEGKIT_MAX_PIXELS")


@dataclass
class Decoded:
    """One input image ready for the pipeline, with the label used in messages."""

    image: Image.Image  # mode RGB or RGBA, EXIF orientation applied
    label: str


def is_tensor(obj: Any) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "detach")


def describe(obj: Any, index: int) -> str:
    """A short name for an input: its file name where it has one."""
    if isinstance(obj, (str, os.PathLike)):
        return os.path.basename(os.fspath(obj)) or os.fspath(obj) or f"image #{index + 1}"
    name = getattr(obj, "filename", "") or getattr(obj, "name", "")
    if isinstance(name, str) and name:
        return os.path.basename(name)
    return f"image #{index + 1}"


def _check_size(width: int, height: int, label: str) -> None:
    if width < 1 or height < 1:
        raise InvalidInputError(f"{label}: image has no pixels ({width}x{height})")
    limit = max_pixels()
    if width * height > limit:
        raise InvalidInputError(
            f"{label}: image is {width}x{height} = {width * height / 1e6:.0f} MP, over the "
            f"{limit / 1e6:.0f} MP limit (set SEGKIT_MAX_PIXELS to raise it)")


def _to_rgb_modes(img: Image.Image) -> Image.Image:
    """Normalise any Pillow mode to RGB, or RGBA where the image carries transparency."""
    if img.mode in ("RGB", "RGBA"):
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        return Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    has_alpha = img.mode in ("LA", "PA", "La", "RGBa") or "transparency" in img.info
    return img.convert("RGBA" if has_alpha else "RGB")


@functools.cache
def _read_heic() -> None:
    """HEIC (iPhones' photos) through pillow-heif's Pillow plugin, registered on the first file
    opened: importing it costs a tenth of a second that callers passing arrays never need."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:  # not installed: HEIC files get the "not an image" message
        return
    register_heif_opener()


def _head(data: bytes | str | os.PathLike) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data[:16])
    with open(data, "rb") as file:
        return file.read(16)


def _open_encoded(data: bytes | str | os.PathLike, label: str) -> Image.Image:
    _read_heic()
    try:
        img = Image.open(io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data)
    except FileNotFoundError:
        raise InvalidInputError(f"{label}: file not found") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{label}: is a folder, not an image file") from None
    except (UnidentifiedImageError, ValueError):
        kind = sniff_kind(_head(data))
        if kind == "image":  # HEIC and AVIF are read whole: a cut-off one is not identified
            raise InvalidInputError(f"{label}: image data is truncated or corrupt (an image's header, "
                                    "then nothing that can be read)") from None
        if kind == "video":
            raise InvalidInputError(f"{label}: a video, not a photo; cut it out as a video "
                                    "(segkit.video.segment_video, the app's Video tab)") from None
        raise InvalidInputError(f"{label}: not an image segkit can read (use {READABLE})") from None
    except Image.DecompressionBombError as exc:
        raise InvalidInputError(f"{label}: refused as a decompression bomb ({exc})") from None
    except OSError as exc:
        raise InvalidInputError(f"{label}: cannot be read ({exc.strerror or exc})") from None
    _check_size(*img.size, label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()  # animated images load their first frame
    except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, struct.error...
        raise InvalidInputError(f"{label}: image data is truncated or corrupt ({str(exc).strip()})") from None
    return img


def _from_array(arr: np.ndarray, label: str) -> Image.Image:
    """HxW, HxWx1, HxWx3 or HxWx4 arrays; uint8/uint16, bool, or floats in 0..1."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InvalidInputError(f"{label}: array shape {arr.shape} is not HxW, HxWx3 or HxWx4")
    _check_size(arr.shape[1], arr.shape[0], label)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint16:
        arr = (arr.astype(np.uint32) * 255 + 32767) // 65535
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise InvalidInputError(f"{label}: array contains NaN or infinite values")
        if arr.min() < 0 or arr.max() > 1:
            raise InvalidInputError(
                f"{label}: float array values must lie in 0..1 (got {arr.min():.3g}..{arr.max():.3g})")
        arr = np.round(arr * 255.0)
    elif not np.issubdtype(arr.dtype, np.integer) or arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
        raise InvalidInputError(f"{label}: array dtype {arr.dtype} with values outside 0..255 is not supported")
    return Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8))


def decode(obj: Any, index: int = 0, label: str = "") -> Decoded:
    """Turn one input into a ``Decoded`` RGB(A) image, or raise ``InvalidInputError``."""
    label = label or describe(obj, index)
    if isinstance(obj, Image.Image):
        _check_size(*obj.size, label)
        img = obj
        try:
            img.load()
        except Exception as exc:  # noqa: BLE001 - a lazily opened file may be truncated
            raise InvalidInputError(f"{label}: image data is truncated or corrupt ({str(exc).strip()})") from None
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        if len(obj) == 0:
            raise InvalidInputError(f"{label}: empty data (0 bytes)")
        img = _open_encoded(obj, label)
    elif isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if not os.fspath(obj):
            raise InvalidInputError(f"{label}: empty file name")
        if names_a_url(obj):
            raise InvalidInputError(f"{obj}: a URL, not a file; fetch it with segkit.fetch_url() and pass "
                                    "the bytes it returns")
        if path.is_file() and path.stat().st_size == 0:
            raise InvalidInputError(f"{label}: empty file (0 bytes)")
        img = _open_encoded(path, label)
    elif isinstance(obj, np.ndarray):
        img = _from_array(obj, label)
    elif is_tensor(obj):
        img = _from_array(obj.detach().cpu().float().numpy(), label)
    else:
        raise InvalidInputError(
            f"{label}: unsupported input type {type(obj).__name__}; pass a PIL image, numpy array, "
            "bytes, a file path or a torch tensor")
    try:
        if img.getexif().get(ORIENTATION, 1) != 1:  # exif_transpose copies even when upright
            img = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a broken EXIF block should not lose the image
        pass
    try:
        return Decoded(_to_rgb_modes(img), label)
    except ValueError:  # a mode Pillow has no conversion for (premultiplied "La", say)
        raise InvalidInputError(f"{label}: Pillow cannot convert an image in mode {img.mode} to RGB; "
                                "convert it to RGB or RGBA first") from None


def split_tensor_batch(batch: Any) -> list[np.ndarray]:
    """A ComfyUI IMAGE tensor [B,H,W,C] (floats 0..1) as a list of HxWxC float arrays.

    Values are clipped to 0..1, as the seed node did: ComfyUI's own bicubic upscale
    overshoots a little. (Other float arrays outside 0..1 are refused: there a value
    out of range is likelier a caller's scale mistake than an overshoot.)"""
    given = tuple(batch.shape)
    if batch.ndim == 3 and given[-1] in (1, 3, 4):  # one image, [H,W,C]
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[-1] not in (1, 3, 4):
        mask = " (a MASK's shape: pass an IMAGE)" if len(given) == 3 else ""
        raise InvalidInputError(f"image tensor: shape {given} is not [B,H,W,C] with C in 1, 3 or 4{mask}")
    if not batch.dtype.is_floating_point:
        raise InvalidInputError(f"image tensor: dtype {batch.dtype} is not floating point (expected 0..1 floats)")
    array = batch.detach().cpu().float().numpy()
    if not np.isfinite(array).all():
        raise InvalidInputError("image tensor: contains NaN or infinite values")
    return [np.clip(array[i], 0.0, 1.0) for i in range(array.shape[0])]
