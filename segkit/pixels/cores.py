"""The cores segkit's pixel work may use, and thread pools whose workers each keep to one of them.

Pool threads woken together for one pass were often placed by the scheduler on the
waking thread's core, and ran one after the other there until its load balancer moved
one, milliseconds later: for the few-millisecond passes of one image that is most of
the pass (bench/RESULTS.md, "pixel threads kept to their own cores"). A worker kept to its own core
starts there at once.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor

# a container's or `taskset`'s CPU set, not the machine's count
ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
CORES = max(1, len(ALLOWED))
# matting's pools (the band system's stripes, the solver's subtrees): each solver thread holds its own
# fronts, so more threads would mean more memory at once
MATTING_THREADS = min(CORES, 4)


def pin_to(core: int) -> None:
    """Keep the calling thread on ``core`` (pid 0 is the calling thread, on Linux)."""
    if CORES > 1 and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {core})
        except OSError:  # that core was taken from the process since start-up: stay unpinned
            pass


def pool_one_core_each(workers: int, name: str) -> ThreadPoolExecutor:
    """A thread pool whose workers each keep to their own core, round robin over the allowed ones."""
    turn = itertools.count()
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name,
                              initializer=lambda: pin_to(ALLOWED[next(turn) % CORES]))
