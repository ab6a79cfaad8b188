"""Benchmark: rembg's alpha_matting_cutout vs segkit.matting.alpha_matting_fast.

Every (image, size, method) runs in a fresh subprocess, reference and fast
interleaved, so that peak memory is that process's ru_maxrss (numpy/scipy/numba
allocations included) and neither run inherits the other's caches. Both do a
small warm-up call first so numba compilation is not timed. Band MAD is the
mean |alpha_fast - alpha_rembg| / 255 over the trimap's unknown pixels.

The mask imitates rembg's: a 320x320 soft map resized to the image with
Lanczos. By default it is synthetic (a blurred blob); with --u2netp PATH it is
the u2netp model's output on the original image (needs onnxruntime).

    python bench/matting_bench.py [--sizes 0.5 4.6 12] [--skip-reference-above 5]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image, ImageFilter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_map(shape, seed=0):
    """320x320 soft blob: an ellipse with a wavy outline, blurred like a model output."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:320, 0:320] / 320.0
    angle = np.arctan2(yy - 0.55, xx - 0.5)
    radius = 0.32 + sum(0.03 * rng.random() * np.sin(k * angle + rng.random() * 6) for k in range(2, 7))
    inside = np.hypot((yy - 0.55) * 0.9, xx - 0.5) < radius
    return Image.fromarray((inside * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.5))


def u2netp_map(image, path):
    """rembg's u2netp preprocessing: 320x320 Lanczos, max-normalise, ImageNet mean/std."""
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.asarray(image.convert("RGB").resize((320, 320), Image.LANCZOS), np.float64)
    x = (x / x.max() - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)
    out = session.run(None, {session.get_inputs()[0].name: x.transpose(2, 0, 1)[None].astype(np.float32)})[0][0, 0]
    out = (out - out.min()) / (out.max() - out.min())
    return Image.fromarray((out * 255).astype(np.uint8))


def make_case(name, megapixels, u2netp, directory):
    from skimage import data

    small = Image.fromarray(getattr(data, name)())
    scale = (megapixels * 1e6 / (small.width * small.height)) ** 0.5
    size = (round(small.width * scale), round(small.height * scale))
    soft = u2netp_map(small, u2netp) if u2netp else synthetic_map((320, 320))
    image = np.asarray(small.resize(size, Image.LANCZOS))
    mask = np.asarray(soft.resize(size, Image.LANCZOS))
    path = os.path.join(directory, f"{name}_{megapixels}")
    np.save(path + "_image.npy", image)
    np.save(path + "_mask.npy", mask)
    return path


def child(method, path, out):
    """One timed run in this process; prints JSON."""
    sys.path.insert(0, ROOT)
    image, mask = np.load(path + "_image.npy"), np.load(path + "_mask.npy")
    if method == "rembg":
        from rembg.bg import alpha_matting_cutout, decontaminate_cutout

        def run(i, m):  # as rembg.remove(alpha_matting=True) does it
            try:
                return np.asarray(alpha_matting_cutout(Image.fromarray(i), Image.fromarray(m), 240, 10, 10))
            except ValueError:
                return np.asarray(decontaminate_cutout(Image.fromarray(i), Image.fromarray(m)))
    else:
        from segkit.matting import alpha_matting_fast

        def run(i, m):
            return alpha_matting_fast(i, m, 240, 10, 10)
    run(image[:600, :600].copy(), mask[:600, :600].copy())  # warm-up: numba caches, not timed
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    cutout = run(image, mask)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.save(out, cutout[..., 3])
    print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "base_mb": base / 1024}))


def run_child(method, path, out):
    result = subprocess.run([sys.executable, __file__, "--child", method, path, out], capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{method} failed on {path}:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 4.6, 12])
    parser.add_argument("--images", nargs="+", default=["astronaut", "chelsea"])
    parser.add_argument("--skip-reference-above", type=float, default=None, metavar="MP",
                        help="do not run rembg on images larger than this (it needs minutes and GBs)")
    parser.add_argument("--u2netp", metavar="ONNX", help="use the u2netp model's mask instead of a synthetic one")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    sys.path.insert(0, ROOT)
    from segkit.matting import make_trimap

    mask_kind = "u2netp" if args.u2netp else "synthetic"
    print(f"mask: {mask_kind}; times in s, peak = process max RSS in MB (delta = above the pre-call RSS)")
    print(f"{'image':10} {'MP':>5} {'band%':>6} {'rembg s':>8} {'fast s':>7} {'speedup':>8} "
          f"{'rembg MB':>14} {'fast MB':>12} {'mem ratio':>9} {'band MAD':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for megapixels in args.sizes:
            for name in args.images:
                path = make_case(name, megapixels, args.u2netp, tmp)
                mask = np.load(path + "_mask.npy")
                unknown = make_trimap(mask, 240, 10, 10) == 128
                skip = args.skip_reference_above is not None and megapixels > args.skip_reference_above
                ref = None if skip else run_child("rembg", path, os.path.join(tmp, "ref.npy"))
                fast = run_child("fast", path, os.path.join(tmp, "fast.npy"))
                mp = mask.size / 1e6
                row = f"{name:10} {mp:5.1f} {100 * unknown.mean():6.1f} "
                if ref is None:
                    row += f"{'skipped':>8} {fast['seconds']:7.2f} {'-':>8} {'-':>14} "
                    row += f"{fast['peak_mb']:5.0f} ({fast['peak_mb'] - fast['base_mb']:4.0f}) {'-':>9} {'-':>9}"
                else:
                    a = np.load(os.path.join(tmp, "ref.npy")).astype(float)
                    b = np.load(os.path.join(tmp, "fast.npy")).astype(float)
                    mad = np.abs(a - b)[unknown].mean() / 255 if unknown.any() else 0.0
                    row += (f"{ref['seconds']:8.2f} {fast['seconds']:7.2f} {ref['seconds'] / fast['seconds']:7.1f}x "
                            f"{ref['peak_mb']:6.0f} ({ref['peak_mb'] - ref['base_mb']:5.0f}) "
                            f"{fast['peak_mb']:5.0f} ({fast['peak_mb'] - fast['base_mb']:4.0f}) "
                            f"{fast['peak_mb'] / ref['peak_mb']:8.2f}x {mad:9.4f}")
                print(row, flush=True)


if __name__ == "__main__":
    main()
