"""Image-sized arrays whose memory is reused once nobody holds them any more.

A 4.6 MP cutout is 18 MB of fresh memory per request, and mapping fresh pages
cost more than filling them: 6-7 ms for the cutout's pages against 3-4 ms for
the paste itself, measured here. Callers (the app, ComfyUI, a batch loop) drop
each result soon after encoding it, so its pages can serve the next image of
the same size. A finalizer on the array gives its mapping back to a small idle
list when the last view of it dies; ``take`` hands out an idle mapping of the
right size before mapping a new one. Arrays handed out are ordinary numpy
arrays: views, slices and Pillow images made from them keep the memory theirs
for as long as they live.
"""

from __future__ import annotations

import mmap
import threading
import weakref

import numpy as np

MIN_POOLED_BYTES = 1 << 20  # smaller arrays come from numpy's allocator, which reuses them well
IDLE_LIMIT_BYTES = 256 << 20  # idle mappings kept at most; the oldest go first
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux: map every page in one call

_idle: list[mmap.mmap] = []  # oldest first
_idle_bytes = 0
_lock = threading.RLock()  # a finalizer may run inside ``take`` when the garbage collector fires there


def _new_mapping(size: int) -> mmap.mmap:
    if _POPULATE:
        return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _POPULATE)
    return mmap.mmap(-1, size)


def _give_back(memory: mmap.mmap) -> None:
    global _idle_bytes
    with _lock:
        _idle.append(memory)
        _idle_bytes += len(memory)
        while _idle_bytes > IDLE_LIMIT_BYTES:
            _idle_bytes -= len(_idle.pop(0))  # unmapped once this last reference goes


def _reuse(size: int) -> mmap.mmap | None:
    global _idle_bytes
    with _lock:
        for i in range(len(_idle) - 1, -1, -1):  # newest first: its pages are likeliest still cached
            if len(_idle[i]) == size:
                _idle_bytes -= size
                return _idle.pop(i)
    return None


def take(shape: tuple[int, ...], dtype=np.uint8) -> np.ndarray:
    """An uninitialised array, like ``np.empty``; large ones reuse idle memory."""
    size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if size < MIN_POOLED_BYTES:
        return np.empty(shape, dtype)
    memory = _reuse(size)
    if memory is None:
        memory = _new_mapping(size)
    # ``owner``'s base is the mapping, not an array, so numpy does not collapse views
    # past it: every view made later keeps ``owner`` alive, and the finalizer below
    # runs only when no array uses the memory any more.
    owner = np.frombuffer(memory, np.uint8)
    weakref.finalize(owner, _give_back, memory).atexit = False
    return owner.view(dtype).reshape(shape)


def idle_bytes() -> int:
    """Bytes held for reuse right now (for tests and monitoring)."""
    with _lock:
        return _idle_bytes
