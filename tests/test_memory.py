"""segkit.memory: freed image-sized blocks stay in the process for the next image, and the switch works."""

from __future__ import annotations

import os
import subprocess
import sys

# a 4.6 MP RGBA cutout's worth, allocated, touched and freed; prints how much resident memory the free gave back
FREE_ONE_CUTOUT = """
import numpy as np, segkit
def resident():
    return int(open('/proc/self/statm').read().split()[1]) * 4096
cutout = np.ones(18 << 20, np.uint8)
before = resident()
del cutout
print((before - resident()) >> 20)
"""


def _returned_mb(**env) -> int:
    out = subprocess.run([sys.executable, "-c", FREE_ONE_CUTOUT], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=120, check=True)
    return int(out.stdout.split()[-1])


def test_a_freed_cutout_stays_for_the_next_image_unless_switched_off():
    assert _returned_mb() < 2  # kept: the next image reuses these pages without faulting them in
    assert _returned_mb(SEGKIT_KEEP_FREED_MEMORY="0") >= 16  # glibc's default hands it straight back
