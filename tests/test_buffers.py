"""Reused result memory never changes an array or image somebody still holds.

``segkit.buffers`` hands the memory of dropped results to the next image of the
same size; these tests pin down when memory counts as dropped (no array, view,
slice or Pillow image of it left) and that results kept by callers survive
later requests untouched.
"""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest
from PIL import Image

import segkit
from segkit import buffers, pixels

BIG = (1024, 1024, 4)  # 4 MB: pooled


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


@pytest.fixture(autouse=True)
def _empty_pool(monkeypatch):
    gc.collect()
    monkeypatch.setattr(buffers, "_idle", [])
    monkeypatch.setattr(buffers, "_idle_bytes", 0)


def test_small_arrays_are_plain_numpy():
    small = buffers.take((100, 100, 3))
    assert small.shape == (100, 100, 3) and small.dtype == np.uint8 and small.flags.owndata
    assert buffers.idle_bytes() == 0


def test_dropped_memory_is_reused_for_the_same_size_only():
    first = buffers.take(BIG)
    address = _address(first)
    del first
    assert buffers.idle_bytes() == int(np.prod(BIG))
    other_size = buffers.take((1024, 1024, 3))
    assert _address(other_size) != address and buffers.idle_bytes() == int(np.prod(BIG))
    again = buffers.take(BIG)
    assert _address(again) == address and buffers.idle_bytes() == 0
    del again
    floats = buffers.take((1024, 1024), np.float32)  # the pool goes by bytes, whatever the dtype
    assert floats.dtype == np.float32 and floats.shape == (1024, 1024) and _address(floats) == address


def test_a_view_or_slice_keeps_the_memory_in_use():
    array = buffers.take(BIG)
    array[:] = 7
    part = array[10:20].reshape(-1)[5:]
    del array
    assert buffers.idle_bytes() == 0  # the slice still uses it
    fresh = buffers.take(BIG)
    fresh[:] = 99
    assert np.all(part == 7)
    del part
    assert buffers.idle_bytes() == int(np.prod(BIG))


def test_a_pillow_image_keeps_the_memory_in_use():
    mask = np.full((1200, 1000), 200, np.uint8)
    image = Image.fromarray(np.full((1200, 1000, 3), 100, np.uint8))
    cut = pixels.cutout(image, mask)
    expected = np.asarray(cut).copy()
    gc.collect()
    assert buffers.idle_bytes() == 0  # the cutout image holds its buffer
    later = pixels.cutout(Image.fromarray(np.full((1200, 1000, 3), 3, np.uint8)), np.full((1200, 1000), 255, np.uint8))
    assert np.array_equal(np.asarray(cut), expected)
    assert not np.array_equal(np.asarray(later), expected)
    del cut, later
    gc.collect()
    assert buffers.idle_bytes() == 2 * 1200 * 1000 * 4


def test_idle_memory_is_capped_oldest_first(monkeypatch):
    monkeypatch.setattr(buffers, "IDLE_LIMIT_BYTES", 10 << 20)
    held = [buffers.take(BIG) for _ in range(4)]  # 16 MB
    addresses = [_address(a) for a in held]
    while held:
        held.pop(0)  # given back in this order
    assert buffers.idle_bytes() == 8 << 20  # two of four kept
    reused = [buffers.take(BIG), buffers.take(BIG)]
    assert {_address(a) for a in reused} == set(addresses[2:])  # the newest two


def test_threads_never_share_live_memory():
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        for _ in range(200):
            array = buffers.take((512, 1024 + 512 * int(rng.integers(0, 3)), 4))
            value = int(rng.integers(0, 256))
            array[::97] = value
            if not np.all(array[::97] == value):  # another thread wrote into our memory
                errors.append(seed)
            del array

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_results_kept_by_the_caller_survive_later_requests(photos):
    """The real pipeline: a kept cutout and mask are not overwritten by the next request."""
    big = Image.fromarray(photos["astronaut"]).resize((1536, 1536))
    first = segkit.process([big])[0]
    cutout, mask = np.asarray(first.cutout).copy(), np.asarray(first.mask).copy()
    flipped = big.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    for _ in range(3):
        second = segkit.process([flipped])[0]
        assert not np.array_equal(np.asarray(second.mask), mask)
        del second
    assert np.array_equal(np.asarray(first.cutout), cutout)
    assert np.array_equal(np.asarray(first.mask), mask)
