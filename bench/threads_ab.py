"""A/B of the GIL-light steps: many images at once from threads (a GPU's gathered batch).

"after" is segkit as it is: the network's tensors made by numba kernels (``models._tensor_kernels``),
Pillow read in strips of about 1 MB, and the gathered runner's threads (three batches' worth) each
making their own image whole (``resize.one_band_each``). "before" puts back what these replaced:
rembg's numpy expressions for the tensors and 64-row strips, each of whose steps frees and takes
back the GIL, and two batches' worth of threads handing bands to the band pool. "steps" is the new
steps with the old runner. All give the same bytes (checked first). Rows alternate the three, best
of ``--repeat``:
- host work alone (decode, resizes, masks, cutout; an instant stand-in for the network) from
  1 to 48 threads, the ceiling of a gathered batch;
- with ``--gathered`` (a GPU), ``process()`` of 64 and 192 photos, gathered 16 a run.

    .venv/bin/python -m bench.threads_ab [--repeat 3] [--gathered]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

from segkit import batch

import numpy as np
from PIL import Image

import segkit
from segkit.models import predict
from segkit.models.lookup import get_model
from segkit.models.sessions import build_session
from segkit.options import Options
from segkit.pipeline import segment_one
from segkit.pixels import resize

from .batch_bench import photos
from .gpu import _StandInNetwork


def numpy_model_input(image, pre):
    """``predict.model_input`` before the kernels: rembg's float64 steps, one channel at a time."""
    method = Image.Resampling.LANCZOS if pre.resize == "square" else Image.Resampling.BOX
    pixels = resize.resize_exact(image, predict.input_size(pre, *image.size), method, rgb=True)
    divisor = max(float(pixels.max()), 1e-6) if pre.scale == "max" else 255.0
    tensor = np.empty((1, 3) + pixels.shape[:2], np.float32)
    for c in range(3):
        tensor[0, c] = (pixels[:, :, c] / divisor - pre.mean[c]) / pre.std[c]
    return tensor


def numpy_masks(output, spec, size):
    """``predict.masks_from_output`` before the kernels, for the min-max models."""
    pred = output[0, 0].astype(np.float32, copy=False)
    low, high = pred.min(), pred.max()
    pred = (pred - low) / (high - low) if high > low else np.zeros_like(pred)
    return [resize.resize_exact((np.clip(pred, 0, 1) * 255).astype(np.uint8), size)]


def row_strips(y0: int, y1: int, row_bytes: int):
    return ((s0, min(y1, s0 + 64)) for s0 in range(y0, y1, 64))


def two_batches_of_threads(items, settings, session, clock):
    """``batch._gathered`` before: twice a batch's worth of threads, passes split into bands."""
    with session.expecting(len(items)), ThreadPoolExecutor(2 * session.max_batch) as pool:
        return list(pool.map(lambda i: batch._run_one(items[i], i, settings, session, clock, nullcontext()),
                             range(len(items))))


SHIPPED = (predict.model_input, predict.masks_from_output, resize._strips, batch._gathered, resize.one_band_each)
BEFORE = (numpy_model_input, numpy_masks, row_strips, two_batches_of_threads, nullcontext)
VARIANTS = {"before": BEFORE, "steps": SHIPPED[:3] + BEFORE[3:], "after": SHIPPED}


_band_rule = [resize.one_band_each]  # how the host rows' threads split their passes, as the runner in use does


def use(steps) -> None:
    predict.model_input, predict.masks_from_output, resize._strips, batch._gathered, _band_rule[0] = steps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gathered", action="store_true", help="also time process() gathered (for a GPU)")
    args = parser.parse_args(argv)
    spec, images = get_model("u2netp"), photos(192)
    session = build_session(segkit.download("u2netp"), spec)
    tensor = predict.model_input(images[0], spec.preprocess)
    output = session.run([session.get_outputs()[0].name], {session.get_inputs()[0].name: tensor})[0]
    instant, options = _StandInNetwork(session, output), Options(model="u2netp")
    outputs = {}
    for name, steps in VARIANTS.items():
        use(steps)
        outputs[name] = [segment_one(image, options, session).cutout.tobytes() for image in images[:6]]
    assert outputs["before"] == outputs["steps"] == outputs["after"], "the variants gave different cutouts"

    def host(threads: int) -> float:
        def one(i):
            with _band_rule[0]():
                return segment_one(images[i], options, instant, i, in_flight=nullcontext())

        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(len(images))))
        return len(images) / (time.perf_counter() - start)

    def gathered(count: int) -> float:
        start = time.perf_counter()
        segkit.process(images[:count], model="u2netp")
        return count / (time.perf_counter() - start)

    rows = {f"host work alone, {n} threads, 192 photos": (lambda n=n: host(n)) for n in (1, 4, 16, 32, 48)}
    if args.gathered:
        rows |= {f"process() gathered, {n} photos": (lambda n=n: gathered(n)) for n in (64, 192)}
    print(f"u2netp, photos of about 1 MP, {resize.CORES} cores; img/s, best of {args.repeat}\n")
    print("| row | before | steps | after | after/before | after/steps |\n|---|---|---|---|---|---|")
    for row, fn in rows.items():
        best = {name: 0.0 for name in VARIANTS}
        for steps in VARIANTS.values():
            use(steps)
            fn()  # warm
        for _ in range(args.repeat):
            for name, steps in VARIANTS.items():
                use(steps)
                best[name] = max(best[name], fn())
        print(f"| {row} | {best['before']:.0f} | {best['steps']:.0f} | {best['after']:.0f} | "
              f"{best['after'] / best['before']:.2f} | {best['after'] / best['steps']:.2f} |", flush=True)
    use(SHIPPED)


if __name__ == "__main__":
    main()
