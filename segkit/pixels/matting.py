"""Alpha matting for cutouts that gives rembg's answer, fast.

rembg's ``alpha_matting_cutout`` turns the model's mask into a trimap, solves
pymatting's closed-form matting over the whole image and estimates foreground
colours over the whole image. Only a few percent of the pixels are unknown,
so :func:`alpha_matting_fast` solves the same linear system for those pixels
only, with a direct solver (``_cholesky``), and estimates colours only near
them. :func:`alpha_matting_reference` keeps rembg's whole-image
behaviour for parity tests and benchmarks.

Fallback: when the trimap has no foreground, no background or no unknown
pixel (or the image is under 3 pixels high or wide), pymatting raises
ValueError and rembg's ``remove`` falls back to ``decontaminate_cutout``:
alpha = mask, colours estimated for that alpha. Both functions here do the
same, so neither raises for valid input. Note that this makes the result for
an empty band alpha = mask (as rembg), not alpha = trimap.
"""

import threading

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse.linalg import spsolve

from . import _cholesky as cholesky, _matting_kernels as kernels
from ._ordering import nested_dissection
from .cores import MATTING_THREADS, pool_one_core_each

EPSILON = 1e-7  # pymatting's cf_laplacian default, which rembg uses
# pymatting's kernels are numba ``parallel=True``. Where neither OpenMP nor TBB is
# installed, numba falls back to its workqueue layer, which aborts the whole process
# when two threads enter parallel kernels at once, so the reference's calls take turns.
# The fast path never imports pymatting: importing it compiles every one of its
# kernels, a minute on an empty numba cache.
_PYMATTING = threading.Lock()
# The Cholesky factor's rows kept, at most, in bytes per image pixel: on wide unknown
# regions the solver keeps the widest fronts' rows within it and factorises the rest
# again. rembg peaks at ~500 bytes per pixel; this keeps segkit under a quarter of it.
FACTOR_BYTES_PER_PIXEL = 32
# The foreground estimate's finer levels with this many pixels to estimate or more run their two
# sweeps side by side, in this many runs of rows.
SIDE_BY_SIDE_PIXELS = 50_000
SWEEP_RUNS = 16


def make_trimap(mask, foreground_threshold, background_threshold, erode_size):
    """rembg's trimap: 255 where mask > foreground_threshold, 0 where mask <
    background_threshold, each eroded by an erode_size square (the background
    with border_value=1), 128 elsewhere; erode_size <= 0 means scipy's default
    3x3 cross, as rembg passes structure=None. A square erosion is a separable
    minimum filter: the same pixels as binary_erosion, many times faster
    (``kernels.erode``, the two masks side by side)."""
    mask = np.asarray(mask)
    fg = mask > foreground_threshold
    bg = mask < background_threshold
    if erode_size > 0:
        with pool_one_core_each(2, "segkit-erode") as pool:
            fg, bg = pool.map(kernels.erode, (fg, bg), (erode_size,) * 2, (False, True))
    else:
        fg = ndimage.binary_erosion(fg)
        bg = ndimage.binary_erosion(bg, border_value=1)
    trimap = np.full(mask.shape, 128, np.uint8)
    trimap[fg] = 255
    trimap[bg] = 0
    return trimap


def alpha_matting_reference(image, mask, foreground_threshold, background_threshold, erode_size):
    """rembg's alpha_matting_cutout, whole-image pymatting and all, including
    remove()'s fallback on ValueError. Slow; kept to check the fast one."""
    from pymatting.alpha.estimate_alpha_cf import estimate_alpha_cf
    from pymatting.foreground.estimate_foreground_ml import estimate_foreground_ml

    image, mask = _check(image, mask)
    trimap = make_trimap(mask, foreground_threshold, background_threshold, erode_size)
    normalized = image / 255.0
    try:
        with _PYMATTING:
            alpha = estimate_alpha_cf(normalized, trimap / 255.0)
    except ValueError:
        alpha = mask / 255.0
    with _PYMATTING:
        foreground = estimate_foreground_ml(normalized, alpha)
    return np.clip(np.dstack([foreground, alpha]) * 255, 0, 255).astype(np.uint8)


def alpha_matting_fast(image, mask, foreground_threshold, background_threshold, erode_size):
    """Same output as alpha_matting_reference (RGBA uint8: estimated foreground
    and alpha), computed only where the trimap is unknown. Colours are
    estimated within a few pixels of the unknown band (or of the mask's soft
    pixels, in the fallback); further out, background pixels get RGB 0
    instead of pymatting's invisible extension of the foreground colours."""
    image, mask = _check(image, mask)
    trimap = make_trimap(mask, foreground_threshold, background_threshold, erode_size)
    out = np.zeros(image.shape[:2] + (4,), np.uint8)
    solved = _solve_alpha(image, trimap)
    if solved is None:  # rembg's fallback
        alpha = mask / np.float32(255.0)
        out[..., 3] = mask
        ys, xs = np.nonzero((mask > 0) & (mask < 255))
    else:
        alpha, ys, xs, values = solved
        np.copyto(out[..., 3], 255, where=trimap == 255)
        out[ys, xs, 3] = (values * 255).astype(np.uint8)
    kernels.compose(image, alpha, out)
    _estimate_foreground(image, alpha, ys, xs, out)
    return out


def _check(image, mask):
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]  # rembg converts RGBA to RGB
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 HxWx3, got {image.dtype} {image.shape}")
    if mask.dtype != np.uint8 or mask.shape != image.shape[:2]:
        raise ValueError(f"mask must be uint8 {image.shape[:2]}, got {mask.dtype} {mask.shape}")
    return np.ascontiguousarray(image), mask


def _solve_alpha(image, trimap, precisions=(np.float32, np.float64)):
    """Closed-form alpha for the unknown pixels: (float32 alpha of the image,
    unknown ys, xs, their float64 alpha), or None where pymatting would raise
    (see the module docstring). The Cholesky runs in the first of `precisions`
    where the system is positive definite, then a general sparse LU."""
    height, width = trimap.shape
    unknown = trimap == 128
    if min(height, width) < 3 or not (unknown.any() and (trimap == 255).any() and (trimap == 0).any()):
        return None
    ys, xs = np.nonzero(unknown)
    # the rows of the unknown pixels read pixels up to 2 away (5x5 stencil)
    y0, x0 = max(ys.min() - 2, 0), max(xs.min() - 2, 0)
    y1, x1 = min(ys.max() + 3, height), min(xs.max() + 3, width)
    order, starts, ends, kid_ptr, kids = nested_dissection(ys - y0, xs - x0)
    ys, xs = ys[order], xs[order]
    idx = np.full((y1 - y0, x1 - x0), -1, np.int32)
    idx[ys - y0, xs - x0] = np.arange(len(ys), dtype=np.int32)
    is_fg = trimap[y0:y1, x0:x1] == 255
    indptr, columns, values, rhs = kernels.band_system(image, is_fg, idx, ys - y0, xs - x0, y0, x0, EPSILON)
    del idx, is_fg
    budget = FACTOR_BYTES_PER_PIXEL * height * width
    for precision in precisions:
        x = cholesky.solve(indptr, columns, values, rhs, starts, ends, kid_ptr, kids, budget=budget,
                          precision=precision)
        if x is not None:
            break
    if x is None:  # not positive definite in floating point: general sparse LU
        upper = sparse.csr_matrix((values, columns, indptr), shape=(len(rhs),) * 2)
        x = spsolve((upper + sparse.triu(upper, 1).T).tocsc(), rhs)
    x = np.clip(x, 0, 1)
    alpha = (trimap == 255).astype(np.float32)
    alpha[ys, xs] = x
    return alpha, ys, xs, x


def _estimate_foreground(image, alpha, ys, xs, out, radius=3, coarse_side=256):
    """Foreground colours as estimate_foreground_ml gives them, computed only
    near the pixels (ys, xs) and written to out[..., :3]. That
    estimator is coarse-to-fine with two sweeps per level, so far from the
    edge its fine levels only give F = image (alpha 1) or an invisible colour
    (alpha 0). Here: run it on the whole image downsampled (nearest, like its
    own pyramid) to <= coarse_side, then do the finer levels (x2 each) only
    within `radius` pixels of (ys, xs)."""
    if len(ys) == 0:
        return
    height, width = alpha.shape
    top = max(0, int(np.ceil(np.log2(max(height, width) / coarse_side))))
    for level in range(top, -1, -1):
        h, w = -(-height // 2**level), -(-width // 2**level)
        rows, cols = np.arange(h) * height // h, np.arange(w) * width // w
        ay, ax, ry, rx = kernels.neighbourhood(ys * h // height, xs * w // width, radius, h, w)
        if level == top:
            if max(h, w) < 2:  # pymatting fails on single pixels: keep the composed colours
                return
            fg, bg = _foreground_ml(image, alpha, rows, cols)
            continue
        fg, bg = _two_sweeps(image, alpha, rows, cols, fg, bg, ay, ax, ry, rx)
    kernels.put_colours(fg, ay, ax, out)


def _two_sweeps(image, alpha, rows, cols, coarse_fg, coarse_bg, ay, ax, ry, rx):
    """A finer level: ``_level`` with its two Gauss-Seidel sweeps, on large levels the
    second on another core, a run of rows behind the first. It starts a run only once the first
    has finished the next one, and the first never reads a run the second has reached, so every
    pixel reads what it would one sweep after the other: the same colours."""
    n, ring = len(ay), len(ry)
    if MATTING_THREADS < 2 or n < SIDE_BY_SIDE_PIXELS:
        return _level(image, alpha, rows, cols, coarse_fg, coarse_bg, ay, ax, ry, rx, 2)
    fg = np.empty((len(rows), len(cols), 3), np.float32)
    bg = np.empty_like(fg)

    def start(first, last):
        kernels.fb_start(fg, bg, coarse_fg, coarse_bg, ry, rx, first, last)

    def sweep(first, last):
        kernels.fb_sweep(image, alpha, rows, cols, fg, bg, ay, ax, first, last, 1e-5, 1.0)

    # runs of whole rows (ay ascends), so that a pixel's neighbours lie in its run or the next
    edges = np.unique(np.append(np.searchsorted(ay, ay[np.linspace(0, n - 1, SWEEP_RUNS).astype(np.int64)]), n))
    runs = list(zip(edges[:-1], edges[1:]))
    done = [threading.Event() for _ in runs]

    def first_sweep():
        try:
            for run, finished in zip(runs, done):
                sweep(*run)
                finished.set()
        finally:  # on an error, release the second sweep; the error is raised below
            for finished in done:
                finished.set()

    def second_sweep():
        for i, run in enumerate(runs):
            done[min(i + 1, len(runs) - 1)].wait()
            sweep(*run)

    with pool_one_core_each(2, "segkit-colours") as pool:
        list(pool.map(start, (0, ring // 2), (ring // 2, ring)))  # the ring's halves: their pixels differ
        for sweeping in [pool.submit(first_sweep), pool.submit(second_sweep)]:
            sweeping.result()
    return fg, bg


def _level(image, alpha, rows, cols, coarse_fg, coarse_bg, ay, ax, ry, rx, iterations):
    """One level of pymatting's estimate_foreground_ml on the active pixels (ay, ax): the level's
    pixel (y, x) samples the full uint8 image and float32 alpha at (rows[y], cols[x]); fg/bg start
    at the ring pixels (ry, rx) as ``kernels.fb_start`` sets them, then Gauss-Seidel sweeps, one
    after the other. Every level goes through the same two kernels, so warming them up once covers
    the coarse levels, the small finer ones and the large ones split over two cores."""
    fg = np.empty((len(rows), len(cols), 3), np.float32)
    bg = np.empty_like(fg)
    kernels.fb_start(fg, bg, coarse_fg, coarse_bg, ry, rx, 0, len(ry))
    for _ in range(iterations):
        kernels.fb_sweep(image, alpha, rows, cols, fg, bg, ay, ax, 0, len(ay), 1e-5, 1.0)
    return fg, bg


def _foreground_ml(image, alpha, rows, cols, small_size=32):
    """pymatting's estimate_foreground_ml (its defaults, return_background=True)
    on the image sampled at (rows, cols): its pyramid from 1x1 up, every pixel
    at every level, through the same per-level kernel as the finer levels."""
    h0, w0 = len(rows), len(cols)
    fg, bg = kernels.mean_colours(image, alpha, rows, cols)
    levels = int(np.ceil(np.log2(max(w0, h0))))
    for i in range(levels + 1):
        h, w = round(h0 ** (i / levels)), round(w0 ** (i / levels))
        ay, ax = (a.ravel() for a in np.mgrid[0:h, 0:w])
        fg, bg = _level(image, alpha, rows[np.arange(h) * h0 // h], cols[np.arange(w) * w0 // w],
                        fg, bg, ay, ax, ay, ax, 10 if max(h, w) <= small_size else 2)
    return fg, bg


# what the pipeline uses
matte = alpha_matting_fast


def warm_up() -> None:
    """Compile (or load from numba's cache) the matting kernels for the array types requests pass them:
    a small disc whose soft edge is wide enough for a solve split over threads, and the float64
    solve that takes over where float32 is not positive definite. Its colours' levels type the
    same two kernels as every finer level (``_level``)."""
    yy, xx = np.mgrid[0:64, 0:80]
    image = np.dstack([yy * 4, xx * 3, (yy + xx) * 2]).astype(np.uint8)
    mask = np.clip((24 - np.hypot(yy - 32, xx - 40)) * 20 + 128, 0, 255).astype(np.uint8)
    alpha_matting_fast(image, mask, 240, 10, 1)
    _solve_alpha(image, make_trimap(mask, 240, 10, 1), precisions=(np.float64,))
