"""Property: for any image size, mode and parameters, segment() returns a right-sized RGBA
image or raises InvalidInputError, never anything else (real u2netp weights)."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import segkit

MODES = ["RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "I;16", "I", "F", "1", "YCbCr", "HSV"]


@st.composite
def images(draw):
    width = draw(st.integers(1, 700))
    height = draw(st.integers(1, 700))
    mode = draw(st.sampled_from(MODES))
    seed = draw(st.integers(0, 2**16))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    pixels[height // 4: 3 * height // 4, width // 4: 3 * width // 4] //= 4  # some structure to find
    base = Image.fromarray(pixels)
    if mode in ("RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "I", "F", "1", "YCbCr", "HSV"):
        return base.convert(mode) if mode != "PA" else base.convert("P").convert("PA")
    return Image.fromarray((np.asarray(base.convert("L")).astype(np.uint16) * 257))  # I;16


parameters = st.fixed_dictionaries({
    "alpha_matting": st.booleans(),
    "alpha_matting_foreground_threshold": st.integers(-20, 280),
    "alpha_matting_background_threshold": st.integers(-20, 280),
    "alpha_matting_erode_size": st.integers(-3, 30),
    "post_process_mask": st.booleans(),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=images(), kwargs=parameters)
def test_segment_returns_rgba_of_the_same_size_or_a_clear_error(image, kwargs, u2netp_path):
    try:
        out = segkit.segment(image, **kwargs)
    except segkit.InvalidInputError as exc:
        assert str(exc)  # a message a person can act on
        return
    assert isinstance(out, Image.Image) and out.mode == "RGBA" and out.size == image.size
