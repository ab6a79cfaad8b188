"""Bad input gets a ValueError subclass naming the input and the problem, fast."""

import io
import struct
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import segkit
from conftest import png_bytes


def bomb_png(width=60000, height=60000) -> bytes:
    """A valid PNG header claiming a huge canvas, with almost no data behind it."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


CASES = {
    "empty bytes": (b"", "empty data"),
    "text": (b"hello, I am not an image", "not an image"),
    "html": (b"<!doctype html><html><body>hi</body></html>", "not an image"),
    "truncated png": (None, "truncated or corrupt"),
    "bomb": (bomb_png(), "decompression bomb"),
    "too many pixels": (bomb_png(9000, 9000), "over the 64 MP limit"),
    "nan array": (np.full((8, 8, 3), np.nan, np.float32), "NaN or infinite"),
    "float out of range": (np.full((8, 8, 3), 3.0, np.float32), "must lie in 0..1"),
    "2-channel array": (np.zeros((8, 8, 2), np.uint8), "array shape"),
    "empty array": (np.zeros((0, 8, 3), np.uint8), "no pixels"),
    "object": (object(), "unsupported input type"),
    "missing file": ("/nonexistent/photo.jpg", "file not found"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_with_a_clear_message(name, photos):
    data, problem = CASES[name]
    if data is None:
        data = png_bytes(photos["coffee"])[:2000]
    start = time.perf_counter()
    with pytest.raises(segkit.InvalidInputError) as info:
        segkit.segment([photos["coffee"], data])
    assert time.perf_counter() - start < 60  # never a hang (a loose bound, not a benchmark)
    assert problem in str(info.value)
    label = "photo.jpg" if name == "missing file" else "image #2"
    assert str(info.value).startswith(label)


@pytest.mark.parametrize("kwargs, problem", [
    (dict(alpha_matting_foreground_threshold=300), "between 0 and 255"),
    (dict(alpha_matting_background_threshold=-5), "between 0 and 255"),
    (dict(alpha_matting=True, alpha_matting_foreground_threshold=10, alpha_matting_background_threshold=50),
     "background threshold must be the lower one"),
    (dict(alpha_matting_erode_size=-1), "alpha_matting_erode_size"),
    (dict(alpha_matting_erode_size=2.5), "whole number"),
    (dict(model="modnet-x"), "unknown model"),
])
def test_bad_parameters_are_refused(kwargs, problem, photos):
    with pytest.raises(ValueError, match=problem):
        segkit.segment(photos["coffee"], **kwargs)


@pytest.mark.parametrize("tensor, problem", [
    (torch.zeros(2, 8, 8, 2), "shape"),
    (torch.zeros(8, 8), "shape"),
    (torch.zeros(1, 8, 8, 3, dtype=torch.uint8), "not floating point"),
    (torch.full((1, 8, 8, 3), float("inf")), "NaN or infinite"),
])
def test_bad_tensors_are_refused(tensor, problem):
    with pytest.raises(segkit.InvalidInputError, match=problem):
        segkit.segment(tensor)


@pytest.mark.parametrize("make", [
    lambda p: Image.fromarray(p).convert("CMYK"),
    lambda p: Image.fromarray(p).convert("P"),
    lambda p: Image.fromarray(p).convert("LA"),
    lambda p: Image.fromarray((p[:, :, 0].astype(np.uint16) * 257)),  # 16-bit grey
    lambda p: Image.fromarray(p[:1, :, :]),  # 1xN
    lambda p: Image.fromarray(p[:1, :1, :]),  # 1x1
])
def test_odd_but_valid_images_come_back_right_sized(make, photos):
    image = make(photos["coffee"])
    out = segkit.segment(image)
    assert out.mode == "RGBA" and out.size == image.size
