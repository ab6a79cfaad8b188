"""PNG compress level vs encode time and file size for real cutouts.

Chooses the level segkit uses for results (``segkit.io.encode.PNG_COMPRESS_LEVEL``):
encoding must not dominate a request, and the file should stay near the
smallest. Run: ``.venv/bin/python -m bench.png_levels``.
"""

from __future__ import annotations

import io
import statistics
import time

from bench.run import photo


def main() -> None:
    import segkit

    print("| image | level | encode s | size MB | encode / segment time |")
    print("|---|---|---|---|---|")
    for mp in (0.5, 4.6, 12.0):
        image = photo(mp)
        start = time.perf_counter()
        cutout = segkit.segment(image)
        segment_seconds = time.perf_counter() - start
        for level in (0, 1, 2, 3, 6, 9):
            times, size = [], 0
            for _ in range(3):
                buffer = io.BytesIO()
                start = time.perf_counter()
                cutout.save(buffer, format="PNG", compress_level=level)
                times.append(time.perf_counter() - start)
                size = buffer.tell()
            seconds = statistics.median(times)
            print(f"| {mp:g} MP | {level} | {seconds:.3f} | {size / 1e6:.2f} | {seconds / segment_seconds:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
