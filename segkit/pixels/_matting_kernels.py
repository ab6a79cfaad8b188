"""Numba kernels behind :mod:`segkit.pixels.matting`.

They exist because pymatting's building blocks work on every pixel of the
image, while rembg's trimaps leave only a few percent of the pixels unknown:

* ``band_system`` builds pymatting's closed-form matting system (the same
  numbers as ``cf_laplacian`` + the unknown/known split) for the unknown
  pixels only, with the known pixels folded into the right-hand side.
* ``nested_dissection`` + ``solve`` solve that system directly (multifrontal
  sparse Cholesky, LAPACK/BLAS on dense fronts). Iterative solvers were
  measured and rejected: with pymatting's epsilon of 1e-7 the system is so
  ill-conditioned that CG with Jacobi, ichol, block-Jacobi or AMG (pyamg)
  preconditioners, even warm-started from the mask or from a half-resolution
  solution, stay visibly off rembg's alpha after many iterations (the error
  is global, not local), while the direct solve matches it; scipy's SuperLU
  with the same ordering was slower (bench/matting_bench.py).
* ``neighbourhood`` + ``fb_level`` run pymatting's ``estimate_foreground_ml``
  update on the pixels near the band instead of the whole image.
"""

import ctypes
import glob
import os
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import scipy
import numpy as np
from numba.extending import get_cython_function_address
from numba.typed import List


def _blas(module, name, nargs):
    address = get_cython_function_address("scipy.linalg.cython_" + module, name)
    return ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * nargs))(address)


# LAPACK/BLAS from scipy, passed to the kernel as arguments so numba can cache it: for
# float64 and for float32 fronts.
BLAS = {np.float64: (_blas("lapack", "dpotrf", 5), _blas("blas", "dtrsm", 11), _blas("blas", "dsyrk", 10)),
        np.float32: (_blas("lapack", "spotrf", 5), _blas("blas", "strsm", 11), _blas("blas", "ssyrk", 10))}


# Pixel work split into this many horizontal stripes, run on however many threads there are.
STRIPES = 8
# Subtrees factorised again go in this many spans: more, smaller ones hold less memory at once.
REDO_SPANS = 16


def _openblas_threads_setter():
    """OpenBLAS's per-thread thread count, or None. Its worker threads spin;
    on fronts of a few hundred rows with the other cores busy they made the
    solve many times slower, so the solve runs single-threaded."""
    libs = os.path.join(os.path.dirname(scipy.__file__), os.pardir, "scipy.libs", "libscipy_openblas*")
    try:
        return ctypes.CDLL(sorted(glob.glob(libs))[0]).openblas_set_num_threads_local
    except (IndexError, OSError, AttributeError):
        return None


_SET_BLAS_THREADS = _openblas_threads_setter()


def solve(indptr, indices, data, b, starts, ends, kid_ptr, kids, threads=None, budget=None, precision=np.float32):
    """Solve the SPD system A x = b (A's upper triangle in CSR, rows in nested-dissection order,
    tree from nested_dissection) with a multifrontal Cholesky. Independent
    subtrees are factorised on `threads` threads (default: CPU count, at most
    4), then their ancestors. Fronts are eliminated in `precision`: float32
    by default, as BLAS does twice the float32 flops per cycle and its alpha
    is float64's after rounding to uint8 (bench/RESULTS.md); the back
    substitution accumulates in float64. The factor is kept in float32 rows
    either way, within `budget` bytes (wide unknown regions fill in as
    n log n): over it, the rows of the widest fronts are kept and the
    subtrees below them are factorised again just before their back
    substitution.
    Returns None if A is not positive definite."""
    nodes = len(starts)
    border_ptr, border_idx = _symbolic(indptr, indices, starts, ends, kid_ptr, kids)
    nv = ends - starts
    width = nv + np.diff(border_ptr)
    size = nv * (width + 1)
    first = np.arange(nodes)  # first node of each subtree, in postorder
    for k in range(nodes):
        if kid_ptr[k + 1] > kid_ptr[k]:
            first[k] = first[kids[kid_ptr[k]]]
    parent = np.full(nodes, -1)
    parent[kids] = np.repeat(np.arange(nodes), np.diff(kid_ptr))
    threads = threads or min(os.cpu_count() or 1, 4)
    recompute = budget is not None and 4 * size.sum() > budget
    tasks = _subtrees(kid_ptr, kids, first, nv * width**2, 4 * threads if threads > 1 else 1)
    in_task = np.zeros(nodes, np.bool_)
    external = np.full(nodes, -1, np.int64)
    for i, k in enumerate(tasks):
        in_task[first[k]:k + 1] = True
        external[k] = i

    def rows_for(kept):
        offsets = np.full(nodes, -1, np.int64)
        offsets[kept] = np.cumsum(size[kept]) - size[kept]
        return offsets, np.empty(size[kept].sum(), np.float32)

    kept, redone = np.ones(nodes, np.bool_), []
    if recompute:
        kept, redone = _widest_fronts(~in_task, width, size, parent, first, budget // 4, REDO_SPANS)
    offsets, factors = rows_for(kept)
    system = (indptr, indices, data, b, starts, ends, kid_ptr, kids, parent, border_ptr, border_idx)
    # each subtree's last front (Schur complement) is handed to its ancestors in one flat
    # buffer, not a numba typed List: building one from Python compiles code in every process
    # (only its Schur complement: the eliminated rows above it are never read again)
    handover_ptr = np.concatenate([[0], np.cumsum((width[tasks] - nv[tasks] + 1) ** 2)]).astype(np.int64)
    blas = BLAS[precision]
    handover = np.empty(handover_ptr[-1] if len(tasks) > 1 else 0, precision)  # its type picks the fronts'
    no_skip, no_external = np.zeros(nodes, np.bool_), np.full(nodes, -1, np.int64)
    x = np.zeros(len(b))

    def single_blas(function, *args):
        previous = _SET_BLAS_THREADS(1) if _SET_BLAS_THREADS else None
        try:
            return function(*args)
        finally:
            if _SET_BLAS_THREADS:
                _SET_BLAS_THREADS(previous)

    def subtree(k, rows, out, keep=-1):
        return single_blas(_factor, *system, rows, out, first[k], k, no_skip, external, handover, handover_ptr,
                           keep, *blas)

    def redo(span):  # factor the nodes not kept in span again, keeping their rows, and back-substitute them
        lo, hi = span
        again = np.zeros(nodes, np.bool_)
        again[lo:hi + 1] = ~kept[lo:hi + 1]
        rows, out = rows_for(again)
        ok = single_blas(_factor, *system, rows, out, lo, hi, kept, no_external, handover, handover_ptr, -1, *blas)
        _back_substitute(starts, ends, border_ptr, border_idx, rows, out, x, lo, hi)
        return ok

    with ThreadPoolExecutor(threads) as pool:
        if tasks == [nodes - 1]:  # the whole tree as one task
            ok = subtree(nodes - 1, offsets, factors)
        else:
            ok = all(pool.map(lambda i: subtree(tasks[i], offsets, factors, keep=i), range(len(tasks))))
            ok = ok and single_blas(_factor, *system, offsets, factors, 0, nodes - 1, in_task, external,
                                    handover, handover_ptr, -1, *blas)
            handover = np.empty(0, precision)  # the fronts are assembled: free them before the back substitution
        if not ok:
            return None
        # the ancestors first, then the kept rows of each subtree side by side, then what is redone
        _back_substitute(starts, ends, border_ptr, border_idx, np.where(in_task, -1, offsets), factors, x, 0,
                         nodes - 1)
        list(pool.map(lambda k: _back_substitute(starts, ends, border_ptr, border_idx, offsets, factors, x,
                                                 first[k], k), tasks))
        if recompute and not all(pool.map(redo, redone)):
            return None
    return x


def _widest_fronts(kept, width, size, parent, first, words, parts):
    """The nodes whose rows to keep within `words` floats, besides the `kept` ones, and the
    spans of nodes (first, last) in which the others are to be factorised again, about
    `parts` of them. Wide fronts cost the most flops per byte kept, so the widest go first;
    a node is only kept with its ancestors, which leaves whole subtrees to do again."""
    nodes = len(width)
    narrowest = np.where(kept, np.inf, width)  # the narrowest front on the way to the root
    for k in range(nodes - 2, -1, -1):  # in postorder, parents come after their children
        narrowest[k] = min(narrowest[k], narrowest[parent[k]])
    order = np.lexsort((-np.arange(nodes), -narrowest))  # on ties, parents first
    kept = kept.copy()
    kept[order[np.cumsum(size[order]) <= words]] = True
    roots = np.flatnonzero(~kept & ((parent < 0) | kept[np.maximum(parent, 0)]))
    # neighbouring subtrees (in postorder) go together, in spans of similar total size
    done = np.cumsum(np.where(kept, 0, size))
    cuts = np.searchsorted(done[roots], np.linspace(0, done[-1], parts + 1)[1:-1], side="right")
    spans = [(first[group[0]], group[-1]) for group in np.split(roots, cuts) if len(group)]

    def span_size(span):
        return done[span[1]] - (done[span[0] - 1] if span[0] else 0)

    return kept, sorted(spans, key=span_size, reverse=True)  # the largest first, for balance


def _subtrees(kid_ptr, kids, first, weight, parts):
    """Disjoint subtrees to work on separately: split the heaviest one into its
    children until there are `parts` of them or it is a leaf."""
    nodes = len(weight)
    below = np.concatenate([[0], np.cumsum(weight)])
    total = below[1:] - below[first]  # a subtree is a run of nodes in postorder
    tasks = [nodes - 1]
    while len(tasks) < parts:
        k = max(tasks, key=lambda t: total[t])
        if kid_ptr[k + 1] == kid_ptr[k]:
            break
        tasks.remove(k)
        tasks += list(kids[kid_ptr[k]:kid_ptr[k + 1]])
    return sorted(tasks, key=lambda t: -total[t])


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
    image = full_image[oy:oy + h, ox:ox + w]
    used = _used_windows(ys, xs, oy, ox, height, width, h, w)
    values = np.zeros((len(ys), 25))
    # a window touches the rows beside its centre: stripes that leave two rows out at their ends
    # never share a pixel; the rows left out come second. As many stripes whatever the threads,
    # so that the sums, and the alpha, do not depend on the machine.
    edges = np.linspace(0, h, max(1, min(STRIPES, h // 8)) + 1).astype(np.int64)
    inner = [(a, max(a, b - 2)) for a, b in zip(edges[:-1], edges[1:])]
    seams = [(max(a, b - 2), b) for a, b in zip(edges[:-1], edges[1:])]
    with ThreadPoolExecutor(threads or min(os.cpu_count() or 1, 4)) as pool:
        for stripes in (inner, seams):
            list(pool.map(lambda rows: _add_windows(image, used, idx, values, eps, *rows), stripes))
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
def _add_windows(image, used, idx, values, eps, row_from, row_to):
    """Add the used windows centred on rows row_from..row_to - 1 to values (25 slots per
    unknown pixel: its 5x5 neighbourhood). Entries that land below the diagonal between
    two unknown pixels are left out: the solver reads the upper triangle only."""
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
                    total += image[cy + q // 3 - 1, cx + q % 3 - 1, ch] / 255.0
                for q in range(9):
                    c[q, ch] = image[cy + q // 3 - 1, cx + q % 3 - 1, ch] / 255.0 - total / 9.0
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
def _cut(y, x, smallest):
    """Where to cut pixels (y, x): the axis and the 2-pixel-wide line across it that minimise
    separator / (pixels before * pixels after), with at least `smallest` of them on each side.
    A fixed cut at the median of the longer side crosses a ragged band (hair, fur) at its widest
    as often as not; this finds its narrow places. Returns the coordinates along the chosen axis
    and the line's first coordinate."""
    n = y.shape[0]
    best, best_c, best_cut = np.inf, y, -1
    for c in (x, y):
        c0 = c.min()
        counts = np.bincount(c - c0)
        before = 0
        for t in range(counts.shape[0] - 1):
            line = counts[t] + counts[t + 1]
            after = n - before - line
            if before >= smallest * n and after >= smallest * n and line / (before * after) < best:
                best, best_c, best_cut = line / (before * after), c, t + c0
            before += counts[t]
    if best_cut < 0:  # too few pixels or too thin to cut with the balance asked: at the median
        best_c = x if x.max() - x.min() >= y.max() - y.min() else y
        best_cut = int(np.median(best_c))
    return best_c, best_cut


@nb.njit(cache=True, nogil=True)
def _dissect(ys, xs, order, scratch, a, b, leaf, starts, ends, kids, count):
    """Node for order[a:b], after its children; ys and xs are permuted along with order,
    so that each part's coordinates are one slice."""
    node = -1
    if b - a > leaf:
        y, x = ys[a:b], xs[a:b]
        c, cut = _cut(y, x, 0.2)
        lo = hi = 0
        for p in range(b - a):
            lo += c[p] < cut
            hi += c[p] >= cut + 2
        if lo > 0 and hi > 0:
            i, j, k = 0, lo, lo + hi
            for p in range(b - a):
                if c[p] < cut:
                    t, i = i, i + 1
                elif c[p] >= cut + 2:
                    t, j = j, j + 1
                else:
                    t, k = k, k + 1
                scratch[0, t], scratch[1, t], scratch[2, t] = order[a + p], y[p], x[p]
            order[a:b], ys[a:b], xs[a:b] = scratch[0, :b - a], scratch[1, :b - a], scratch[2, :b - a]
            first = _dissect(ys, xs, order, scratch, a, a + lo, leaf, starts, ends, kids, count)
            second = _dissect(ys, xs, order, scratch, a + lo, a + lo + hi, leaf, starts, ends, kids, count)
            node = count[0]
            kids[node, 0], kids[node, 1] = first, second
            starts[node], ends[node] = a + lo + hi, b
            count[0] += 1
    if node < 0:
        node = count[0]
        starts[node], ends[node] = a, b
        count[0] += 1
    return node


def nested_dissection(ys, xs, leaf=64):
    """Order pixels so that sparse Cholesky fills in little: split the set by
    a 2-pixel-wide line across x or y (the 5x5 stencil cannot reach across
    it) where it is narrow for the parts it leaves (``_cut``), recurse, put
    the line last. Returns the order and
    the elimination tree: node k owns order[starts[k]:ends[k]], its children are
    kids[kid_ptr[k]:kid_ptr[k+1]], and nodes come in postorder.
    """
    n = len(ys)
    order = np.arange(n, dtype=np.int64)
    starts, ends = np.zeros(2 * n + 1, np.int64), np.zeros(2 * n + 1, np.int64)
    kids, count = np.full((2 * n + 1, 2), -1, np.int64), np.zeros(1, np.int64)
    ys, xs = ys.astype(np.int64), xs.astype(np.int64)  # copies, permuted as it goes
    _dissect(ys, xs, order, np.empty((3, n), np.int64), 0, n, leaf, starts, ends, kids, count)
    nodes = count[0]
    kids = kids[:nodes]
    kid_ptr = np.concatenate([[0], np.cumsum((kids >= 0).sum(axis=1))]).astype(np.int64)
    return order, starts[:nodes], ends[:nodes], kid_ptr, kids[kids >= 0]


@nb.njit(cache=True, nogil=True)
def _symbolic(indptr, indices, starts, ends, kid_ptr, kids):
    """Border of each tree node: the later variables its front couples to
    (its rows' columns past the node, and its children's borders)."""
    n, nodes = indptr.shape[0] - 1, starts.shape[0]
    marker = np.full(n, -1, np.int64)
    found = np.empty(n, np.int64)
    border_ptr = np.zeros(nodes + 1, np.int64)
    border_idx = np.empty(4 * n + 1024, np.int64)
    for k in range(nodes):
        e, m = ends[k], 0
        for r in range(starts[k], e):
            for p in range(indptr[r], indptr[r + 1]):
                j = indices[p]
                if j >= e and marker[j] != k:
                    marker[j] = k
                    found[m] = j
                    m += 1
        for q in range(kid_ptr[k], kid_ptr[k + 1]):
            for p in range(border_ptr[kids[q]], border_ptr[kids[q] + 1]):
                j = border_idx[p]
                if j >= e and marker[j] != k:
                    marker[j] = k
                    found[m] = j
                    m += 1
        start = border_ptr[k]
        if start + m > border_idx.shape[0]:
            border_idx = np.concatenate((border_idx, np.empty(border_idx.shape[0] + m, np.int64)))
        border_idx[start:start + m] = np.sort(found[:m])
        border_ptr[k + 1] = start + m
    return border_ptr, border_idx


@nb.njit(cache=True, nogil=True)
def _factor(indptr, indices, data, b, starts, ends, kid_ptr, kids, parent, border_ptr, border_idx, offsets, factors,
            first, last, skip, external, handover, handover_ptr, keep, potrf, trsm, syrk):
    """Multifrontal Cholesky of nodes first..last (postorder): each node
    assembles a dense front from A and its children's Schur complements,
    eliminates its own variables with LAPACK/BLAS (its front rows go to
    factors[offsets[k]:], unless that is -1) and passes its Schur complement up. The right-hand side rides
    along as the front's last column, so this is also the forward solve.
    Fronts take handover's number type (float64 or float32; the BLAS must match).
    Skipped nodes were done elsewhere; a skipped node k with external[k] = i >= 0
    hands over its Schur complement (with the right-hand side's column) in
    handover[handover_ptr[i]:handover_ptr[i + 1]]. With keep = i >= 0, the last
    node's is stored there.
    Returns whether the matrix was positive definite."""
    local = np.empty(b.shape[0], np.int64)  # written for each front's variables before it is read
    chars = np.array([ord("L"), ord("R"), ord("T"), ord("N")], np.uint8)
    scalars = np.array([1.0, -1.0], handover.dtype)
    ints = np.zeros(4, np.int32)
    pending, ranks_pending = List(), List()
    front = np.zeros((1, 1), handover.dtype)
    nv = 0
    for k in range(first, last + 1):
        if skip[k]:
            i = external[k]
            if i >= 0:
                d = border_ptr[k + 1] - border_ptr[k] + 1
                pending.append(handover[handover_ptr[i]:handover_ptr[i + 1]].reshape(d, d))
                ranks_pending.append(0)
            continue
        s, e = starts[k], ends[k]
        nv = e - s
        border = border_idx[border_ptr[k]:border_ptr[k + 1]]
        m = border.shape[0]
        f = nv + m
        for i in range(nv):
            local[s + i] = i
        for i in range(m):
            local[border[i]] = nv + i
        # C row-major upper triangle == Fortran lower triangle for LAPACK
        front = np.zeros((f + 1, f + 1), handover.dtype)
        for r in range(s, e):
            front[r - s, f] = b[r]
            for p in range(indptr[r], indptr[r + 1]):
                j = indices[p]
                if r <= j < e:
                    front[r - s, j - s] = data[p]
                elif j >= e:
                    front[r - s, local[j]] = data[p]
        for q in range(kid_ptr[k + 1] - 1, kid_ptr[k] - 1, -1):
            update, offset = pending.pop(), ranks_pending.pop()
            c = kids[q]
            # the child's border, sorted, lands in increasing places of this front (its own variables,
            # then its border, both sorted): the child's upper triangle stays upper
            to = local[border_idx[border_ptr[c]:border_ptr[c + 1]]]
            for i in range(to.shape[0]):
                row, out = update[offset + i, offset:], front[to[i]]
                out[f] += row[-1]
                for j in range(i, to.shape[0]):
                    out[to[j]] += row[j]
        if nv > 0:
            ints[0], ints[1], ints[2] = nv, f + 1, m + 1
            potrf(chars[0:].ctypes, ints[0:].ctypes, front.ctypes, ints[1:].ctypes, ints[3:].ctypes)
            if ints[3] != 0:
                return False
            right = front[:, nv:]
            trsm(chars[1:].ctypes, chars[0:].ctypes, chars[2:].ctypes, chars[3:].ctypes, ints[2:].ctypes,
                 ints[0:].ctypes, scalars[0:].ctypes, front.ctypes, ints[1:].ctypes, right.ctypes, ints[1:].ctypes)
            schur = front[nv:, nv:]
            syrk(chars[0:].ctypes, chars[3:].ctypes, ints[2:].ctypes, ints[0:].ctypes, scalars[1:].ctypes,
                 right.ctypes, ints[1:].ctypes, scalars[0:].ctypes, schur.ctypes, ints[1:].ctypes)
            if offsets[k] >= 0:
                factors[offsets[k]:offsets[k] + nv * (f + 1)] = front[:nv].ravel()
        if parent[k] < 0 or not skip[parent[k]]:  # else no one here assembles it: let it go
            pending.append(front)
            ranks_pending.append(nv)
    if keep >= 0:
        d = front.shape[0] - nv
        handover[handover_ptr[keep]:handover_ptr[keep + 1]].reshape(d, d)[:, :] = front[nv:, nv:]
    return True


@nb.njit(cache=True, nogil=True)
def _back_substitute(starts, ends, border_ptr, border_idx, offsets, factors, x, first, last):
    """x for nodes last..first with kept rows (the forward solve already sits
    in their last column); later variables must be solved already."""
    for k in range(last, first - 1, -1):
        if offsets[k] < 0:
            continue
        s, nv = starts[k], ends[k] - starts[k]
        border = border_idx[border_ptr[k]:border_ptr[k + 1]]
        width = nv + border.shape[0] + 1
        for i in range(nv - 1, -1, -1):
            row = factors[offsets[k] + i * width:offsets[k] + (i + 1) * width]
            acc = np.float64(row[-1])
            for j in range(border.shape[0]):
                acc -= row[nv + j] * x[border[j]]
            for j in range(i + 1, nv):
                acc -= row[j] * x[s + j]
            x[s + i] = acc / row[i]
    return x


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


def fb_level(image, alpha, rows, cols, coarse_fg, coarse_bg, ay, ax, ry, rx,
             iterations, regularization, gradient_weight, threads=1):
    """One finer level of pymatting's estimate_foreground_ml on the active
    pixels (ay, ax, in row order): the level's pixel (y, x) samples the full uint8 image and
    float32 alpha at (rows[y], cols[x]); fg/bg start, at the ring pixels
    (ry, rx), as the previous level's nearest-neighbour resize, as in
    pymatting; then Gauss-Seidel sweeps, neighbours clamped to the level.
    With `threads`, each sweep runs in horizontal stripes side by side, then
    the two rows at each seam (a pixel reads the rows above and below it)."""
    fg, bg = _fb_start(rows.shape[0], cols.shape[0], coarse_fg, coarse_bg, ry, rx)
    regularization, gradient_weight = np.float32(regularization), np.float32(gradient_weight)
    phases = _stripes(ay)

    def sweep(span):
        _fb_sweep(image, alpha, rows, cols, fg, bg, ay, ax, span[0], span[1], regularization, gradient_weight)

    with ThreadPoolExecutor(threads) as pool:
        for _ in range(iterations):
            for spans in phases:
                list(pool.map(sweep, spans)) if len(spans) > 1 else sweep(spans[0])
    return fg, bg


def _stripes(ay, smallest=10000):
    """Spans of the active pixels (sorted by row) to sweep: stripes side by side, then the seams;
    as many whatever the threads, so that the colours do not depend on the machine."""
    stripes = min(STRIPES, len(ay) // smallest)
    if stripes < 2:
        return [[(0, len(ay))]]
    seams = np.unique(ay[len(ay) * np.arange(1, stripes) // stripes])
    if len(seams) < stripes - 1 or np.any(np.diff(seams) < 3):
        return [[(0, len(ay))]]
    at = np.searchsorted(ay, np.concatenate([seams - 1, seams + 1]))
    starts, ends = np.concatenate([[0], at[len(seams):]]), np.concatenate([at[:len(seams)], [len(ay)]])
    return [list(zip(starts, ends)), list(zip(at[:len(seams)], at[len(seams):]))]


@nb.njit(cache=True, nogil=True)
def _fb_start(height, width, coarse_fg, coarse_bg, ry, rx):
    fg = np.empty((height, width, 3), np.float32)
    bg = np.empty((height, width, 3), np.float32)
    for p in range(ry.shape[0]):
        y, x = ry[p], rx[p]
        cy, cx = y * coarse_fg.shape[0] // height, x * coarse_fg.shape[1] // width
        fg[y, x] = coarse_fg[cy, cx]
        bg[y, x] = coarse_bg[cy, cx]
    return fg, bg


@nb.njit(cache=True, nogil=True)
def _fb_sweep(image, alpha, rows, cols, fg, bg, ay, ax, first, last, regularization, gradient_weight):
    height, width = rows.shape[0], cols.shape[0]
    b = np.empty((2, 3), np.float32)
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
