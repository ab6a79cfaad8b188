"""Full-resolution pixel work, equal to Pillow bit for bit but faster: exact resizes
and the cutout.

rembg resizes with Pillow's Lanczos and cuts out with ``Image.composite``; parity
means the same integers. Pillow computes them in scalar loops, a large share
of the network's own time on big photos (bench/RESULTS.md). The kernels in ``_resize_kernels``
do the same arithmetic vectorised, in row bands on every core, reading a Pillow
image in cache-sized row strips: copying the whole image into one array first
measured slower end to end (bench/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from contextvars import ContextVar
from typing import Callable, Union

import numpy as np
from PIL import Image

from . import _resize_kernels as kernels
from .cores import CORES, pool_one_core_each

Source = Union[Image.Image, np.ndarray]
RowReader = Callable[[int, int], np.ndarray]
_LAYOUT = {"L": ("L", 1), "RGB": ("RGBX", 4), "RGBA": ("RGBA", 4)}  # Pillow's own bytes per pixel

_BANDS = pool_one_core_each(CORES, "segkit-band")  # a band thread per core, each kept to its core
_MIN_BAND_WORK = 1_000_000  # multiply-adds: below this, handing out a band costs more than it saves
_handed_out = 0  # bands running now, from every caller
_handing_out = threading.Lock()
_one_band = ContextVar("segkit_one_band", default=False)  # see one_band_each
# Bytes read from Pillow at a time: cache-sized, and few strips an image, since each strip frees and
# takes back the GIL twice, which is what threads queue for when many images run at once (a GPU's batch).
_STRIP_BYTES = 1 << 20
# numpy's switch (numpy 2 keeps it in _core, numpy 1 in core), read only at allocation; toggled
# under a lock so that it is always put back
_ask_for_huge_pages = getattr((getattr(np, "_core", None) or np.core).multiarray, "_set_madvise_hugepage",
                              lambda asked: asked)
_huge_pages_asked = threading.Lock()
_FILTERS = {Image.Resampling.LANCZOS: kernels.LANCZOS, Image.Resampling.BILINEAR: kernels.BILINEAR,
            Image.Resampling.BOX: kernels.BOX}


def _fresh_after_fork() -> None:
    """A forked child (``multiprocessing``'s default on Linux) has none of the parent's threads, and a
    lock some other thread held stays held: with the parent's pool, its first pass waited forever."""
    global _BANDS, _handed_out, _handing_out, _huge_pages_asked
    _BANDS = pool_one_core_each(CORES, "segkit-band")
    _handed_out, _handing_out, _huge_pages_asked = 0, threading.Lock(), threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_after_fork)


def full_size(shape: tuple[int, ...], dtype=np.uint8) -> np.ndarray:
    """``np.empty`` for a full-resolution result, without numpy's request for transparent huge
    pages on it (``madvise``, for arrays of 4 MB and more). Where a server's memory is fragmented
    by other work, the kernel compacts memory on the first touch of each such page: a fresh
    4.6 MP cutout took several times as long to write (bench/RESULTS.md)."""
    with _huge_pages_asked:
        asked = _ask_for_huge_pages(False)
        try:
            return np.empty(shape, dtype)
        finally:
            _ask_for_huge_pages(asked)


@contextlib.contextmanager
def one_band_each():
    """Within this, the calling thread's passes run whole, in that thread. For callers that run many
    images at once from their own threads (a GPU's gathered batch): the cores are busy with
    images already, and each band handed out only adds GIL handoffs (bench/RESULTS.md, GPU)."""
    token = _one_band.set(True)
    try:
        yield
    finally:
        _one_band.reset(token)


def in_bands(rows: int, work: int, fill: Callable[[int, int], None], align: int = 1) -> None:
    """Run ``fill(y0, y1)`` over ``rows`` split into bands, one per free core at most and one per
    ``_MIN_BAND_WORK`` of ``work`` (multiply-adds: a pass's output values times its taps);
    bands start on multiples of ``align``. The kernels free the GIL."""
    global _handed_out
    if _one_band.get():
        fill(0, rows)
        return
    count = max(1, min(CORES, work // _MIN_BAND_WORK, -(-rows // align)))
    with _handing_out:  # while other images' bands fill the cores (a GPU's gathered batch), split less
        count = max(1, min(count, CORES - _handed_out))
        _handed_out += count
    try:
        edges = [min(rows, round(rows * i / count / align) * align) for i in range(count)] + [rows]
        bands = [(y0, y1) for y0, y1 in zip(edges[:-1], edges[1:]) if y1 > y0]
        if len(bands) == 1:
            fill(*bands[0])
        else:
            list(_BANDS.map(lambda band: fill(*band), bands))
    finally:
        with _handing_out:
            _handed_out -= count


def row_reader(source: Source, rgb: bool = False) -> tuple[int, int, int, int, RowReader]:
    """(height, width, channels, used, read) where ``read(y0, y1)`` gives rows y0..y1 as
    a contiguous uint8 array (rows, width, channels) whose first ``used`` channels are
    the pixels: ``rgb`` leaves alpha out, and a Pillow RGB image reads as 4 bytes per
    pixel with the 4th unused, Pillow's own layout.

    A strip is one ``paste`` of Pillow's memory into memory numpy owns (a memcpy
    without the GIL), where ``crop(...).tobytes()`` repacks each pixel under it; ``read``'s
    ``into``, for a Pillow image, is a contiguous array of the strip's shape to paste into.
    """
    if isinstance(source, np.ndarray):
        pixels = source[:, :, None] if source.ndim == 2 else source
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        used = min(3, pixels.shape[2]) if rgb else pixels.shape[2]
        return (*pixels.shape, used, lambda y0, y1: pixels[y0:y1])
    if source.mode not in _LAYOUT:
        source = source.convert("RGBA" if source.has_transparency_data and not rgb else "RGB")
    source.load()
    rawmode, channels = _LAYOUT[source.mode]
    width, height = source.size

    def read(y0: int, y1: int, into: np.ndarray | None = None) -> np.ndarray:
        strip = np.empty((y1 - y0, width, channels), np.uint8) if into is None else into
        target = Image.frombuffer(source.mode, (width, y1 - y0), strip, "raw", rawmode, 0, 1)
        target.im.paste(source.im, (0, -y0, width, height - y0))  # Pillow clips the paste to the strip
        return strip

    return height, width, channels, 1 if channels == 1 else 3 if rgb or source.mode == "RGB" else 4, read


@functools.lru_cache(maxsize=64)
def _coefficients(in_size: int, out_size: int, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """Filter taps per size pair, cached: photos of one size recur, and recomputing them per image is wasted work."""
    bounds, taps = kernels.coefficients(in_size, out_size, kind)
    bounds.flags.writeable = taps.flags.writeable = False
    return bounds, taps


def _strips(y0: int, y1: int, row_bytes: int):
    rows = max(kernels.ROWS, _STRIP_BYTES // row_bytes // kernels.ROWS * kernels.ROWS)
    return ((s0, min(y1, s0 + rows)) for s0 in range(y0, y1, rows))


def resize_exact(source: Source, size: tuple[int, int], method=Image.Resampling.LANCZOS,
                 rgb: bool = False) -> np.ndarray:
    """``image.resize(size, method)`` as an array, for L or RGB images or arrays
    (``rgb``: RGB of an RGBA image), bit for bit what Pillow returns."""
    height, width, channels, used, read = row_reader(source, rgb)
    out_w, out_h = size
    squeeze = channels == 1 and (isinstance(source, Image.Image) or source.ndim == 2)
    shape = (out_h, out_w) if squeeze else (out_h, out_w, used)
    if method not in _FILTERS or (height > 100 * width and out_h < height):  # Pillow goes vertical-first there
        pixels = read(0, height)
        image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels[:, :, :used])
        return np.array(image.resize(size, method)).reshape(shape)  # writeable, as the other paths give
    if (out_w, out_h) == (width, height):
        return np.ascontiguousarray(read(0, height)[:, :, :used]).reshape(shape)
    kind = _FILTERS[method]
    row_bounds, row_taps = _coefficients(height, out_h, kind)
    first, last = (row_bounds[0, 0], row_bounds[-1, 0] + row_bounds[-1, 1]) if out_w != width else (0, height)
    if out_w != width:  # horizontal pass over only the source rows the vertical pass reads
        col_bounds, col_taps = _coefficients(width, out_w, kind)
        channels = used  # the horizontal pass leaves padding and unwanted alpha behind
        rows = full_size((last - first, out_w, channels))

        def horizontal(y0, y1):
            for s0, s1 in _strips(y0, y1, width * channels):
                kernels.horizontal(read(first + s0, first + s1), rows[s0:s1], 0, s1 - s0, 0, col_bounds, col_taps)

        in_bands(last - first, (last - first) * out_w * channels * col_taps.shape[1], horizontal, kernels.ROWS)
    else:
        rows = read(0, height)
    if out_h != height:
        out = full_size((out_h, out_w * channels))
        flat, row_bounds = rows.reshape(rows.shape[0], -1), row_bounds - (first, 0)  # ``rows`` starts at ``first``
        in_bands(out_h, out_h * out_w * channels * row_taps.shape[1],
                 lambda y0, y1: kernels.vertical(flat, out, y0, y1, row_bounds, row_taps))
        rows = out.reshape(out_h, out_w, channels)
    return np.ascontiguousarray(rows[:, :, :used]).reshape(shape)


def cutout(source: Source, mask: np.ndarray) -> Image.Image:
    """RGBA cutout: the image pasted through the mask onto transparent black.

    rembg's ``Image.composite(image, transparent, mask)`` is exactly this paste; an
    RGBA image's own alpha is blended through the mask like its colours, as there.
    Pixels are read in Pillow's 4-byte layout and pasted a 32-bit word at a time.
    """
    if isinstance(source, np.ndarray):
        pixels = np.ascontiguousarray(source, dtype=np.uint8)
        source = Image.fromarray(pixels[:, :, 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels)
    if source.mode not in ("RGB", "RGBA"):  # grey and palette images paste as Pillow converts them
        source = source.convert("RGBA" if source.has_transparency_data else "RGB")
    height, width, channels, used, read = row_reader(source)
    if mask.shape != (height, width):
        raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]}, the image {width}x{height}")
    out = full_size((height, width, 4))
    matte, words = np.ascontiguousarray(mask, dtype=np.uint8), out.view(np.uint32)[:, :, 0]

    def paste(y0, y1):
        for s0, s1 in _strips(y0, y1, width * channels):
            kernels.paste_through_mask(read(s0, s1).view(np.uint32)[:, :, 0], matte[s0:s1], words[s0:s1],
                                       0, s1 - s0, used == 3)

    in_bands(height, 2 * height * width, paste, kernels.ROWS)  # two multiplies a pixel (two bytes each)
    return Image.fromarray(out, mode="RGBA")


def read_all(source: Source, rgb: bool = False) -> np.ndarray:
    """All of an image's pixels as one (H, W, C) array, read in strips."""
    height, width, channels, used, read = row_reader(source, rgb)
    out = np.empty((height, width, used), np.uint8)  # matting's input: its solver gains from huge pages
    for s0, s1 in _strips(0, height, width * channels):
        out[s0:s1] = read(s0, s1)[:, :, :used]
    return out


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels for every array kind a request passes them."""
    image = Image.new("RGB", (48, 40), (200, 120, 40))
    mask = resize_exact(resize_exact(np.full((40, 48), 7, np.uint8), (20, 16)), (48, 40))
    resize_exact(image, (20, 16))
    resize_exact(read_all(image), (20, 16))
    cutout(image, mask)
    cutout(image.convert("RGBA"), mask)
