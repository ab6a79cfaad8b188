"""How this process's C heap hands memory back (glibc only; elsewhere nothing)."""

from __future__ import annotations

import ctypes
import os

_M_ARENA_MAX = -8


def few_malloc_heaps() -> None:
    """glibc gives busy threads heaps of their own (up to eight per core) and keeps what they free:
    behind Gradio's worker threads the server's resident memory crept up request after request.
    Two heaps keep it flat (tests/test_soak.py); ``MALLOC_ARENA_MAX`` still decides where set."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, int(os.getenv("MALLOC_ARENA_MAX", 2)))
    except (OSError, AttributeError):
        pass  # another C library
