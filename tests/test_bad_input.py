"""Bad input gets a ValueError subclass naming the input and the problem, fast."""

import time

import numpy as np
import pytest
import torch
from PIL import Image

import segkit
import corpus


FILE_CASES = corpus.file_cases()
OTHER_BAD = {
    "nan array": (np.full((8, 8, 3), np.nan, np.float32), "NaN or infinite"),
    "float out of range": (np.full((8, 8, 3), 3.0, np.float32), "must lie in 0..1"),
    "2-channel array": (np.zeros((8, 8, 2), np.uint8), "array shape"),
    "empty array": (np.zeros((0, 8, 3), np.uint8), "no pixels"),
    "object": (object(), "unsupported input type"),
    "premultiplied La image": (Image.new("La", (8, 8)), "Pillow cannot convert an image in mode La to RGB"),
    "missing file": ("/nonexistent/photo.jpg", "file not found"),
    "empty file name": ("", "empty file name"),
    "URL": ("https://example.com/photo.jpg", "a URL, not a file; fetch it with segkit.fetch_url()"),
}


@pytest.mark.parametrize("name", list(FILE_CASES))
def test_file_corpus(name, photos):
    """Each awkward upload: bad ones name the input and the problem, fast; odd-but-valid ones
    come back as an RGBA cutout of the (upright) size; the good image beside it is unharmed."""
    data, (kind, expected) = FILE_CASES[name]
    start = time.perf_counter()
    results = segkit.process([photos["coffee"], data])
    assert time.perf_counter() - start < 60  # never a hang (a loose bound, not a benchmark)
    assert results[0].ok and results[0].cutout.size == (600, 400)
    if kind == "ok":
        assert results[1].ok, results[1].error
        assert results[1].cutout.mode == "RGBA" and results[1].cutout.size == expected
    else:
        assert isinstance(results[1].error, segkit.InvalidInputError)
        assert str(results[1].error).startswith("image #2: ") and expected in str(results[1].error)


@pytest.mark.parametrize("name", list(OTHER_BAD))
def test_bad_objects_are_refused_with_a_clear_message(name, photos):
    data, problem = OTHER_BAD[name]
    with pytest.raises(segkit.InvalidInputError) as info:
        segkit.segment([photos["coffee"], data])
    assert problem in str(info.value)
    start = {"missing file": "photo.jpg", "URL": "https://example.com/photo.jpg"}.get(name, "image #2")
    assert str(info.value).startswith(start)


def test_exif_orientations_rotate_the_content_too():
    upright = segkit.segment(corpus.photo(120, 90))
    for orientation, transpose in ((3, Image.Transpose.ROTATE_180), (6, Image.Transpose.ROTATE_270),
                                   (8, Image.Transpose.ROTATE_90)):
        data, _ = FILE_CASES[f"EXIF orientation {orientation}"]
        out = np.asarray(segkit.segment(data), np.int16)[:, :, 3]
        expected = np.asarray(upright.transpose(transpose), np.int16)[:, :, 3]
        assert np.abs(out - expected).mean() < 8, orientation  # same subject, JPEG noise aside


@pytest.mark.parametrize("kwargs, problem", corpus.bad_options(), ids=lambda v: repr(v)[:60])
def test_bad_options_are_refused_by_name_before_any_work(kwargs, problem, photos, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("no model is loaded for bad options")

    monkeypatch.setattr(segkit.batch, "session_for", no_work)
    with pytest.raises(segkit.InvalidInputError, match=problem):
        segkit.segment(photos["coffee"], **kwargs)


def test_the_seed_strings_and_numpy_values_are_accepted(photos):
    plain = segkit.segment(photos["coffee"], alpha_matting=False)
    assert np.array_equal(np.asarray(segkit.segment(photos["coffee"], alpha_matting="false", post_process_mask="False",
                                                    alpha_matting_erode_size=np.int64(10),
                                                    alpha_matting_foreground_threshold=240.0)), np.asarray(plain))


def test_a_progress_that_is_not_a_function_is_refused_before_any_work(photos):
    """progress=True failed with "'bool' object is not callable" once the first image was done."""
    with pytest.raises(segkit.InvalidInputError, match=r"^progress: must be a function called as "
                                                       r"progress\(fraction, text\), or None; got True$"):
        segkit.process([photos["chelsea"], b"not even read"], progress=True)


@pytest.mark.parametrize("tensor, problem", [
    (torch.zeros(2, 8, 8, 2), "shape"),
    (torch.zeros(8, 8), "shape"),
    (torch.zeros(2, 16, 16), r"shape \(2, 16, 16\) is not \[B,H,W,C\] with C in 1, 3 or 4 \(a MASK's shape: pass an IMAGE\)"),
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
