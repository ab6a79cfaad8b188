"""The elimination order for the matting system's sparse Cholesky (``_cholesky.solve``):
nested dissection of the unknown pixels, cut where the band is narrow."""

import numba as nb
import numpy as np

from .cores import MATTING_THREADS, pool_one_core_each


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
    node = -1
    if b - a > leaf:
        y, x = ys[order[a:b]], xs[order[a:b]]
        c, cut = _cut(y, x, 0.2)
        lo, hi = np.sum(c < cut), np.sum(c >= cut + 2)
        if lo > 0 and hi > 0:
            i, j, k = 0, lo, lo + hi
            for p in range(b - a):
                if c[p] < cut:
                    scratch[i] = order[a + p]
                    i += 1
                elif c[p] >= cut + 2:
                    scratch[j] = order[a + p]
                    j += 1
                else:
                    scratch[k] = order[a + p]
                    k += 1
            order[a:b] = scratch[:b - a]
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


def nested_dissection(ys, xs, leaf=64, threads=None):
    """Order pixels so that sparse Cholesky fills in little: split the set by
    a 2-pixel-wide line across x or y (the 5x5 stencil cannot reach across
    it) where it is narrow for the parts it leaves (``_cut``), recurse, put
    the line last. Returns the order and
    the elimination tree: node k owns order[starts[k]:ends[k]], its children are
    kids[kid_ptr[k]:kid_ptr[k+1]], and nodes come in postorder.
    With two threads or more (default: ``MATTING_THREADS``) the two sides of the first
    line are dissected side by side: the same order and tree as on one.
    """
    ys, xs = ys.astype(np.int64), xs.astype(np.int64)
    sides = _first_cut(ys, xs, leaf) if (threads or MATTING_THREADS) > 1 else None
    if sides is None:
        order, starts, ends, kids = _dissect_part(ys, xs, np.arange(len(ys)), leaf)
    else:
        first, second, line = sides
        with pool_one_core_each(2, "segkit-dissect") as pool:
            (o1, s1, e1, k1), (o2, s2, e2, k2) = pool.map(lambda part: _dissect_part(ys, xs, part, leaf),
                                                          (first, second))
        n1, n2 = len(s1), len(s2)
        order = np.concatenate([o1, o2, line])
        starts = np.concatenate([s1, s2 + len(o1), [len(o1) + len(o2)]])
        ends = np.concatenate([e1, e2 + len(o1), [len(order)]])
        kids = np.concatenate([k1, np.where(k2 >= 0, k2 + n1, -1), [[n1 - 1, n1 + n2 - 1]]])
    kid_ptr = np.concatenate([[0], np.cumsum((kids >= 0).sum(axis=1))]).astype(np.int64)
    return order, starts, ends, kid_ptr, kids[kids >= 0]


def _first_cut(ys, xs, leaf):
    """The pixels on each side of ``_dissect``'s first line, and on it; None where it makes none."""
    if len(ys) <= leaf:
        return None
    c, cut = _cut(ys, xs, 0.2)
    before, after = c < cut, c >= cut + 2
    if not (before.any() and after.any()):
        return None
    return np.flatnonzero(before), np.flatnonzero(after), np.flatnonzero(~before & ~after)


def _dissect_part(ys, xs, order, leaf):
    """Nested dissection of the pixels listed in `order` (it is reordered): the order and the
    subtree's nodes (starts, ends, kids; -1 for none), its root last."""
    n = len(order)
    starts, ends = np.zeros(2 * n + 1, np.int64), np.zeros(2 * n + 1, np.int64)
    kids, count = np.full((2 * n + 1, 2), -1, np.int64), np.zeros(1, np.int64)
    _dissect(ys, xs, order, np.empty(n, np.int64), 0, n, leaf, starts, ends, kids, count)
    nodes = count[0]
    return order, starts[:nodes], ends[:nodes], kids[:nodes]
