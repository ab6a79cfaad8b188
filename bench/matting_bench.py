"""Benchmark: rembg's alpha_matting_cutout vs segkit.pixels.matting.alpha_matting_fast.

Times: both run in this process, interleaved (rembg, fast, rembg, fast, ...),
after a small warm-up call each so that numba compilation is not timed; the
table shows the median. Peak memory: each (case, method) runs once more in a
fresh subprocess that reports its peak RSS over the call (Linux VmHWM, reset
just before it; numpy/scipy/numba allocations included); "delta" is that peak
minus the RSS just before the call. Band MAD is mean |alpha_fast - alpha_rembg| / 255 over the trimap's
unknown pixels; RGB MAD is mean |rgb_fast - rgb_rembg| / 255 over the pixels
where rembg's alpha is partial.

The mask imitates rembg's: a 320x320 soft map resized to the image with
Lanczos. By default it is synthetic (a blurred wavy blob); with --u2netp PATH
it is the u2netp model's output on the original image (needs onnxruntime).

    python bench/matting_bench.py [--sizes 0.5 4.6 12] [--repeat 3] [--skip-reference-above 5]

Hard cases with a known true alpha (fur, hair, soft masks, textured and cluttered backgrounds) are in
bench/matting_cases.py, which reuses this file's runner.
"""

import argparse
import contextlib
import io
import json
import os
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


def runner(method):
    """The call being measured, as rembg.remove(alpha_matting=True) makes it."""
    if method == "rembg":
        from rembg.bg import alpha_matting_cutout, decontaminate_cutout

        def run(image, mask):
            with contextlib.redirect_stdout(io.StringIO()):  # pymatting prints ichol retries
                try:
                    cutout = alpha_matting_cutout(Image.fromarray(image), Image.fromarray(mask), 240, 10, 10)
                except ValueError:
                    cutout = decontaminate_cutout(Image.fromarray(image), Image.fromarray(mask))
            return np.asarray(cutout)
    else:
        sys.path.insert(0, ROOT)
        from segkit.pixels.matting import alpha_matting_fast

        def run(image, mask):
            return alpha_matting_fast(image, mask, 240, 10, 10)
    return run


def warm(run, image, mask):
    """Compile/load numba caches on a crop that has foreground, background and a band."""
    y, x = np.unravel_index(np.argmin(np.abs(mask.astype(int) - 128)), mask.shape)
    y0, x0 = max(0, min(y - 150, mask.shape[0] - 300)), max(0, min(x - 150, mask.shape[1] - 300))
    run(image[y0:y0 + 300, x0:x0 + 300].copy(), mask[y0:y0 + 300, x0:x0 + 300].copy())


def _status_mb(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024


def child(method, path):
    """One call in this fresh process: prints its time and peak memory as JSON, and saves its
    alpha beside the inputs. Linux's ru_maxrss would include the parent's RSS at fork, so this
    reads VmHWM, reset before the call through /proc/self/clear_refs."""
    image, mask = np.load(path + "_image.npy"), np.load(path + "_mask.npy")
    run = runner(method)
    warm(run, image, mask)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak-RSS mark
    base = _status_mb("VmRSS")
    start = time.perf_counter()
    out = run(image, mask)
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    np.save(f"{path}_{method}_alpha.npy", np.ascontiguousarray(out[..., 3]))
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "base_mb": base}))


def peak_memory(method, path):
    result = subprocess.run([sys.executable, __file__, "--child", method, path], capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{method} failed on {path}:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def timed(run, image, mask):
    start = time.perf_counter()
    out = run(image, mask)
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 4.6, 12])
    parser.add_argument("--images", nargs="+", default=["astronaut", "chelsea"])
    parser.add_argument("--skip-reference-above", type=float, default=None, metavar="MP",
                        help="do not run rembg on images larger than this (it needs minutes and GBs)")
    parser.add_argument("--u2netp", metavar="ONNX", help="use the u2netp model's mask instead of a synthetic one")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls of each method per case")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    sys.path.insert(0, ROOT)
    from segkit.pixels.matting import make_trimap

    print(f"mask: {'u2netp' if args.u2netp else 'synthetic'}; time = median of {args.repeat} interleaved calls; "
          "peak = max RSS (MB) of a fresh process making one call, (delta) = above its RSS before the call")
    print(f"{'image':10} {'MP':>5} {'band%':>6} {'rembg s':>8} {'fast s':>7} {'speedup':>8} "
          f"{'rembg MB':>14} {'fast MB':>12} {'mem ratio':>9} {'band MAD':>9} {'RGB MAD':>8}")
    methods = {"rembg": runner("rembg"), "fast": runner("fast")}
    with tempfile.TemporaryDirectory() as tmp:
        for megapixels in args.sizes:
            for name in args.images:
                path = make_case(name, megapixels, args.u2netp, tmp)
                image, mask = np.load(path + "_image.npy"), np.load(path + "_mask.npy")
                unknown = make_trimap(mask, 240, 10, 10) == 128
                skip = args.skip_reference_above is not None and megapixels > args.skip_reference_above
                use = ["fast"] if skip else ["rembg", "fast"]
                times, outs = {m: [] for m in use}, {}
                for m in use:
                    warm(methods[m], image, mask)
                for _ in range(args.repeat):
                    for m in use:
                        seconds, outs[m] = timed(methods[m], image, mask)
                        times[m].append(seconds)
                t = {m: float(np.median(v)) for m, v in times.items()}
                mem = {m: peak_memory(m, path) for m in use}
                row = f"{name:10} {mask.size / 1e6:5.1f} {100 * unknown.mean():6.1f} "
                fast_mb = f"{mem['fast']['peak_mb']:5.0f} ({mem['fast']['peak_mb'] - mem['fast']['base_mb']:4.0f})"
                if skip:
                    row += f"{'skipped':>8} {t['fast']:7.2f} {'-':>8} {'-':>14} {fast_mb} {'-':>9} {'-':>9} {'-':>8}"
                else:
                    a, b = outs["rembg"].astype(float), outs["fast"].astype(float)
                    mad = np.abs(a[..., 3] - b[..., 3])[unknown].mean() / 255 if unknown.any() else 0.0
                    partial = (a[..., 3] > 0) & (a[..., 3] < 255)
                    rgb = np.abs(a[..., :3] - b[..., :3])[partial].mean() / 255 if partial.any() else 0.0
                    ref = mem["rembg"]
                    ref_mb = f"{ref['peak_mb']:6.0f} ({ref['peak_mb'] - ref['base_mb']:5.0f})"
                    row += (f"{t['rembg']:8.2f} {t['fast']:7.2f} {t['rembg'] / t['fast']:7.1f}x {ref_mb} {fast_mb} "
                            f"{mem['fast']['peak_mb'] / mem['rembg']['peak_mb']:8.2f}x {mad:9.4f} {rgb:8.4f}")
                print(row, flush=True)


if __name__ == "__main__":
    main()
