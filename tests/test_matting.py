"""segkit.matting: the fast alpha matting gives rembg's answer.

The masks here are synthetic stand-ins for a model's output, built the way
rembg builds its mask: a 320x320 soft map (a blurred, wavy ellipse around the
subject plus a half-transparent patch, where a model is unsure) resized to the
image with Lanczos. No model weights are needed.
"""

import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageFilter
from scipy.ndimage import binary_erosion
from skimage import data

from segkit.pixels import _ordering as ordering, matting
from segkit.pixels.matting import alpha_matting_fast, alpha_matting_reference, make_trimap

PHOTOS = {"astronaut": (0.45, 0.5, 0.4, 0.3), "chelsea": (0.5, 0.45, 0.35, 0.4), "coffee": (0.5, 0.5, 0.35, 0.4)}


def soft_mask(shape, cy, cx, ry, rx, seed=0, patch=True):
    """Model-like uint8 mask: soft wavy ellipse (+ a 50% patch) at 320x320, Lanczos-resized."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:320, 0:320] / 320.0
    angle = np.arctan2(yy - cy, xx - cx)
    wobble = 1 + sum(0.06 * rng.random() * np.sin(k * angle + 6 * rng.random()) for k in range(2, 6))
    soft = (np.hypot((yy - cy) / ry, (xx - cx) / rx) < wobble).astype(float)
    if patch:
        soft[np.hypot(yy - 0.15, xx - 0.15) < 0.1] = 0.5
    small = Image.fromarray((soft * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.5))
    return np.asarray(small.resize(shape[::-1], Image.LANCZOS))


def photo(name):
    image = getattr(data, name)()
    return image, soft_mask(image.shape[:2], *PHOTOS[name])


def rembg_trimap(mask, fg, bg, erode):
    """rembg.bg.alpha_matting_cutout's trimap construction, copied verbatim."""
    is_foreground = mask > fg
    is_background = mask < bg
    structure = None
    if erode > 0:
        structure = np.ones((erode, erode), dtype=np.uint8)
    is_foreground = binary_erosion(is_foreground, structure=structure)
    is_background = binary_erosion(is_background, structure=structure, border_value=1)
    trimap = np.full(mask.shape, dtype=np.uint8, fill_value=128)
    trimap[is_foreground] = 255
    trimap[is_background] = 0
    return trimap


def band_mad(a, b, unknown):
    return np.abs(a[..., 3].astype(float) - b[..., 3])[unknown].mean() / 255


@pytest.mark.parametrize("erode", [0, 1, 2, 5, 10, 15])
def test_trimap_is_rembgs(erode):
    _, mask = photo("chelsea")
    rng = np.random.default_rng(erode)
    noisy = np.clip(mask + rng.integers(-30, 30, mask.shape), 0, 255).astype(np.uint8)
    for m in (mask, noisy, mask[:7, :5], mask[:1]):
        for fg, bg in ((240, 10), (200, 50)):
            assert np.array_equal(make_trimap(m, fg, bg, erode), rembg_trimap(m, fg, bg, erode))


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_fast_matches_reference_on_photos(name):
    image, mask = photo(name)
    unknown = make_trimap(mask, 240, 10, 10) == 128
    fast = alpha_matting_fast(image, mask, 240, 10, 10)
    ref = alpha_matting_reference(image, mask, 240, 10, 10)
    assert fast.shape == ref.shape == image.shape[:2] + (4,) and fast.dtype == np.uint8
    assert 0.02 < unknown.mean() < 0.5
    assert band_mad(fast, ref, unknown) <= 0.02
    assert np.array_equal(fast[~unknown, 3], ref[~unknown, 3])
    # colours where the reference's alpha is partial
    partial = (ref[..., 3] > 0) & (ref[..., 3] < 255)
    assert np.abs(fast[..., :3].astype(float) - ref[..., :3])[partial].mean() / 255 < 0.03


def test_reference_is_rembg_and_fast_agrees_with_rembg():
    rembg_bg = pytest.importorskip("rembg.bg")
    image, mask = photo("astronaut")
    unknown = make_trimap(mask, 240, 10, 10) == 128
    rembg = np.asarray(rembg_bg.alpha_matting_cutout(Image.fromarray(image), Image.fromarray(mask), 240, 10, 10))
    assert np.array_equal(alpha_matting_reference(image, mask, 240, 10, 10), rembg)
    fast = alpha_matting_fast(image, mask, 240, 10, 10)
    assert band_mad(fast, rembg, unknown) <= 0.02
    assert np.array_equal(fast[~unknown, 3], rembg[~unknown, 3])


def test_against_ground_truth_composite():
    """alpha * F + (1 - alpha) * B with a known alpha over two textures: an edge
    whose softness grows from 2 to 12 pixels, plus thin 50% strands."""
    size = 500
    fg_tex = np.asarray(Image.fromarray(data.astronaut()).resize((size, size)), float)
    bg_tex = np.asarray(Image.fromarray(data.coffee()).resize((size, size)), float)
    yy, xx = np.mgrid[0:size, 0:size]
    truth = 1 / (1 + np.exp(-(size * 0.45 + 30 * np.sin(yy / 50.0) - xx) / (2 + 10 * yy / size)))
    for k in range(6):
        strand = (np.abs(yy - 40 - 80 * k - 0.3 * (xx - size * 0.45)) < 1.5) & (xx > size * 0.4) & (xx < size * 0.7)
        truth = np.maximum(truth, 0.5 * strand)
    image = np.clip(np.round(truth[..., None] * fg_tex + (1 - truth[..., None]) * bg_tex), 0, 255).astype(np.uint8)
    blurred = Image.fromarray((truth * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(3))
    mask = np.asarray(blurred.resize((100, 100), Image.BILINEAR).resize((size, size), Image.LANCZOS))
    unknown = make_trimap(mask, 240, 10, 10) == 128
    fast = alpha_matting_fast(image, mask, 240, 10, 10)
    ref = alpha_matting_reference(image, mask, 240, 10, 10)

    def alpha_error(out):
        return np.abs(out[..., 3] / 255 - truth)[unknown].mean()

    assert alpha_error(ref) < 0.1
    assert alpha_error(fast) <= alpha_error(ref) + 0.005
    partial = (truth > 0.02) & (truth < 0.98) & unknown

    def colour_error(out):
        return np.abs(out[..., :3] / 255 - fg_tex / 255)[partial].mean()

    assert colour_error(fast) <= colour_error(ref) + 0.005


def test_separate_band_regions():
    image = data.coffee()
    mask = np.maximum(soft_mask(image.shape[:2], 0.3, 0.25, 0.15, 0.12, patch=False),
                      soft_mask(image.shape[:2], 0.6, 0.75, 0.2, 0.15, seed=1, patch=False))
    unknown = make_trimap(mask, 240, 10, 10) == 128
    fast = alpha_matting_fast(image, mask, 240, 10, 10)
    ref = alpha_matting_reference(image, mask, 240, 10, 10)
    assert band_mad(fast, ref, unknown) <= 0.02


def test_low_memory_solve_gives_the_same_cutout(monkeypatch):
    """Over the factor budget the solver keeps the widest fronts' rows and factorises the rest again
    (this photo's factor is about 59 bytes per pixel): all of it kept, part of it, almost none of it,
    on several threads and on one, the cutout is the same. So is the work done side by side: the
    dissection's two sides, the back substitution's subtrees, the colours' two sweeps (on every level
    here, not only on large ones)."""
    image, mask = photo("astronaut")
    monkeypatch.setattr(matting, "FACTOR_BYTES_PER_PIXEL", 1000)
    monkeypatch.setattr(matting, "SIDE_BY_SIDE_PIXELS", 100)
    kept = alpha_matting_fast(image, mask, 240, 10, 10)
    for threads in (4, 1):
        monkeypatch.setattr(matting.kernels, "MATTING_THREADS", threads)  # the band's stripes
        monkeypatch.setattr(matting.cholesky, "MATTING_THREADS", threads)  # the subtrees
        monkeypatch.setattr(matting, "MATTING_THREADS", threads)  # the colours' sweeps
        monkeypatch.setattr(ordering, "MATTING_THREADS", threads)  # the dissection
        for budget in (30, 0.01):
            monkeypatch.setattr(matting, "FACTOR_BYTES_PER_PIXEL", budget)
            assert np.array_equal(alpha_matting_fast(image, mask, 240, 10, 10), kept), (threads, budget)


def test_the_colours_second_sweep_reads_only_what_the_first_has_finished(monkeypatch):
    """The second Gauss-Seidel sweep of a level starts a run of rows only after the first has
    finished the next run: the first is slowed down here, and every run's second pass must still
    start after the first pass of the run below it has ended."""
    image, mask = photo("astronaut")
    monkeypatch.setattr(matting, "SIDE_BY_SIDE_PIXELS", 100)
    monkeypatch.setattr(matting, "MATTING_THREADS", 2)
    expected = alpha_matting_fast(image, mask, 240, 10, 10)
    sweep, calls, levels, lock = matting.kernels.fb_sweep, [], [], threading.Lock()

    def slow_first_sweep(*args):
        level, first, last = id(args[4]), args[8], args[9]
        with lock:
            levels.append(args[4])  # kept alive, so that no later level's array takes its id
            passes = sum(1 for call in calls if call[:3] == (level, first, last))
        if passes == 0:
            time.sleep(0.002)
        start = time.perf_counter()
        sweep(*args)
        with lock:
            calls.append((level, first, last, passes, start, time.perf_counter()))

    monkeypatch.setattr(matting.kernels, "fb_sweep", slow_first_sweep)
    assert np.array_equal(alpha_matting_fast(image, mask, 240, 10, 10), expected)
    ended = {(level, first): end for level, first, _, passes, _, end in calls if passes == 0}
    seconds = [(level, first, last, start) for level, first, last, passes, start, _ in calls if passes == 1]
    assert len(seconds) > 10
    for level, first, last, start in seconds:
        below = ended.get((level, last))  # the run that starts where this one ends
        assert below is None or start >= below, (first, last)


def binary(shape):
    mask = np.zeros(shape, np.uint8)
    mask[:, : shape[1] // 2] = 255
    return mask


EDGE_CASES = {
    "empty band": (binary((40, 60)), 1),  # erode 1 keeps a hard mask hard: no unknown pixel
    "no foreground": (np.full((40, 60), 100, np.uint8), 10),
    "only background": (np.zeros((40, 60), np.uint8), 10),
    "no background": (np.full((40, 60), 255, np.uint8), 10),
    "all unknown": (np.full((40, 60), 128, np.uint8), 10),
    "erode 0": (binary((40, 60)), 0),
    "1xN": (binary((1, 30)), 0),
    "Nx1": (np.linspace(0, 255, 30).astype(np.uint8)[:, None], 0),
    "2x2": (np.array([[0, 255], [255, 128]], np.uint8), 0),
    "3x3": (np.array([[0, 0, 255], [0, 128, 255], [0, 255, 255]], np.uint8), 0),
}


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_edge_cases_never_raise(case):
    mask, erode = EDGE_CASES[case]
    image = data.astronaut()[100 : 100 + mask.shape[0], 200 : 200 + mask.shape[1]].copy()
    fast = alpha_matting_fast(image, mask, 240, 10, erode)
    ref = alpha_matting_reference(image, mask, 240, 10, erode)
    assert fast.shape == ref.shape == mask.shape + (4,) and fast.dtype == np.uint8
    unknown = make_trimap(mask, 240, 10, erode) == 128
    assert np.array_equal(fast[~unknown, 3], ref[~unknown, 3])
    assert not unknown.any() or band_mad(fast, ref, unknown) <= 0.02
    visible = ref[..., 3] > 0
    assert np.abs(fast[..., :3].astype(float) - ref[..., :3])[visible].mean() / 255 < 0.03 if visible.any() else True


def test_fallback_is_rembgs_decontaminate():
    """No foreground pixel: rembg.remove falls back to decontaminate_cutout (alpha = mask)."""
    rembg_bg = pytest.importorskip("rembg.bg")
    image = data.chelsea()[:50, :70].copy()
    mask = np.tile(np.linspace(0, 200, 70).astype(np.uint8), (50, 1))
    with pytest.raises(ValueError):
        rembg_bg.alpha_matting_cutout(Image.fromarray(image), Image.fromarray(mask), 240, 10, 10)
    expected = np.asarray(rembg_bg.decontaminate_cutout(Image.fromarray(image), Image.fromarray(mask)))
    assert np.array_equal(alpha_matting_reference(image, mask, 240, 10, 10), expected)
    fast = alpha_matting_fast(image, mask, 240, 10, 10)
    assert np.array_equal(fast[..., 3], mask)
    partial = (mask > 0) & (mask < 255)
    assert np.abs(fast[..., :3].astype(float) - expected[..., :3])[partial].mean() / 255 < 0.03


def test_rgba_and_non_contiguous_input():
    image, mask = photo("chelsea")
    rgba = np.dstack([image, np.full(mask.shape, 255, np.uint8)])
    expected = alpha_matting_fast(image, mask, 240, 10, 10)
    assert np.array_equal(alpha_matting_fast(rgba, mask, 240, 10, 10), expected)
    flipped = alpha_matting_fast(image[:, ::-1], mask[:, ::-1], 240, 10, 10)
    assert flipped.shape == expected.shape


def test_invalid_input_raises_value_error():
    with pytest.raises(ValueError):
        alpha_matting_fast(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), 240, 10, 10)
    with pytest.raises(ValueError):
        alpha_matting_fast(np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4), np.uint8), 240, 10, 10)


def test_two_threads_matting_at_once_survive_numbas_fallback_threading_layer():
    """Batches matte two images side by side. Where neither OpenMP nor TBB is installed,
    numba runs parallel kernels (pymatting's) on its workqueue layer, which aborts the
    process when two threads enter them at once. The fast path runs none: it never
    imports pymatting (whose import also compiles all of its kernels)."""
    import os
    import subprocess
    import sys

    code = """
import threading
import numpy as np
from skimage import data
from segkit.pixels.matting import alpha_matting_fast
image = data.chelsea()[:160, :160].copy()
mask = np.zeros((160, 160), np.uint8)
mask[40:120, 40:120] = 255
def run():
    for _ in range(25):
        alpha_matting_fast(image, mask, 240, 20, 10)
threads = [threading.Thread(target=run) for _ in range(2)]
[t.start() for t in threads]
[t.join() for t in threads]
import sys
print("pymatting" in sys.modules)
"""
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-1] == "False"


def test_solves_keep_openblas_on_one_thread_and_give_its_count_back(monkeypatch):
    """scipy's OpenBLAS thread count is the whole process's, even through its "local" setter. Every
    factorisation, on every solver thread of three mattings at once, must run with it at 1 (threaded
    BLAS splits the sums by timing: the cutouts differed from call to call), and the caller's count
    must come back after the last solve, not be restored under a running one or left at 1."""
    from concurrent.futures import ThreadPoolExecutor

    from segkit.pixels._blas import ONE_BLAS_THREAD

    cholesky = matting.cholesky
    if ONE_BLAS_THREAD._count is None:
        pytest.skip("scipy's OpenBLAS here is not a pip wheel's")
    get, set_count = ONE_BLAS_THREAD._count
    seen, factor = [], cholesky.factor_nodes

    def factor_seeing_the_count(*args):
        seen.append(get())
        ok = factor(*args)
        seen.append(get())
        return ok

    monkeypatch.setattr(cholesky, "factor_nodes", factor_seeing_the_count)
    image, mask = photo("astronaut")
    before = get()
    set_count(2)
    try:
        with ThreadPoolExecutor(3) as pool:
            cutouts = list(pool.map(lambda _: alpha_matting_fast(image, mask, 240, 10, 10), range(3)))
        after = get()
    finally:
        set_count(before)
    assert seen and set(seen) == {1}
    assert after == 2
    assert all(np.array_equal(cutout, cutouts[0]) for cutout in cutouts)


def test_the_lu_fallback_solves_the_same_system(monkeypatch):
    """Where the Cholesky finds the system not positive definite in floating point, a general sparse LU
    solves it instead. The solver is handed only the upper triangle, so the fallback must rebuild the whole
    symmetric matrix: forced here, it must give the Cholesky's alpha."""
    image, mask = photo("chelsea")
    expected = alpha_matting_fast(image, mask, 240, 10, 10)
    monkeypatch.setattr(matting.cholesky, "solve", lambda *args, **kwargs: None)
    via_lu = alpha_matting_fast(image, mask, 240, 10, 10)
    assert np.abs(via_lu.astype(int) - expected).max() <= 1


def test_float32_fronts_give_float64s_cutout_and_fall_back_to_it(monkeypatch):
    """Fronts are eliminated in float32 by default. Their alpha must be the float64 solve's after rounding,
    and where float32 finds the system not positive definite, float64 solves it (not the slow LU)."""
    image, mask = photo("astronaut")
    trimap = make_trimap(mask, 240, 10, 10)
    single, double = (matting._solve_alpha(image, trimap, precisions=(p,)) for p in (np.float32, np.float64))
    assert np.abs(single[3] - double[3]).max() < 1 / 255
    solve, tried = matting.cholesky.solve, []

    def float32_fails(*args, precision, **kwargs):
        tried.append(precision)
        return None if precision == np.float32 else solve(*args, precision=precision, **kwargs)

    monkeypatch.setattr(matting.cholesky, "solve", float32_fails)
    assert np.array_equal(matting._solve_alpha(image, trimap)[3], double[3])
    assert tried == [np.float32, np.float64]


def test_float64_fronts_keep_float64_rows_within_the_same_budget(monkeypatch):
    """The factor's rows are kept in the fronts' precision: in float64 each row takes twice the bytes,
    so over a budget more of the tree is factorised again; the alpha is the same either way."""
    image, mask = photo("astronaut")
    trimap = make_trimap(mask, 240, 10, 10)
    monkeypatch.setattr(matting, "FACTOR_BYTES_PER_PIXEL", 1000)
    kept = matting._solve_alpha(image, trimap, precisions=(np.float64,))[3]
    widest, redone = matting.cholesky._widest_fronts, []

    def recorded(*args):
        kept_rows, spans = widest(*args)
        redone.append(len(spans))
        return kept_rows, spans

    monkeypatch.setattr(matting.cholesky, "_widest_fronts", recorded)
    monkeypatch.setattr(matting, "FACTOR_BYTES_PER_PIXEL", 30)
    assert np.array_equal(matting._solve_alpha(image, trimap, precisions=(np.float64,))[3], kept)
    assert redone and redone[0] > 0  # part of the tree was factorised again
