"""PNG compress level vs encode time and file size for real cutouts.

Chooses the level segkit uses for results (``segkit.io.encode.PNG_COMPRESS_LEVEL``):
encoding must not dominate a request, and the file should stay near the
smallest. The "FFmpeg" rows are what ``save_png`` writes where PyAV is installed
(FFmpeg's encoder, Paeth filter, that level), the others Pillow's. Run:
``.venv/bin/python -m bench.png_levels``.
"""

from __future__ import annotations

import io
import statistics
import time

from bench.run import photo


def main() -> None:
    import segkit

    from segkit.io.encode import png_bytes, png_encoder

    print("| image | encoder, level | encode s | size MB | encode / segment time |")
    print("|---|---|---|---|---|")
    for mp in (0.5, 4.6, 12.0):
        image = photo(mp)
        start = time.perf_counter()
        cutout = segkit.segment(image)
        segment_seconds = time.perf_counter() - start
        contenders = {f"Pillow, {level}": lambda level=level: pillow(cutout, level) for level in (0, 1, 2, 3, 6, 9)}
        contenders["FFmpeg, 1"] = lambda: png_bytes(png_encoder(cutout.mode, cutout.size), cutout, 1)
        times = {name: [] for name in contenders}
        for _ in range(3):  # the contenders alternate
            for name, encode in contenders.items():
                start = time.perf_counter()
                size = len(encode())
                times[name].append((time.perf_counter() - start, size))
        for name, runs in times.items():
            seconds = statistics.median(seconds for seconds, _ in runs)
            print(f"| {mp:g} MP | {name} | {seconds:.3f} | {runs[0][1] / 1e6:.2f} | {seconds / segment_seconds:.2f} |",
                  flush=True)


def pillow(image, level: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


if __name__ == "__main__":
    main()
