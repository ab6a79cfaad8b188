"""How this process's C heap hands memory back, tuned for image work (glibc only; elsewhere nothing).

Every photo allocates and frees a few image-sized arrays. glibc returns such blocks to the kernel
as soon as they are freed, so the next photo's arrays arrive as fresh pages whose first touch
faults; on virtual machines that cost is a large share of everything around the network
(bench/RESULTS.md). Keeping up to ``KEEP_FREED_MB`` of freed memory for reuse avoids it.
"""

from __future__ import annotations

import ctypes
import functools
import os

KEEP_FREED_MB = 128  # more than one 12 MP photo's arrays; what a busy server would ask for again anyway
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def _mallopt(option: int, value: int) -> bool:
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(option, value))
    except (OSError, AttributeError):
        return False  # another C library


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> None:
    """Image-sized blocks come from the heap and up to ``KEEP_FREED_MB`` freed stays there for the
    next image. ``SEGKIT_KEEP_FREED_MEMORY=0`` leaves glibc's defaults."""
    if os.getenv("SEGKIT_KEEP_FREED_MEMORY", "1") == "0":
        return
    # Bigger blocks are still mapped apart; older glibc caps the threshold at 32 MB. Only once it is
    # set does the trim threshold go too (setting that alone would pin the mmap threshold at 128 KB).
    if _mallopt(_M_MMAP_THRESHOLD, 64 << 20) or _mallopt(_M_MMAP_THRESHOLD, 32 << 20):
        _mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_MB << 20)


def few_malloc_heaps() -> None:
    """glibc gives busy threads heaps of their own (up to eight per core) and keeps what they free:
    behind Gradio's worker threads the server's resident memory crept up request after request.
    Two heaps keep it flat (tests/test_soak.py); ``MALLOC_ARENA_MAX`` still decides where set."""
    _mallopt(_M_ARENA_MAX, int(os.getenv("MALLOC_ARENA_MAX", 2)))
