"""Numba kernels behind ``pixels.resize.resize_exact`` and ``pixels.resize.cutout``: Pillow's
8-bit resampling and paste-through-mask, bit for bit, but vectorised.

Pillow computes each output pixel of a resize as a scalar loop over the filter
taps; for a large photo going to the network's size that is most of segkit's
time outside the network. These kernels do the same integer arithmetic (22-bit fixed-point
coefficients from the same double-precision filter, the same rounding and
clipping, horizontal pass before vertical) in an order the CPU can vectorise:
the horizontal pass works on blocks of ``ROWS`` source rows at once, so every
filter tap is one multiply-add across a vector of rows.
"""

import math
import sys

import numba as nb
import numpy as np

PRECISION_BITS = 22  # Pillow's: 32 bits minus 8 for the pixel minus 2 for overshoot
HALF = 1 << (PRECISION_BITS - 1)
ROWS = 16  # source rows per horizontal block: 16 int32 lanes fill a 512-bit register
TAP_STEP = 8  # taps per accumulator update; coefficient rows are zero-padded to a multiple

# Pillow's filters and their supports, by the index used below.
LANCZOS, BILINEAR, BOX = 0, 1, 2
SUPPORT = (3.0, 1.0, 0.5)


@nb.njit(cache=True, nogil=True)
def _sinc(x):
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


@nb.njit(cache=True, nogil=True)
def _filter(kind, x):
    if kind == LANCZOS:
        return _sinc(x) * _sinc(x / 3) if -3.0 <= x < 3.0 else 0.0
    if kind == BILINEAR:
        x = -x if x < 0.0 else x
        return 1.0 - x if x < 1.0 else 0.0
    return 1.0 if -0.5 < x <= 0.5 else 0.0


@nb.njit(cache=True, nogil=True)
def coefficients(in_size, out_size, kind):
    """Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc`` for a whole-image box:
    per output pixel its first source pixel and tap count, and 22-bit integer taps."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = SUPPORT[kind] * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    inv_filterscale = 1.0 / filterscale
    bounds = np.zeros((out_size, 2), np.int64)
    taps = np.zeros((out_size, (ksize + TAP_STEP - 1) // TAP_STEP * TAP_STEP), np.int32)
    weights = np.zeros(ksize)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        total = 0.0
        xmin = max(int(center - support + 0.5), 0)
        count = min(int(center + support + 0.5), in_size) - xmin
        for x in range(count):
            weights[x] = _filter(kind, (x + xmin - center + 0.5) * inv_filterscale)
            total += weights[x]
        for x in range(count):
            w = weights[x] / total if total != 0.0 else weights[x]
            taps[xx, x] = int(w * (1 << PRECISION_BITS) + (-0.5 if w < 0 else 0.5))
        bounds[xx, 0], bounds[xx, 1] = xmin, count
    return bounds, taps


@nb.njit(inline="always")
def _clip8(value):
    value >>= PRECISION_BITS
    return 0 if value < 0 else (255 if value > 255 else value)


@nb.njit(cache=True, nogil=True)
def _load_block(src, block, top, rows, used):
    """block[x, c * ROWS + r] = src[top + r, x, c] for the first ``used`` channels:
    source columns become vector rows."""
    width, channels = src.shape[1], src.shape[2]
    if rows == ROWS:
        flat, lines = block.reshape(-1), src[top:top + ROWS].reshape(ROWS, -1)
        for half in range(0, ROWS, 8):  # 8-row strips transpose several times faster than 16
            for x in range(width):
                for c in range(used):
                    j, k = x * channels + c, (x * used + c) * ROWS + half
                    for r in range(8):
                        flat[k + r] = lines[half + r, j]
        return
    for r in range(ROWS):  # a short last block repeats its last row; those lanes are dropped
        line = src[top + min(r, rows - 1)]
        for x in range(width):
            for c in range(used):
                block[x, c * ROWS + r] = line[x, c]


@nb.njit(cache=True, nogil=True)
def horizontal(src, out, y0, y1, offset, bounds, taps):
    """Pillow's horizontal pass: ``out[y] <- src[y + offset]`` for ``y0 <= y < y1``.

    ``src`` (H, W, C) and ``out`` (H', W', C') are uint8, C' <= C: only the first
    C' channels are resampled. ``taps`` has a multiple of ``TAP_STEP`` columns,
    zero past each pixel's tap count.
    """
    width, channels = src.shape[1], out.shape[2]
    lane = channels * ROWS
    block = np.zeros((width + TAP_STEP, lane), np.uint8)  # padded: the last step may read past the edge
    acc = np.empty(lane, np.int32)
    for top in range(y0, y1, ROWS):
        rows = min(ROWS, y1 - top)
        _load_block(src, block, top + offset, rows, channels)
        for xx in range(out.shape[1]):
            xmin, count = bounds[xx, 0], bounds[xx, 1]
            acc[:] = HALF
            for i in range(0, count, TAP_STEP):
                k = taps[xx, i:i + TAP_STEP]
                p = block[xmin + i:xmin + i + TAP_STEP]
                for j in range(lane):
                    step = np.int32(0)
                    for t in range(TAP_STEP):
                        step += np.int32(p[t, j]) * k[t]
                    acc[j] += step
            for c in range(channels):
                for r in range(rows):
                    out[top + r, xx, c] = _clip8(acc[c * ROWS + r])


@nb.njit(cache=True, nogil=True)
def vertical(src, out, y0, y1, bounds, taps):
    """Pillow's vertical pass for output rows ``y0 <= y < y1``; ``src`` and ``out``
    are 2-D (rows, width * channels) uint8, so each tap is one vector over a row."""
    acc = np.empty(src.shape[1], np.int32)
    for yy in range(y0, y1):
        ymin, count = bounds[yy, 0], bounds[yy, 1]
        acc[:] = HALF
        for i in range(count):
            k = taps[yy, i]
            line = src[ymin + i]
            for x in range(acc.shape[0]):
                acc[x] += np.int32(line[x]) * k
        row = out[yy]
        for x in range(acc.shape[0]):
            row[x] = _clip8(acc[x])


_EVEN_BYTES, _ODD_BYTES, _HALF_EACH, _EIGHT = (np.uint32(0x00FF00FF), np.uint32(0xFF00FF00),
                                              np.uint32(0x00800080), np.uint32(8))
_ALPHA_SHIFT = np.uint32(24 if sys.byteorder == "little" else 0)  # where a pixel's 4th byte sits in its word
_COLOURS = np.uint32(0xFFFFFFFF ^ (0xFF << int(_ALPHA_SHIFT)))


@nb.njit(inline="always")
def _times_alpha(pixel, alpha):
    """Each of a 32-bit pixel's four bytes times alpha / 255, rounded as Pillow's paste does
    (DIV255: t = value * alpha + 128, then (t + (t >> 8)) >> 8), two bytes per multiply: each
    16-bit field holds t < 2**16, so no field carries into the next."""
    even = (pixel & _EVEN_BYTES) * alpha + _HALF_EACH
    even = ((((even >> _EIGHT) & _EVEN_BYTES) + even) >> _EIGHT) & _EVEN_BYTES
    odd = ((pixel >> _EIGHT) & _EVEN_BYTES) * alpha + _HALF_EACH
    odd = (((odd >> _EIGHT) & _EVEN_BYTES) + odd) & _ODD_BYTES
    return even | odd


@nb.njit(cache=True, nogil=True)
def paste_through_mask(src, mask, out, y0, y1, opaque):
    """Pillow's ``paste(src, mask)`` onto transparent black RGBA, rows ``y0..y1``, for 4-byte
    pixels seen as uint32 words (``src``, ``out``: (rows, width) uint32): each byte becomes
    round(value * mask / 255). ``opaque``: the 4th byte is padding (Pillow's RGB), so the
    alpha is the mask. A word at a time vectorises several times better than byte by byte."""
    for y in range(y0, y1):
        pixels, alpha, row = src[y], mask[y], out[y]
        if opaque:
            for x in range(alpha.shape[0]):
                a = np.uint32(alpha[x])
                row[x] = (_times_alpha(pixels[x], a) & _COLOURS) | (a << _ALPHA_SHIFT)
        else:
            for x in range(alpha.shape[0]):
                row[x] = _times_alpha(pixels[x], np.uint32(alpha[x]))
