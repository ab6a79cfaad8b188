"""Multifrontal sparse Cholesky for the matting system (``_matting_kernels.band_system``).

``_ordering.nested_dissection`` orders the unknown pixels so that the factor fills in
little, and ``solve`` factorises and solves with LAPACK/BLAS on dense fronts (``_fronts``),
independent subtrees side by side. Iterative solvers were measured and
rejected: with pymatting's epsilon of 1e-7 the system is so ill-conditioned
that CG with Jacobi, ichol, block-Jacobi or AMG (pyamg) preconditioners, even
warm-started from the mask or from a half-resolution solution, stay visibly
off rembg's alpha after many iterations (the error is global, not local),
while the direct solve matches it; scipy's SuperLU with the same ordering was
slower (bench/matting_bench.py).
"""

import numba as nb
import numpy as np

from ._blas import BLAS, ONE_BLAS_THREAD
from ._fronts import back_substitute, factor_nodes
from .cores import MATTING_THREADS, pool_one_core_each

# Subtrees factorised again go in this many spans: more, smaller ones hold less memory at once.
REDO_SPANS = 16


def solve(indptr, indices, data, b, starts, ends, kid_ptr, kids, threads=None, budget=None, precision=np.float32):
    """Solve the SPD system A x = b (A's upper triangle in CSR, rows in nested-dissection order,
    tree from nested_dissection) with a multifrontal Cholesky. Independent
    subtrees are factorised on `threads` threads (default: ``MATTING_THREADS``),
    then their ancestors. Fronts are eliminated in `precision`: float32
    by default, as BLAS does twice the float32 flops per cycle and its alpha
    is float64's after rounding to uint8 (bench/RESULTS.md); the back
    substitution accumulates in float64. The factor's rows are kept in `precision`
    too, within `budget` bytes (wide unknown regions fill in as
    n log n): over it, the rows of the widest fronts are kept and the
    subtrees below them are factorised again just before their back
    substitution.
    Returns None if A is not positive definite."""
    nodes = len(starts)
    threads = threads or MATTING_THREADS
    border_ptr, border_idx = _borders(indptr, indices, starts, ends, kid_ptr, kids, threads)
    nv = ends - starts
    width = nv + np.diff(border_ptr)
    size = nv * (width + 1)
    # first node of each subtree, in postorder: the smallest number down the first children
    first_kid = np.where(np.diff(kid_ptr) > 0, np.append(kids, 0)[kid_ptr[:-1]], np.arange(nodes))
    first = _along_paths(first_kid, np.arange(nodes), np.minimum)
    parent = np.full(nodes, -1)
    parent[kids] = np.repeat(np.arange(nodes), np.diff(kid_ptr))
    itemsize = np.dtype(precision).itemsize
    recompute = budget is not None and itemsize * size.sum() > budget
    tasks = _subtrees(kid_ptr, kids, first, nv * width**2, 4 * threads if threads > 1 else 1)
    in_task = np.zeros(nodes, np.bool_)
    external = np.full(nodes, -1, np.int64)
    for i, k in enumerate(tasks):
        in_task[first[k]:k + 1] = True
        external[k] = i

    def rows_for(kept):
        offsets = np.full(nodes, -1, np.int64)
        offsets[kept] = np.cumsum(size[kept]) - size[kept]
        return offsets, np.empty(size[kept].sum(), precision)  # each node's rows are zeroed as it starts

    kept, redone = np.ones(nodes, np.bool_), []
    if recompute:
        kept, redone = _widest_fronts(~in_task, width, size, parent, first, budget // itemsize, REDO_SPANS)
    offsets, factors = rows_for(kept)
    system = (indptr, indices, data, b, starts, ends, kid_ptr, kids, parent, border_ptr, border_idx)
    # each subtree's last front (Schur complement) is handed to its ancestors in one flat
    # buffer, not a numba typed List: building one from Python compiles code in every process
    # (only its Schur complement: the eliminated rows above it are never read again)
    handover_ptr = np.concatenate([[0], np.cumsum((width[tasks] - nv[tasks] + 1) ** 2)]).astype(np.int64)
    blas = BLAS[precision]
    handover = np.empty(handover_ptr[-1] if len(tasks) > 1 else 0, precision)
    no_skip, no_external = np.zeros(nodes, np.bool_), np.full(nodes, -1, np.int64)
    x = np.zeros(len(b))

    def subtree(k, rows, out, keep=-1):
        return factor_nodes(*system, rows, out, first[k], k, no_skip, external, handover, handover_ptr, keep, *blas)

    def redo(span):  # factor the nodes not kept in span again, keeping their rows, and back-substitute them
        lo, hi = span
        again = np.zeros(nodes, np.bool_)
        again[lo:hi + 1] = ~kept[lo:hi + 1]
        rows, out = rows_for(again)
        ok = factor_nodes(*system, rows, out, lo, hi, kept, no_external, handover, handover_ptr, -1, *blas)
        back_substitute(starts, ends, border_ptr, border_idx, rows, out, x, lo, hi)
        return ok

    with ONE_BLAS_THREAD, pool_one_core_each(threads, "segkit-solve") as pool:
        if tasks == [nodes - 1]:  # the whole tree as one task
            ok = subtree(nodes - 1, offsets, factors)
        else:
            ok = all(pool.map(lambda i: subtree(tasks[i], offsets, factors, keep=i), range(len(tasks))))
            ok = ok and factor_nodes(*system, offsets, factors, 0, nodes - 1, in_task, external, handover, handover_ptr,
                                -1, *blas)
            handover = np.empty(0, precision)  # the fronts are assembled: free them before the back substitution
        if not ok:
            return None
        # the subtrees' ancestors first, then the subtrees side by side: a node's x reads only its ancestors'
        back_substitute(starts, ends, border_ptr, border_idx, np.where(in_task, -1, offsets), factors, x, 0, nodes - 1)
        list(pool.map(lambda k: back_substitute(starts, ends, border_ptr, border_idx, offsets, factors, x, first[k], k),
                      tasks))
        factors = None  # read no more: free the kept rows before the rest is factorised again
        if recompute and not all(pool.map(redo, redone)):
            return None
    return x


def _borders(indptr, indices, starts, ends, kid_ptr, kids, threads):
    """Every node's border (``_symbolic``), in one flat array in node order; with two threads or
    more, the root's two subtrees side by side (the root, last, has no border)."""
    root = len(starts) - 1
    if threads < 2 or kid_ptr[root + 1] - kid_ptr[root] != 2:
        return _symbolic(indptr, indices, starts, ends, kid_ptr, kids, 0, root)
    middle = kids[kid_ptr[root]]
    with pool_one_core_each(2, "segkit-borders") as pool:
        (ptr1, idx1), (ptr2, idx2) = pool.map(lambda span: _symbolic(indptr, indices, starts, ends, kid_ptr, kids,
                                                                     *span), ((0, middle), (middle + 1, root - 1)))
    return np.concatenate([ptr1, ptr2[1:] + ptr1[-1], ptr2[-1:] + ptr1[-1]]), np.concatenate([idx1, idx2])


def _widest_fronts(kept, width, size, parent, first, words, parts):
    """The nodes whose rows to keep within `words` floats, besides the `kept` ones, and the
    spans of nodes (first, last) in which the others are to be factorised again, about
    `parts` of them. Wide fronts cost the most flops per byte kept, so the widest go first;
    a node is only kept with its ancestors, which leaves whole subtrees to do again."""
    nodes = len(width)
    # the narrowest front on the way to the root
    narrowest = _along_paths(np.where(parent < 0, np.arange(nodes), parent), np.where(kept, np.inf, width), np.minimum)
    order = np.lexsort((-np.arange(nodes), -narrowest))  # on ties, parents first
    kept = kept.copy()
    kept[order[np.cumsum(size[order]) <= words]] = True
    roots = np.flatnonzero(~kept & ((parent < 0) | kept[np.maximum(parent, 0)]))
    # neighbouring subtrees (in postorder) go together, in spans of similar total size
    below = np.concatenate([[0], np.cumsum(np.where(kept, 0, size))])  # what is redone before each node
    cuts = np.searchsorted(below[roots + 1], np.linspace(0, below[-1], parts + 1)[1:-1], side="right")
    spans = [(first[group[0]], group[-1]) for group in np.split(roots, cuts) if len(group)]
    # the largest first, for balance
    return kept, sorted(spans, key=lambda span: below[span[1] + 1] - below[span[0]], reverse=True)


def _along_paths(step, values, combine):
    """values[k] combined over the nodes reached from k by repeated ``step`` (which ends at a node
    pointing to itself), by pointer jumping: log2(depth) vectorised passes, not a Python loop over
    the nodes."""
    values = combine(values, values[step])
    while not (step[step] == step).all():
        step = step[step]
        values = combine(values, values[step])
    return values


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


@nb.njit(cache=True, nogil=True)
def _symbolic(indptr, indices, starts, ends, kid_ptr, kids, lo, hi):
    """Border of each tree node lo..hi (a whole subtree): the later variables its front couples to
    (its rows' columns past the node, and its children's borders). Node k's is
    border_idx[border_ptr[k - lo]:border_ptr[k - lo + 1]]."""
    n = indptr.shape[0] - 1
    marker = np.full(n, -1, np.int64)
    found = np.empty(n, np.int64)
    border_ptr = np.zeros(hi - lo + 2, np.int64)
    border_idx = np.empty(4 * (ends[hi] - starts[lo]) + 1024, np.int64)
    for k in range(lo, hi + 1):
        e, m = ends[k], 0
        for r in range(starts[k], e):
            for p in range(indptr[r], indptr[r + 1]):
                j = indices[p]
                if j >= e and marker[j] != k:
                    marker[j] = k
                    found[m] = j
                    m += 1
        for q in range(kid_ptr[k], kid_ptr[k + 1]):
            for p in range(border_ptr[kids[q] - lo], border_ptr[kids[q] - lo + 1]):
                j = border_idx[p]
                if j >= e and marker[j] != k:
                    marker[j] = k
                    found[m] = j
                    m += 1
        start = border_ptr[k - lo]
        if start + m > border_idx.shape[0]:
            border_idx = np.concatenate((border_idx, np.empty(border_idx.shape[0] + m, np.int64)))
        border_idx[start:start + m] = np.sort(found[:m])
        border_ptr[k - lo + 1] = start + m
    return border_ptr, border_idx[:border_ptr[-1]]
