"""The vectorised resize and cutout kernels give Pillow's results bit for bit.

Parity with rembg rests on these: rembg resizes with Pillow's Lanczos and cuts out
with ``Image.composite``, so any difference here would move segkit's masks.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from segkit.models import predict
from segkit.models.registry import Preprocess
from segkit.pixels import cores, resize as pixels

FILTERS = [Image.Resampling.LANCZOS, Image.Resampling.BILINEAR, Image.Resampling.BOX]


def _noise(seed: int, height: int, width: int, channels: int) -> np.ndarray:
    """Noise over a gradient: sharp edges and smooth ramps, so clipping and rounding are both hit."""
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    ramp = np.linspace(0, 255, width)[None, :] * np.linspace(0.2, 1, height)[:, None]
    noise = rng.integers(0, 256, shape)
    base = ramp if channels == 1 else ramp[:, :, None]
    return np.where(rng.random(shape) < 0.3, noise, base).astype(np.uint8)


def _pillow(array: np.ndarray, size, method) -> np.ndarray:
    return np.asarray(Image.fromarray(array).resize(size, method))


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**16), height=st.integers(1, 90), width=st.integers(1, 90),
       out_h=st.integers(1, 90), out_w=st.integers(1, 90), channels=st.sampled_from([1, 3]),
       method=st.sampled_from(FILTERS))
def test_resize_equals_pillow_for_any_sizes(seed, height, width, out_h, out_w, channels, method):
    array = _noise(seed, height, width, channels)
    expected = _pillow(array, (out_w, out_h), method)
    for source in (array, Image.fromarray(array)):  # arrays, and Pillow images read in strips
        got = pixels.resize_exact(source, (out_w, out_h), method)
        assert got.dtype == np.uint8
        assert np.array_equal(got, expected)


@pytest.mark.parametrize("source, size, channels", [
    ((2476, 1857), (320, 320), 3),  # a 4.6 MP photo to u2net's input: the two-band horizontal pass
    ((320, 320), (2476, 1857), 1),  # its mask back up
    ((1801, 1203), (320, 320), 3),  # band edges off the 16-row blocks, a short last block
    ((320, 320), (1203, 1801), 1),
    ((700, 9), (320, 320), 3),  # more rows than columns, upscaled across
    ((3, 400), (320, 320), 3),  # over 100x taller than wide: Pillow goes vertical-first; so must we
    ((900, 700), (900, 320), 3),  # one pass only: width unchanged
    ((900, 700), (320, 700), 1),  # one pass only: height unchanged
    ((640, 480), (640, 480), 3),  # no pass at all
])
def test_resize_equals_pillow_at_photo_sizes(source, size, channels):
    array = _noise(7, source[1], source[0], channels)
    for method in FILTERS:
        expected = _pillow(array, size, method)
        assert np.array_equal(pixels.resize_exact(array, size, method), expected), method
        assert np.array_equal(pixels.resize_exact(Image.fromarray(array), size, method), expected), method


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("size", [(1, 1), (37, 5), (1500, 900)])  # the last one runs in two row bands
def test_cutout_equals_pillow_composite(mode, size):
    width, height = size
    array = _noise(3, height, width, len(mode))
    mask = _noise(4, height, width, 1)
    image = Image.fromarray(array, mode=mode)
    expected = Image.composite(image, Image.new("RGBA", image.size, 0), Image.fromarray(mask, mode="L"))
    got = pixels.cutout(array, mask)
    assert got.mode == "RGBA" and got.size == image.size
    assert np.array_equal(np.asarray(got), np.asarray(expected))
    assert np.array_equal(np.asarray(pixels.cutout(image, mask)), np.asarray(expected))  # from the image itself


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_cutout_rounds_every_value_and_alpha_as_pillow(mode):
    """The word kernel multiplies two bytes at once: every (value, mask) pair, in every channel."""
    value, alpha = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    array = np.stack([value, 255 - value, value // 3 + 100, value ^ 85][:len(mode)], axis=2)
    for image in (Image.fromarray(array, mode=mode), array):
        expected = Image.composite(Image.fromarray(array, mode=mode), Image.new("RGBA", (256, 256), 0),
                                   Image.fromarray(alpha, mode="L"))
        assert np.array_equal(np.asarray(pixels.cutout(image, alpha)), np.asarray(expected))


def test_rgb_of_rgba_resizes_like_pillows_rgb_conversion():
    rgba = Image.fromarray(_noise(5, 300, 500, 4), mode="RGBA")
    expected = np.asarray(rgba.convert("RGB").resize((320, 320), Image.Resampling.LANCZOS))
    assert np.array_equal(pixels.resize_exact(rgba, (320, 320), rgb=True), expected)
    assert np.array_equal(pixels.resize_exact(np.asarray(rgba), (320, 320), rgb=True), expected)
    pre = Preprocess(320, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert np.array_equal(predict.model_input(rgba, pre), predict.model_input(rgba.convert("RGB"), pre))


def test_cutout_of_other_modes_and_a_wrong_mask():
    grey = Image.fromarray(_noise(1, 30, 40, 1))
    mask = _noise(2, 30, 40, 1)
    expected = Image.composite(grey.convert("RGBA"), Image.new("RGBA", grey.size, 0), Image.fromarray(mask))
    assert np.array_equal(np.asarray(pixels.cutout(grey, mask)), np.asarray(expected))
    with pytest.raises(ValueError, match="mask is 40x29"):
        pixels.cutout(grey, mask[:29])


def test_rgb_images_read_without_their_padding_byte():
    """Pillow keeps RGB in 4 bytes per pixel and its own operations leave the 4th at 0 or 255;
    segkit reads that layout in place, so the byte must never reach a result."""
    resized = Image.fromarray(_noise(6, 400, 700, 3)).resize((640, 380), Image.Resampling.BILINEAR)  # padding 0
    created = Image.new("RGB", (640, 380), (10, 200, 30))  # padding 255
    mask = _noise(8, 380, 640, 1)
    for image in (resized, created):
        expected = Image.composite(image, Image.new("RGBA", image.size, 0), Image.fromarray(mask))
        assert np.array_equal(np.asarray(pixels.cutout(image, mask)), np.asarray(expected))
        assert np.array_equal(pixels.resize_exact(image, (320, 320)), _pillow(np.asarray(image), (320, 320),
                                                                             Image.Resampling.LANCZOS))
        assert np.array_equal(pixels.read_all(image), np.asarray(image))


@pytest.mark.parametrize("rows, work, align", [(1857, 4_600_000, 16), (1200, 2_160_000, 1), (5, 10_000_000, 16)])
@pytest.mark.parametrize("callers", [1, 3])
def test_bands_cover_every_row_once_from_one_caller_or_several(rows, work, align, callers, monkeypatch):
    """Bands run on the pool's threads, one image's or several images' at once (the GPU's gathered
    batches): they cover each row exactly once, start on multiples of ``align``, and a call returns
    only when all of its bands are done."""
    import threading
    import time

    monkeypatch.setattr(pixels, "CORES", 4)
    seen: dict[int, list] = {caller: [] for caller in range(callers)}

    def band(caller):
        def fill(y0, y1):
            time.sleep(0.001 * (y0 % 3))  # bands that take uneven times
            seen[caller].append((y0, y1))
        return fill

    def call(caller):
        pixels.in_bands(rows, work, band(caller), align)
        covered = np.zeros(rows, np.int32)
        for y0, y1 in seen[caller]:  # complete when in_bands returns
            assert y0 % align == 0 and y1 > y0
            covered[y0:y1] += 1
        results[caller] = bool((covered == 1).all()) and (len(seen[caller]) > 1 or rows <= align or callers > 1)

    results: dict[int, bool] = {}
    threads = [threading.Thread(target=call, args=(caller,)) for caller in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == {caller: True for caller in range(callers)} and pixels._handed_out == 0


def test_bands_split_less_while_the_cores_are_taken(monkeypatch):
    """Images already spread over the cores (a GPU's gathered batch, 32 threads) gain nothing from more
    bands and pay for each in the GIL: a call splits over the free cores only, and gives them back
    when it returns or raises."""
    monkeypatch.setattr(pixels, "CORES", 4)
    seen = []
    pixels.in_bands(1857, 4_600_000, lambda y0, y1: seen.append((y0, y1)), 16)
    assert len(seen) == 4 and pixels._handed_out == 0
    monkeypatch.setattr(pixels, "_handed_out", 2)  # two bands of other images running
    seen.clear()
    pixels.in_bands(1857, 4_600_000, lambda y0, y1: seen.append((y0, y1)), 16)
    assert len(seen) == 2 and pixels._handed_out == 2
    monkeypatch.setattr(pixels, "_handed_out", 4)
    seen.clear()
    pixels.in_bands(1857, 4_600_000, lambda y0, y1: seen.append((y0, y1)), 16)
    assert seen == [(0, 1857)] and pixels._handed_out == 4

    def fails(y0, y1):
        raise RuntimeError("a band failed")

    monkeypatch.setattr(pixels, "_handed_out", 0)
    with pytest.raises(RuntimeError, match="a band failed"):
        pixels.in_bands(1857, 4_600_000, fails, 16)
    assert pixels._handed_out == 0


def test_one_band_each_keeps_a_threads_passes_in_that_thread(monkeypatch):
    """A gathered batch's threads each run their own image whole: no band is handed out, in the
    thread that asked only, and only inside the block."""
    monkeypatch.setattr(pixels, "CORES", 4)
    seen = []

    def record(y0, y1):
        seen.append((y0, y1, threading.current_thread().name))

    with pixels.one_band_each():
        pixels.in_bands(1857, 4_600_000, record, 16)
        with ThreadPoolExecutor(1) as other:  # another thread, not inside the block: still split
            other.submit(pixels.in_bands, 1857, 4_600_000, lambda y0, y1: None, 16).result()
    assert seen == [(0, 1857, threading.current_thread().name)] and pixels._handed_out == 0
    seen.clear()
    pixels.in_bands(1857, 4_600_000, record, 16)
    assert len(seen) == 4


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="no fork here")
def test_a_forked_child_resizes_on_threads_of_its_own():
    """multiprocessing forks on Linux by default, and a child has none of the parent's threads:
    with the parent's band pool, its first resize waited forever."""
    import multiprocessing

    image = Image.fromarray(_noise(3, 1500, 2000, 3))
    expected = pixels.resize_exact(image, (320, 320))  # the parent's band threads exist from here on
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(pixels.resize_exact, (image, (320, 320))).get(timeout=60)
    assert np.array_equal(got, expected)


@pytest.mark.skipif(cores.CORES < 2 or not hasattr(os, "sched_setaffinity"), reason="needs two cores to pin to")
@pytest.mark.parametrize("kind", ["bands", "a matting pool"])
def test_pixel_threads_each_keep_to_their_own_core(kind):
    """Two pool threads woken at once were often run one after the other on the waker's core
    (bench/RESULTS.md): the band threads and matting's pools keep each worker to one allowed core,
    and two passes that run at once run on two different cores."""
    import threading

    together = threading.Barrier(2, timeout=20)  # both passes on their threads at the same time
    seen = []

    def fill(*rows):
        seen.append(os.sched_getaffinity(0))
        together.wait()

    if kind == "bands":
        pixels.in_bands(1000, 2 * pixels._MIN_BAND_WORK, fill)
    else:
        with cores.pool_one_core_each(2, "test-pool") as pool:
            list(pool.map(fill, range(2)))
    assert len(seen) == 2 and all(len(cpus) == 1 and cpus <= set(cores.ALLOWED) for cpus in seen)
    assert seen[0] != seen[1]
    assert len(os.sched_getaffinity(0)) == cores.CORES  # the caller's own thread is left as it was


def _vm_flags(array: np.ndarray) -> list[str]:
    """The kernel's flags for the mapping that holds the middle of ``array`` (/proc/self/smaps;
    numpy's advice starts at a page boundary, which splits the mapping)."""
    address, flags, inside = array.ctypes.data + array.nbytes // 2, [], False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                start, end = (int(part, 16) for part in head.split("-"))
                inside = start <= address < end
            elif inside and head == "VmFlags:":
                flags = line.split()[1:]
    return flags


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="reads Linux's /proc/self/smaps")
def test_full_size_results_do_not_ask_for_huge_pages_and_leave_numpys_switch_as_it_was():
    """Where memory is fragmented, the first touch of a huge-page-advised array makes the kernel
    compact memory (a fresh 4.6 MP cutout: several times slower, bench/RESULTS.md). numpy asks for
    huge pages on arrays of 4 MB and more; full_size does not, and puts numpy's switch back, also
    with threads allocating at once."""
    size = (64 << 20,)  # past malloc's mmap threshold: a mapping of its own
    plain = np.empty(size, np.uint8)
    if "hg" not in _vm_flags(plain):
        pytest.skip("numpy does not ask this kernel for huge pages")
    assert "hg" not in _vm_flags(pixels.full_size(size))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: pixels.full_size((5 << 20,)), range(64)))
    assert "hg" in _vm_flags(np.empty(size, np.uint8))


def _rembg_input(pixels: np.ndarray, pre: Preprocess) -> np.ndarray:
    """rembg's own numpy steps (sessions/base.py ``normalize``) on already resized pixels."""
    scaled = pixels / (max(np.max(pixels), 1e-6) if pre.scale == "max" else 255.0)
    planes = [(scaled[:, :, c] - pre.mean[c]) / pre.std[c] for c in range(3)]
    return np.expand_dims(np.stack(planes), 0).astype(np.float32)


def _rembg_mask(output: np.ndarray) -> np.ndarray:
    """rembg's min-max rescaling and truncation to uint8 (sessions/u2net.py ``predict``)."""
    pred = output[0, 0]
    low, high = np.min(pred), np.max(pred)
    return (np.clip((pred - low) / (high - low), 0, 1) * 255).astype(np.uint8)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), height=st.integers(1, 40), width=st.integers(1, 40),
       scale=st.sampled_from(["max", "255"]), dark=st.booleans())
def test_network_tensors_equal_rembgs_numpy_steps_bit_for_bit(seed, height, width, scale, dark):
    """The input tensor and the mask come from numba kernels that keep the GIL free
    (models._tensor_kernels); they must give exactly what rembg's numpy expressions give."""
    rng = np.random.default_rng(seed)
    pixels = _noise(seed, height, width, 3) // (64 if dark else 1)  # dark: a small maximum to divide by
    pre = Preprocess(320, tuple(rng.uniform(0, 1, 3)), tuple(rng.uniform(0.1, 1, 3)), scale=scale)
    tensor = np.empty((1, 3, height, width), np.float32)
    predict.kernels.normalise(pixels, scale == "max", np.array(pre.mean), np.array(pre.std), tensor)
    assert np.array_equal(tensor.view(np.uint32), _rembg_input(pixels, pre).view(np.uint32))

    output = (rng.normal(size=(1, 1, height + 1, width)) * rng.uniform(0.01, 30)).astype(np.float32)
    mask = np.empty(output.shape[2:], np.uint8)
    predict.kernels.minmax_mask(output[0, 0], mask)
    assert np.array_equal(mask, _rembg_mask(output))


def test_a_flat_or_nan_network_output_gives_an_empty_mask():
    """Where rembg's steps would divide by zero (or by NaN), the mask is empty, as segkit's was before."""
    for output in (np.full((5, 6), 0.3), np.where(np.eye(5, 6) > 0, np.nan, np.linspace(0, 1, 30).reshape(5, 6))):
        mask = np.full(output.shape, 9, np.uint8)
        predict.kernels.minmax_mask(output.astype(np.float32), mask)
        assert not mask.any()
