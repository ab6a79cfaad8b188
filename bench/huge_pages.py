"""A/B of ``pixels.resize.full_size``: full-resolution results allocated without numpy's request
for transparent huge pages ("after") against plain ``np.empty`` ("before"), in one process,
interleaved with the bare network (as ``make bench``'s 4.6 MP row) and, with ``--beside rembg``,
a ``rembg.remove`` call in the rotation as in ``make bench``, or ``--beside matting`` a 1 MP
segkit call with alpha matting (other work of a server).

    .venv/bin/python -m bench.huge_pages [--beside none|rembg|matting] [--repeat 15]
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.run import interleaved, photo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--beside", choices=["none", "rembg", "matting"], default="rembg")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--megapixels", type=float, default=4.6)
    args = parser.parse_args()

    import onnxruntime as ort

    import segkit
    from segkit.pixels import resize

    image = photo(args.megapixels)
    bare = ort.InferenceSession(str(segkit.download("u2netp")), providers=["CPUExecutionProvider"])
    feed = {bare.get_inputs()[0].name: np.random.default_rng(0).random((1, 3, 320, 320), np.float32)}
    after, before = resize.full_size, lambda shape, dtype=np.uint8: np.empty(shape, dtype)

    def segment_with(allocate):
        def call():
            resize.full_size = allocate
            segkit.segment(image)
        return call

    contenders = {"bare": lambda: bare.run(None, feed), "before": segment_with(before), "after": segment_with(after)}
    if args.beside == "rembg":
        import rembg

        session = rembg.new_session("u2netp", providers=["CPUExecutionProvider"])
        contenders["beside"] = lambda: rembg.remove(image, session=session)
    elif args.beside == "matting":
        small = photo(1.0)
        contenders["beside"] = lambda: (setattr(resize, "full_size", after), segkit.segment(small, alpha_matting=True))
    try:
        times = {name: seconds for name, (seconds, _) in interleaved(contenders, args.repeat).items()}
    finally:
        resize.full_size = after
    print(f"{args.megapixels} MP, beside: {args.beside}; bare {times['bare'] * 1000:.1f} ms, before "
          f"{times['before'] * 1000:.1f} ms ({times['before'] / times['bare']:.3f}x), after {times['after'] * 1000:.1f} ms "
          f"({times['after'] / times['bare']:.3f}x), change {(times['after'] / times['before'] - 1) * 100:+.1f}%")


if __name__ == "__main__":
    main()
