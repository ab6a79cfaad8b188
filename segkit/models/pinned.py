"""Page-locked host memory for a GPU's uploads and downloads.

The bus copies to and from page-locked memory several times faster than from ordinary memory, which
the driver first copies through a page-locked buffer of its own (bench/RESULTS.md, GPU). Locking
memory is slow and the memory is the system's, so blocks are kept and lent again, up to a budget.
"""

from __future__ import annotations

import ctypes
import functools
import threading
import weakref
from typing import Optional

import numpy as np

BUDGET_BYTES = 512 << 20  # locked at most: a few 12 MP photos' cutouts on their way down


@functools.lru_cache(maxsize=1)
def cuda_runtime():
    """CUDA's runtime library as onnxruntime's CUDA provider loaded it (found by its soname), or None."""
    for name in ("libcudart.so.13", "libcudart.so.12"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


class Blocks:
    """Page-locked blocks lent as numpy arrays; a block comes back once nothing refers to its array
    (an image made from it, say)."""

    def __init__(self, budget: int = BUDGET_BYTES):
        self.budget, self.locked = budget, 0
        self._free: list[tuple[int, int]] = []  # (bytes, address)
        self._lock = threading.RLock()  # a block can come back in a garbage collection that ``array`` set off

    def array(self, shape: tuple, dtype=np.uint8) -> Optional[np.ndarray]:
        """An array of ``shape`` in page-locked memory; None without CUDA's runtime or past the budget."""
        runtime, size = cuda_runtime(), int(np.prod(shape)) * np.dtype(dtype).itemsize
        if runtime is None:
            return None
        with self._lock:
            fitting = [block for block in self._free if block[0] >= size]
            if fitting:
                block = min(fitting)
                self._free.remove(block)
            elif self.locked + size <= self.budget:
                address = ctypes.c_void_p()
                if runtime.cudaHostAlloc(ctypes.byref(address), ctypes.c_size_t(size), 0) != 0:
                    return None
                block, self.locked = (size, address.value), self.locked + size
            else:
                return None
        memory = (ctypes.c_uint8 * size).from_address(block[1])
        weakref.finalize(memory, self._give_back, block)
        return np.frombuffer(memory, dtype).reshape(shape)

    def _give_back(self, block: tuple[int, int]) -> None:
        with self._lock:
            self._free.append(block)


BLOCKS = Blocks()
