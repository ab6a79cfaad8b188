"""scipy's LAPACK and BLAS for the matting solver (``_cholesky``): the routines its numba kernel calls,
and OpenBLAS's thread count while it runs."""

import ctypes
import glob
import os
import threading

import numpy as np
import scipy
from numba.extending import get_cython_function_address


def _routine(module, name, nargs):
    address = get_cython_function_address("scipy.linalg.cython_" + module, name)
    return ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * nargs))(address)


# LAPACK/BLAS from scipy, passed to the kernel as arguments so numba can cache it: for
# float64 and for float32 fronts.
BLAS = {np.float64: (_routine("lapack", "dpotrf", 5), _routine("blas", "dtrsm", 11), _routine("blas", "dsyrk", 10)),
        np.float32: (_routine("lapack", "spotrf", 5), _routine("blas", "strsm", 11), _routine("blas", "ssyrk", 10))}


def _openblas_thread_count():
    """scipy's OpenBLAS (get, set) of its thread count, or None where it is not a pip wheel's."""
    libs = os.path.join(os.path.dirname(scipy.__file__), os.pardir, "scipy.libs", "libscipy_openblas*")
    try:
        library = ctypes.CDLL(sorted(glob.glob(libs))[0])
        return library.scipy_openblas_get_num_threads, library.scipy_openblas_set_num_threads
    except (IndexError, OSError, AttributeError):
        return None


class OneBlasThread:
    """OpenBLAS on one thread while any solve runs. Its worker threads spin; on fronts of a few
    hundred rows with the other cores busy they made the solve many times slower, and they
    split its sums differently, so the alpha would depend on timing. The count is the whole
    process's (the wheel's pthreads build makes even ``openblas_set_num_threads_local``
    process-wide), so the first solve to start sets it and the last to end gives it back."""

    def __init__(self):
        self._count = _openblas_thread_count()
        self._lock = threading.Lock()
        self._running = 0
        self._before = None

    def __enter__(self):
        with self._lock:
            if self._count and self._running == 0:
                get, set_count = self._count
                self._before = get()
                set_count(1)
            self._running += 1

    def __exit__(self, *exc_info):
        with self._lock:
            self._running -= 1
            if self._count and self._running == 0:
                _, set_count = self._count
                set_count(self._before)

    def after_fork_in_child(self):
        """A forked child has none of the parent's solver threads: the count they held goes back."""
        self._lock = threading.Lock()
        if self._count and self._running:
            _, set_count = self._count
            set_count(self._before)
        self._running = 0


ONE_BLAS_THREAD = OneBlasThread()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=ONE_BLAS_THREAD.after_fork_in_child)
