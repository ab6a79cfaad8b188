"""The multifrontal kernels behind ``_cholesky.solve``: each node's dense front assembled from the
system's rows and its children's Schur complements, eliminated with LAPACK/BLAS and its own
Schur complement handed up; then the back substitution of the kept rows."""

import numba as nb
import numpy as np
from numba.typed import List


@nb.njit(cache=True, nogil=True)
def factor_nodes(indptr, indices, data, b, starts, ends, kid_ptr, kids, parent, border_ptr, border_idx, offsets,
                 factors, first, last, skip, external, handover, handover_ptr, keep, potrf, trsm, syrk):
    """Multifrontal Cholesky of nodes first..last (postorder): each node
    assembles a dense front from A and its children's Schur complements,
    eliminates its own variables with LAPACK/BLAS and passes its Schur complement up. The front's
    rows of its own variables are the factor's rows: they are assembled and eliminated in place in
    factors[offsets[k]:] (in scratch where that is -1), its Schur complement apart. The right-hand
    side rides along as the front's last column, so this is also the forward solve.
    Fronts take the factors' number type (float64 or float32; the BLAS must match).
    Skipped nodes were done elsewhere; a skipped node k with external[k] = i >= 0
    hands over its Schur complement (with the right-hand side's column) in
    handover[handover_ptr[i]:handover_ptr[i + 1]]. With keep = i >= 0, the last
    node's is stored there.
    Returns whether the matrix was positive definite."""
    local = np.empty(b.shape[0], np.int64)  # written for each front's variables before it is read
    run_end = np.empty(b.shape[0] + 1, np.int64)
    chars = np.array([ord("L"), ord("R"), ord("T"), ord("N")], np.uint8)
    scalars = np.array([1.0, -1.0], factors.dtype)
    ints = np.zeros(4, np.int32)
    pending = List()
    schur = np.zeros((1, 1), factors.dtype)
    scratch = np.empty(0, factors.dtype)
    for k in range(first, last + 1):
        if skip[k]:
            i = external[k]
            if i >= 0:
                d = border_ptr[k + 1] - border_ptr[k] + 1
                pending.append(handover[handover_ptr[i]:handover_ptr[i + 1]].reshape(d, d))
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
        size = nv * (f + 1)
        if offsets[k] < 0 and scratch.shape[0] < size:
            scratch = np.empty(2 * size, factors.dtype)
        own = factors[offsets[k]:offsets[k] + size] if offsets[k] >= 0 else scratch[:size]
        own[:] = 0
        own = own.reshape((nv, f + 1))  # C row-major upper triangle == Fortran lower triangle for LAPACK
        schur = np.zeros((m + 1, m + 1), factors.dtype)
        for r in range(s, e):
            own[r - s, f] = b[r]
            for p in range(indptr[r], indptr[r + 1]):
                j = indices[p]
                if r <= j < e:
                    own[r - s, j - s] = data[p]
                elif j >= e:
                    own[r - s, local[j]] = data[p]
        for q in range(kid_ptr[k + 1] - 1, kid_ptr[k] - 1, -1):
            c = kids[q]
            # the child's border, sorted, lands in increasing places of this front (its own variables,
            # then its border, both sorted): the child's upper triangle stays upper
            _extend_add(own, schur, pending.pop(), local[border_idx[border_ptr[c]:border_ptr[c + 1]]], run_end)
        if nv > 0:
            ints[0], ints[1], ints[2] = nv, f + 1, m + 1
            potrf(chars[0:].ctypes, ints[0:].ctypes, own.ctypes, ints[1:].ctypes, ints[3:].ctypes)
            if ints[3] != 0:
                return False
            right = own[:, nv:]
            trsm(chars[1:].ctypes, chars[0:].ctypes, chars[2:].ctypes, chars[3:].ctypes, ints[2:].ctypes,
                 ints[0:].ctypes, scalars[0:].ctypes, own.ctypes, ints[1:].ctypes, right.ctypes, ints[1:].ctypes)
            syrk(chars[0:].ctypes, chars[3:].ctypes, ints[2:].ctypes, ints[0:].ctypes, scalars[1:].ctypes,
                 right.ctypes, ints[1:].ctypes, scalars[0:].ctypes, schur.ctypes, ints[2:].ctypes)
        if parent[k] < 0 or not skip[parent[k]]:  # else no one here assembles it: let it go
            pending.append(schur)
    if keep >= 0:
        d = schur.shape[0]
        handover[handover_ptr[keep]:handover_ptr[keep + 1]].reshape(d, d)[:, :] = schur
    return True


@nb.njit(cache=True, nogil=True)
def _extend_add(own, schur, update, to, run_end):
    """Add a child's Schur complement `update` (its upper triangle, and the right-hand side's
    column last) into the rows and columns `to` of the front: its first rows are `own`, the rest
    `schur`. `to` ascends, mostly in runs of consecutive places: each row adds run by run through
    two array views, which numba vectorises (an index per element keeps the loop scalar, several
    times slower: bench/RESULTS.md). Each element is added in the same order, so the sums do not
    change."""
    length, nv = to.shape[0], own.shape[0]
    runs = 0
    for j in range(1, length + 1):
        if j == length or to[j] != to[j - 1] + 1:
            run_end[runs] = j
            runs += 1
    first_run = 0
    for i in range(length):
        if run_end[first_run] <= i:
            first_run += 1
        row = update[i]
        if to[i] < nv:
            out, shift = own[to[i]], 0
        else:
            out, shift = schur[to[i] - nv], nv
        out[out.shape[0] - 1] += row[length]
        j = i
        for r in range(first_run, runs):
            end = run_end[r]
            into, add = out[to[j] - shift:to[j] - shift + end - j], row[j:end]
            for t in range(end - j):
                into[t] += add[t]
            j = end


@nb.njit(cache=True, nogil=True)
def back_substitute(starts, ends, border_ptr, border_idx, offsets, factors, x, first, last):
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
