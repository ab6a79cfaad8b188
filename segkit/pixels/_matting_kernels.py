"""Numba kernels behind :mod:`segkit.pixels.matting`.

They exist because pymatting's building blocks work on every pixel of the
image, while rembg's trimaps leave only a few percent of the pixels unknown:

* ``band_system`` builds pymatting's closed-form matting system (the same
  numbers as ``cf_laplacian`` + the unknown/known split) for the unknown
  pixels only, with the known pixels folded into the right-hand side.
  ``_cholesky`` solves it.
* ``erode`` makes rembg's trimap.
* ``neighbourhood`` + ``fb_start`` + ``fb_sweep`` run pymatting's ``estimate_foreground_ml``
  update on the pixels near the band instead of the whole image.
"""

import numba as nb
import numpy as np

from .cores import MATTING_THREADS, pool_one_core_each


# The band's rows are added up in this many horizontal stripes, run on however many threads there are.
STRIPES = 8


def band_system(full_image, is_fg, idx, ys, xs, oy, ox, eps, threads=None):
    """Rows of pymatting's matting Laplacian (radius 1) for the unknown pixels,
    with the same arithmetic per window as its _cf_laplacian.

    ``is_fg`` and ``idx`` (row number of each unknown pixel, -1 if known) are
    crops at offset (oy, ox) of the uint8 image that reach 2 pixels past every
    unknown pixel; (ys, xs) are the unknown pixels in row order, crop
    coordinates. Returns the upper triangle of the unknown-unknown block in
    CSR (indptr, columns, values) and the right-hand side that the known pixels make.
    The windows are added up in horizontal stripes on `threads` threads.
    """
    height, width = full_image.shape[:2]
    h, w = idx.shape
    used = _used_windows(ys, xs, oy, ox, height, width, h, w)
    values = np.zeros((len(ys), 25))
    # a window touches the rows beside its centre: stripes that leave two rows out at their ends
    # never share a pixel; the rows left out come second. As many stripes whatever the threads,
    # so that the sums, and the alpha, do not depend on the machine.
    edges = np.linspace(0, h, max(1, min(STRIPES, h // 8)) + 1).astype(np.int64)
    inner = [(a, max(a, b - 2)) for a, b in zip(edges[:-1], edges[1:])]
    seams = [(max(a, b - 2), b) for a, b in zip(edges[:-1], edges[1:])]
    with pool_one_core_each(threads or MATTING_THREADS, "segkit-matting") as pool:
        for stripes in (inner, seams):
            list(pool.map(lambda rows: _add_windows(full_image, oy, ox, used, idx, values, eps, *rows), stripes))
        return _upper_rows(values, is_fg, idx, ys, xs, pool, STRIPES)


@nb.njit(cache=True, nogil=True)
def _used_windows(ys, xs, oy, ox, height, width, h, w):
    """Windows pymatting uses for these rows: those inside the image that contain an unknown pixel."""
    used = np.zeros((h, w), np.bool_)
    for i in range(ys.shape[0]):
        for y in range(max(ys[i] - 1, 1 - oy, 0), min(ys[i] + 2, height - 1 - oy, h)):
            for x in range(max(xs[i] - 1, 1 - ox, 0), min(xs[i] + 2, width - 1 - ox, w)):
                used[y, x] = True
    return used


@nb.njit(cache=True, nogil=True)
def _add_windows(full_image, oy, ox, used, idx, values, eps, row_from, row_to):
    """Add the used windows centred on rows row_from..row_to - 1 of the crop at (oy, ox) to
    values (25 slots per unknown pixel: its 5x5 neighbourhood). Entries that land below the
    diagonal between two unknown pixels are left out: the solver reads the upper triangle only.
    The crop is taken here: a view made in Python would be typed by its layout, and compiled
    again for each."""
    image = full_image[oy:oy + idx.shape[0], ox:ox + idx.shape[1]]
    c = np.empty((9, 3))
    rows = np.empty(9, np.int64)
    for cy in range(row_from, row_to):
        for cx in range(used.shape[1]):
            if not used[cy, cx]:
                continue
            for q in range(9):
                rows[q] = idx[cy + q // 3 - 1, cx + q % 3 - 1]
            for ch in range(3):
                total = 0.0
                for q in range(9):
                    c[q, ch] = image[cy + q // 3 - 1, cx + q % 3 - 1, ch] / 255.0
                    total += c[q, ch]
                for q in range(9):
                    c[q, ch] -= total / 9.0
            a00 = a11 = a22 = eps
            a01 = a02 = a12 = 0.0
            for q in range(9):
                a00 += c[q, 0] * c[q, 0]
                a01 += c[q, 0] * c[q, 1]
                a02 += c[q, 0] * c[q, 2]
                a11 += c[q, 1] * c[q, 1]
                a12 += c[q, 1] * c[q, 2]
                a22 += c[q, 2] * c[q, 2]
            a00 /= 9.0
            a01 /= 9.0
            a02 /= 9.0
            a11 /= 9.0
            a12 /= 9.0
            a22 /= 9.0
            det = a00 * a12 * a12 + a01 * a01 * a22 + a02 * a02 * a11 - a00 * a11 * a22 - 2 * a01 * a02 * a12
            m00 = (a12 * a12 - a11 * a22) / det
            m01 = (a01 * a22 - a02 * a12) / det
            m02 = (a02 * a11 - a01 * a12) / det
            m11 = (a02 * a02 - a00 * a22) / det
            m12 = (a00 * a12 - a01 * a02) / det
            m22 = (a01 * a01 - a00 * a11) / det
            for qi in range(9):
                i = rows[qi]
                if i < 0:
                    continue
                v0 = m00 * c[qi, 0] + m01 * c[qi, 1] + m02 * c[qi, 2]
                v1 = m01 * c[qi, 0] + m11 * c[qi, 1] + m12 * c[qi, 2]
                v2 = m02 * c[qi, 0] + m12 * c[qi, 1] + m22 * c[qi, 2]
                for qj in range(9):
                    if 0 <= rows[qj] < i:
                        continue
                    t = v0 * c[qj, 0] + v1 * c[qj, 1] + v2 * c[qj, 2]
                    slot = (qj // 3 - qi // 3 + 2) * 5 + qj % 3 - qi % 3 + 2
                    values[i, slot] += (1.0 if qi == qj else 0.0) - (1.0 + t) / 9.0


def _upper_rows(values, is_fg, idx, ys, xs, pool, parts):
    """CSR of the upper triangle, diagonal included, and the right-hand side: the factorisation
    reads nothing below the diagonal, and the matrix is symmetric. Rows are counted, then
    filled, in `parts` runs of rows on the pool."""
    n = values.shape[0]
    edges = np.linspace(0, n, parts + 1).astype(np.int64)
    counts, rhs = np.zeros(n + 1, np.int64), np.zeros(n)
    list(pool.map(lambda i: _count_upper(values, is_fg, idx, ys, xs, edges[i], edges[i + 1], counts, rhs),
                  range(parts)))
    indptr = np.cumsum(counts)
    columns, data = np.empty(indptr[-1], np.int32), np.empty(indptr[-1])
    list(pool.map(lambda i: _fill_upper(values, idx, ys, xs, edges[i], edges[i + 1], indptr, columns, data),
                  range(parts)))
    return indptr, columns, data, rhs


@nb.njit(cache=True, nogil=True)
def _count_upper(values, is_fg, idx, ys, xs, first, last, counts, rhs):
    """For rows first..last - 1: their entries on or above the diagonal (counts[i + 1]), and
    the right-hand side that their known foreground neighbours make."""
    for i in range(first, last):
        for s in range(25):
            if values[i, s] != 0.0:
                y, x = ys[i] + s // 5 - 2, xs[i] + s % 5 - 2
                j = idx[y, x]
                if j >= i:
                    counts[i + 1] += 1
                elif j < 0 and is_fg[y, x]:
                    rhs[i] -= values[i, s]


@nb.njit(cache=True, nogil=True)
def _fill_upper(values, idx, ys, xs, first, last, indptr, columns, data):
    for i in range(first, last):
        at = indptr[i]
        for s in range(25):
            if values[i, s] != 0.0:
                j = idx[ys[i] + s // 5 - 2, xs[i] + s % 5 - 2]
                if j >= i:
                    columns[at], data[at] = j, values[i, s]
                    at += 1


@nb.njit(cache=True, nogil=True)
def erode(mask, size, outside):
    """scipy.ndimage.minimum_filter(mask, size, mode="constant", cval=outside) of a bool mask:
    True where a size x size window (from size // 2 before to the rest after) is all True,
    counting pixels outside the image as `outside`. Running counts along each row, then down
    the columns a whole row at a time."""
    out = np.empty_like(mask)
    h, w = mask.shape
    before = size // 2
    falses = np.zeros(max(h, w) + 1, np.int64)
    rows = np.empty_like(mask)
    for y in range(h):
        for x in range(w):
            falses[x + 1] = falses[x] + (not mask[y, x])
        for x in range(w):
            lo, hi = x - before, x - before + size
            rows[y, x] = falses[min(hi, w)] == falses[max(lo, 0)] and (outside or (lo >= 0 and hi <= w))
    # down the columns, a whole row at a time: counts of False rows in each column's window
    counts = np.zeros(w, np.int64)
    for y in range(min(size - before - 1, h)):  # the window of row 0 before it is moved on
        for x in range(w):
            counts[x] += not rows[y, x]
    for y in range(h):
        lo, hi = y - before, y - before + size
        if hi - 1 < h:
            for x in range(w):
                counts[x] += not rows[hi - 1, x]
        inside = outside or (lo >= 0 and hi <= h)
        for x in range(w):
            out[y, x] = counts[x] == 0 and inside
        if lo >= 0:
            for x in range(w):
                counts[x] -= not rows[lo, x]
    return out


@nb.njit(cache=True, nogil=True)
def neighbourhood(ys, xs, radius, height, width):
    """Pixels within `radius` (square) of the listed ones, and within radius + 1,
    as coordinate arrays (active ys, xs, ring ys, xs); separable box counts
    over the listed pixels' bounding box."""
    y0, y1 = max(ys.min() - radius - 1, 0), min(ys.max() + radius + 2, height)
    x0, x1 = max(xs.min() - radius - 1, 0), min(xs.max() + radius + 2, width)
    h, w = y1 - y0, x1 - x0
    seeds = np.zeros((h + 1, w + 1), np.int32)  # 2D prefix sums of seed marks
    for i in range(ys.shape[0]):
        seeds[ys[i] - y0 + 1, xs[i] - x0 + 1] = 1
    for y in range(1, h + 1):
        for x in range(1, w + 1):
            seeds[y, x] += seeds[y - 1, x] + seeds[y, x - 1] - seeds[y - 1, x - 1]
    counts = np.zeros(2, np.int64)
    near = np.zeros((h, w), np.uint8)
    for y in range(h):
        for x in range(w):
            for r in (radius, radius + 1):
                ya, yb, xa, xb = max(y - r, 0), min(y + r + 1, h), max(x - r, 0), min(x + r + 1, w)
                if seeds[yb, xb] - seeds[ya, xb] - seeds[yb, xa] + seeds[ya, xa] > 0:
                    near[y, x] += 1
                    counts[r - radius] += 1
    ay, ax = np.empty(counts[0], np.int64), np.empty(counts[0], np.int64)
    ry, rx = np.empty(counts[1], np.int64), np.empty(counts[1], np.int64)
    i = j = 0
    for y in range(h):
        for x in range(w):
            if near[y, x] == 2:
                ay[i], ax[i] = y + y0, x + x0
                i += 1
            if near[y, x] > 0:
                ry[j], rx[j] = y + y0, x + x0
                j += 1
    return ay, ax, ry, rx


@nb.njit(cache=True, nogil=True)
def fb_start(fg, bg, coarse_fg, coarse_bg, ry, rx, first, last):
    """A level's fg/bg at ring pixels first..last - 1 of (ry, rx): the previous level's
    nearest-neighbour resize, as in pymatting."""
    height, width = fg.shape[:2]
    for p in range(first, last):
        y, x = ry[p], rx[p]
        cy, cx = y * coarse_fg.shape[0] // height, x * coarse_fg.shape[1] // width
        fg[y, x] = coarse_fg[cy, cx]
        bg[y, x] = coarse_bg[cy, cx]


@nb.njit(cache=True, nogil=True)
def fb_sweep(image, alpha, rows, cols, fg, bg, ay, ax, first, last, regularization, gradient_weight):
    """One Gauss-Seidel sweep of estimate_foreground_ml over active pixels first..last - 1,
    neighbours clamped to the level."""
    height, width = rows.shape[0], cols.shape[0]
    b = np.empty((2, 3), np.float32)
    regularization, gradient_weight = np.float32(regularization), np.float32(gradient_weight)
    # pymatting's number types, step for step: a1, a01, a11 and the solve in float64
    for p in range(first, last):
        y, x = ay[p], ax[p]
        a0 = alpha[rows[y], cols[x]]
        a1 = 1.0 - a0
        a00, a01, a11 = a0 * a0, a0 * a1, a1 * a1
        for c in range(3):
            value = np.float32(image[rows[y], cols[x], c] / 255.0)
            b[0, c] = a0 * value
            b[1, c] = a1 * value
        for d in range(4):
            y2 = min(max(y + (d == 3) - (d == 2), 0), height - 1)
            x2 = min(max(x + (d == 1) - (d == 0), 0), width - 1)
            da = regularization + gradient_weight * abs(a0 - alpha[rows[y2], cols[x2]])
            a00 += da
            a11 += da
            for c in range(3):
                b[0, c] += da * fg[y2, x2, c]
                b[1, c] += da * bg[y2, x2, c]
        inv_det = 1.0 / (a00 * a11 - a01 * a01)
        b00, b01, b11 = inv_det * a11, inv_det * -a01, inv_det * a00
        for c in range(3):
            fg[y, x, c] = max(0.0, min(1.0, b00 * b[0, c] + b01 * b[1, c]))
            bg[y, x, c] = max(0.0, min(1.0, b01 * b[0, c] + b11 * b[1, c]))


@nb.njit(cache=True, nogil=True)
def put_colours(fg, ys, xs, out):
    """out[y, x, :3] = fg[y, x] * 255 clipped and truncated to uint8, as numpy's astype, at the listed pixels."""
    for p in range(ys.shape[0]):
        y, x = ys[p], xs[p]
        for c in range(3):
            out[y, x, c] = np.uint8(min(max(fg[y, x, c] * np.float32(255), 0), 255))


@nb.njit(cache=True, nogil=True)
def mean_colours(image, alpha, rows, cols):
    """estimate_foreground_ml's start: the mean colour where alpha > 0.9 and
    where alpha < 0.1, as 1x1 images, summed in its order and precision."""
    fg, bg = np.zeros((1, 1, 3), np.float32), np.zeros((1, 1, 3), np.float32)
    fg_count = bg_count = 0
    for y in rows:
        for x in cols:
            a = alpha[y, x]
            for c in range(3):
                value = np.float32(image[y, x, c] / 255.0)
                if a > 0.9:
                    fg[0, 0, c] += value
                if a < 0.1:
                    bg[0, 0, c] += value
            fg_count += a > 0.9
            bg_count += a < 0.1
    fg /= fg_count + 1e-5
    bg /= bg_count + 1e-5
    return fg, bg


@nb.njit(cache=True, nogil=True)
def compose(image, alpha, out):
    """out[..., :3] = image where alpha is 1, else 0 (one pass, no temporaries)."""
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            keep = alpha[y, x] == 1.0
            for c in range(3):
                out[y, x, c] = image[y, x, c] if keep else 0
