"""PNG encoders: CPU time and file size for real cutouts, to choose how segkit writes results.

Encoding must not dominate a request, nor a zip of video frames, and the file should stay near the
smallest. Contenders: Pillow (it tries every filter on every row), FFmpeg's encoder through PyAV
(Paeth filter; what segkit used before), and rows filtered in numpy then deflated by zlib or ISA-L
(``isal``); "segkit" is ``segkit.io.encode.png_bytes``. Every file is read back and compared.
Run: ``.venv/bin/python -m bench.png_levels``.
"""

from __future__ import annotations

import io
import statistics
import time
import zlib
from fractions import Fraction

import numpy as np
from PIL import Image

from bench.run import photo


def main() -> None:
    import segkit
    from segkit.io.encode import png_bytes

    print("| cutout | encoder | CPU s | size MB | CPU / segment's wall time |")
    print("|---|---|---|---|---|")
    for mp in (0.5, 0.92, 4.6, 12.0):  # 0.92 MP: a 720p video frame
        image = photo(mp)
        start = time.perf_counter()
        cutout = segkit.segment(image)
        segment_seconds = time.perf_counter() - start
        contenders = {
            "Pillow, level 1": lambda: pillow(cutout, 1),
            "Pillow, level 6 (its default)": lambda: pillow(cutout, 6),
            "FFmpeg, Paeth, level 1 (segkit before)": lambda: ffmpeg(cutout),
            "Up, zlib level 1": lambda: filtered_png(cutout, up, zlib.compress),
            "Sub, ISA-L level 1": lambda: filtered_png(cutout, sub, isal_level_1),
            "segkit: Up, ISA-L level 1": lambda: png_bytes(cutout),
        }
        runs = {name: [] for name in contenders}
        for _ in range(3):  # the contenders alternate
            for name, encode in contenders.items():
                start = time.process_time()
                data = encode()
                runs[name].append(time.process_time() - start)
                assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(cutout)), name
                runs[name].append(len(data))
        for name, figures in runs.items():
            seconds = statistics.median(figures[::2])
            print(f"| {mp:g} MP | {name} | {seconds:.3f} | {figures[1] / 1e6:.2f} | {seconds / segment_seconds:.2f} |",
                  flush=True)


def pillow(image: Image.Image, level: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def ffmpeg(image: Image.Image) -> bytes:
    import av

    encoder = av.CodecContext.create("png", "w")
    encoder.width, encoder.height = image.size
    encoder.pix_fmt, encoder.time_base = "rgba", Fraction(1, 25)
    encoder.options = {"pred": "paeth", "compression_level": "1"}
    frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgba")
    frame.pts = 1
    return b"".join(bytes(packet) for packet in encoder.encode(frame))


def up(rows: np.ndarray, channels: int) -> np.ndarray:
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0], out[0, 1:] = 2, rows[0]
    np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])
    return out


def sub(rows: np.ndarray, channels: int) -> np.ndarray:
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0], out[:, 1:channels + 1] = 1, rows[:, :channels]
    np.subtract(rows[:, channels:], rows[:, :-channels], out=out[:, channels + 1:])
    return out


def isal_level_1(data) -> bytes:
    from isal import isal_zlib

    return isal_zlib.compress(data, 1)


def filtered_png(image: Image.Image, row_filter, deflate) -> bytes:
    """An RGBA PNG whose rows all use ``row_filter``, deflated by ``deflate``."""
    from segkit.io.encode import PNG_SIGNATURE, _chunk

    rows = np.asarray(image).reshape(image.height, -1)
    header = _chunk(b"IHDR", image.width.to_bytes(4, "big") + image.height.to_bytes(4, "big") + bytes([8, 6, 0, 0, 0]))
    return PNG_SIGNATURE + header + _chunk(b"IDAT", deflate(row_filter(rows, 4))) + _chunk(b"IEND", b"")


if __name__ == "__main__":
    main()
