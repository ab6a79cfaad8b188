"""A/B of one pixel-side mechanism in one process: the code with it ("after") against the code
without it ("before"), interleaved with the bare network as in ``make bench``'s 4.6 MP row.

Changes:
  huge-pages       ``pixels.resize.full_size`` (full-resolution results allocated without numpy's
                   request for transparent huge pages) against plain ``np.empty``
  pinned-threads   segkit's pixel threads each kept to one core (``pixels.cores``) against unpinned
                   threads, for the resize/cutout bands and matting's pools
  gil-steps        the network's tensors from numba kernels and 1 MB Pillow strips against numpy's
                   steps and 64-row strips (``bench.threads_ab``)

``--beside rembg`` puts a ``rembg.remove`` call in the rotation, as in ``make bench``; ``--beside
matting`` a 1 MP segkit call with alpha matting (other work of a server). ``--matting-case hair``
times ``alpha_matting_fast`` on that case of ``bench.matting_cases`` (4.6 MP) instead of ``segment()``.

    .venv/bin/python -m bench.pipeline_ab --change huge-pages|pinned-threads|gil-steps [--beside none|rembg|matting]
        [--matting-case hair|soft|fur|clutter] [--repeat 15]
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bench.run import interleaved, photo


def huge_pages():
    """(apply_before, apply_after) for ``full_size``."""
    from segkit.pixels import resize

    after = resize.full_size

    def before(shape, dtype=np.uint8):
        return np.empty(shape, dtype)

    return (lambda: setattr(resize, "full_size", before)), (lambda: setattr(resize, "full_size", after))


def pinned_threads():
    """(apply_before, apply_after) for the pinned pools: the band pool is swapped for an unpinned
    one, and the pools made per call (matting's) pin nothing."""
    from segkit.pixels import cores, resize

    pinned_bands, pin = resize._BANDS, cores.pin_to
    plain_bands = ThreadPoolExecutor(max_workers=resize.CORES, thread_name_prefix="plain-band")

    def apply(bands, pin_to):
        resize._BANDS, cores.pin_to = bands, pin_to

    return (lambda: apply(plain_bands, lambda core: None)), (lambda: apply(pinned_bands, pin))


def gil_steps():
    """(apply_before, apply_after) for the tensor kernels and 1 MB strips (``bench.threads_ab``'s
    "before" and "after"), on one image: does the many-threads change cost a lone call anything?"""
    from bench.threads_ab import BEFORE, SHIPPED, use

    return (lambda: use(BEFORE)), (lambda: use(SHIPPED))


CHANGES = {"huge-pages": huge_pages, "pinned-threads": pinned_threads, "gil-steps": gil_steps}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--change", choices=list(CHANGES), default="huge-pages")
    parser.add_argument("--beside", choices=["none", "rembg", "matting"], default="rembg")
    parser.add_argument("--matting-case", choices=["hair", "soft", "fur", "clutter"])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--megapixels", type=float, default=4.6)
    args = parser.parse_args()

    import onnxruntime as ort

    import segkit

    before, after = CHANGES[args.change]()
    image = photo(args.megapixels)
    bare = ort.InferenceSession(str(segkit.download("u2netp")), providers=["CPUExecutionProvider"])
    feed = {bare.get_inputs()[0].name: np.random.default_rng(0).random((1, 3, 320, 320), np.float32)}
    if args.matting_case:
        from bench.matting_cases import make_case
        from segkit.pixels.matting import alpha_matting_fast

        with tempfile.TemporaryDirectory(prefix="segkit-ab-") as folder:
            path = make_case(args.matting_case, args.megapixels, folder)
            case_image, case_mask = np.load(path + "_image.npy"), np.load(path + "_mask.npy")

        def work():
            alpha_matting_fast(case_image, case_mask, 240, 10, 10)
    else:
        def work():
            segkit.segment(image)

    def with_change(apply):
        def call():
            apply()
            work()
        return call

    contenders = {"bare": lambda: bare.run(None, feed), "before": with_change(before), "after": with_change(after)}
    if args.beside == "rembg":
        import rembg

        session = rembg.new_session("u2netp", providers=["CPUExecutionProvider"])
        contenders["beside"] = lambda: rembg.remove(image, session=session)
    elif args.beside == "matting":
        small = photo(1.0)
        contenders["beside"] = lambda: (after(), segkit.segment(small, alpha_matting=True))
    # half the rounds with "after" first: a segkit call right after another is about 2% faster
    # (the same code as both contenders measured so; bench/RESULTS.md)
    swapped = {name: contenders[name] for name in ("bare", "after", "before", *contenders) if name in contenders}
    try:
        halves = [interleaved(order, count) for order, count in
                  ((contenders, args.repeat - args.repeat // 2), (swapped, args.repeat // 2)) if count]
        times = {name: sum(half[name][0] for half in halves) / len(halves) for name in contenders}
    finally:
        after()
    case = f"{args.matting_case} matting" if args.matting_case else "segment()"
    print(f"{args.change}: {case}, {args.megapixels} MP, beside: {args.beside}; bare {times['bare'] * 1000:.1f} ms, "
          f"before {times['before'] * 1000:.1f} ms ({times['before'] / times['bare']:.3f}x), after "
          f"{times['after'] * 1000:.1f} ms ({times['after'] / times['bare']:.3f}x), "
          f"change {(times['after'] / times['before'] - 1) * 100:+.1f}%")


if __name__ == "__main__":
    main()
