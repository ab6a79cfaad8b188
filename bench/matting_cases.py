"""Benchmark: matting on hard synthetic cases with a known true alpha.

Each case composites a photo (the foreground colours) over a textured or
cluttered background through a true alpha with soft, wide transitions: a soft
gradient, fur (many short, partly transparent strands) or hair (long, sparse
strands). The matting input mask imitates a segmentation network's: the true
alpha reduced to 320x320, shifted, blurred and resized back with Lanczos, so
the trimap's unknown band is wide and its middle is where the network is
unsure, as on real fur and hair.

Every (case, method) call runs in a fresh subprocess (after a small warm-up
call there, so numba compilation is not counted) that reports its time and
peak RSS (VmHWM, reset just before the call) and saves its alpha; calls of
the two methods alternate. Columns: time and peak are medians over the
repeats; "band" is the trimap's unknown share of the pixels; "vs rembg" is
mean |alpha_fast - alpha_rembg| over the band, "vs truth" mean |alpha - true
alpha| over the band, both in 0..1.

    python -m bench.matting_cases [--cases soft fur hair clutter] [--sizes 4.6 12] [--repeat 3]
        [--skip-reference "hair@12"]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image
from scipy import ndimage

from bench.matting_bench import child
from bench.run import machine_line

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASPECT = 4 / 3
# name: (foreground photo, background, edge kind, edge width and strand length as fractions of the short side)
CASES = {
    "soft": ("astronaut", "brick", "soft", 0.10, 0.0),
    "fur": ("chelsea", "grass", "fur", 0.02, 0.06),
    "hair": ("astronaut", "gravel", "hair", 0.01, 0.40),
    "clutter": ("chelsea", "photos", "fur", 0.08, 0.45),
}


def _texture(name, shape, rng):
    """A background: a grey texture tiled at its own scale and tinted (fine detail everywhere),
    or a mosaic of photos (clutter)."""
    from skimage import data

    h, w = shape
    if name == "photos":
        tiles = [data.coffee(), data.rocket(), data.astronaut(), data.chelsea()[:, ::-1], data.immunohistochemistry()]
        side = 480
        rows = []
        for i in range(-(-h // side)):
            row = [np.asarray(Image.fromarray(tiles[(i * 3 + j) % len(tiles)]).resize((side, side)))
                   for j in range(-(-w // side))]
            rows.append(np.hstack(row))
        return np.vstack(rows)[:h, :w]
    grey = getattr(data, name)().astype(np.float32) / 255
    tiled = np.tile(grey, (-(-h // grey.shape[0]), -(-w // grey.shape[1])))[:h, :w]
    tint = 0.5 + 0.5 * rng.random(3)
    return (tiled[..., None] * tint * 255).astype(np.uint8)


def true_alpha(shape, kind, width, strands, rng):
    """A blob whose edge is a soft ramp `width` wide and, for fur and hair,
    fringed with strands up to `strands` long whose opacity varies strand to
    strand (bins about 3 pixels wide at any size, so strands stay fine)."""
    h, w = shape
    side = min(h, w)
    yy, xx = np.ogrid[0:h, 0:w]
    dy, dx = (yy - 0.55 * h) / side, (xx - 0.5 * w) / side
    angle = np.arctan2(dy, dx)
    dist = np.hypot(dy * 1.1, dx * 0.9)
    del dy, dx
    radius = 0.3 + sum(0.02 * rng.random() * np.sin(k * angle + 6 * rng.random()) for k in range(2, 6))
    ramp = np.clip(0.5 - (dist - radius) / width, 0, 1).astype(np.float32)
    if kind == "soft":
        return ramp * ramp * (3 - 2 * ramp)  # smoothstep: a wide soft gradient
    bins = int(2 * np.pi * 0.3 * side / 3)
    power = 2 if kind == "fur" else 4  # hair: fewer long strands
    length = np.append(strands * rng.random(bins) ** power, 0)
    opacity = np.append(0.3 + 0.7 * rng.random(bins), 0)
    pos = (angle + np.pi) / (2 * np.pi) * bins
    k = pos.astype(np.int64) % bins
    frac = (pos - np.floor(pos)).astype(np.float32)
    # each bin is one strand, tapered across its width
    across = 1 - np.abs(2 * frac - 1)
    out = np.clip((dist - radius + width / 2) / np.maximum(length[k], 1e-6), 0, None)
    fringe = opacity[k] * np.clip(1 - out, 0, 1) ** 1.5 * across
    return np.maximum(ramp, fringe.astype(np.float32))


def network_mask(truth, rng):
    """What a segmentation network would give: the truth at 320x320, shifted a little,
    blurred, its contrast squeezed where unsure, then Lanczos up like rembg's mask."""
    small = np.asarray(Image.fromarray(truth).resize((320, 320), Image.BOX), np.float32)
    small = ndimage.shift(small, rng.normal(0, 1.5, 2), order=1, mode="nearest")
    small = ndimage.gaussian_filter(small, 2.0)
    small = np.clip((small - 0.5) * 1.1 + 0.5, 0, 1)
    image = Image.fromarray((small * 255).astype(np.uint8))
    return np.asarray(image.resize(truth.shape[::-1], Image.LANCZOS))


def make_case(name, megapixels, directory, seed=0):
    from skimage import data

    photo, background, kind, width, strands = CASES[name]
    rng = np.random.default_rng(seed)
    h = round((megapixels * 1e6 / ASPECT) ** 0.5)
    shape = (h, round(h * ASPECT))
    truth = true_alpha(shape, kind, width, strands, rng)
    fg = np.asarray(Image.fromarray(getattr(data, photo)()).resize(shape[::-1], Image.LANCZOS), np.float32)
    bg = _texture(background, shape, rng).astype(np.float32)
    image = np.clip(truth[..., None] * fg + (1 - truth[..., None]) * bg + 0.5, 0, 255).astype(np.uint8)
    path = os.path.join(directory, f"{name}_{megapixels}")
    np.save(path + "_image.npy", image)
    np.save(path + "_mask.npy", network_mask(truth, rng))
    np.save(path + "_truth.npy", truth)
    return path


def call(method, path):
    result = subprocess.run([sys.executable, "-m", "bench.matting_cases", "--child", method, path],
                            capture_output=True, text=True, cwd=ROOT)
    if result.returncode:
        sys.exit(f"{method} failed on {path}:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--sizes", type=float, nargs="+", default=[4.6, 12])
    parser.add_argument("--repeat", type=int, default=3, help="calls of each method per case")
    parser.add_argument("--reference-repeat", type=int, help="calls of rembg per case (default: --repeat)")
    parser.add_argument("--skip-reference", nargs="*", default=[], metavar="CASE@MP",
                        help="cases where rembg is not run (it takes minutes), e.g. hair@12")
    parser.add_argument("--band-only", action="store_true", help="print the band shares and exit")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    from segkit.pixels.matting import make_trimap

    print(machine_line())
    print("| case | MP | band | rembg | segkit | speedup | peak MB rembg | peak MB segkit | memory ratio "
          "| vs rembg | rembg vs truth | segkit vs truth |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for megapixels in args.sizes:
            for name in args.cases:
                path = make_case(name, megapixels, tmp)
                mask, truth = np.load(path + "_mask.npy"), np.load(path + "_truth.npy")
                band = make_trimap(mask, 240, 10, 10) == 128
                label = f"{name} ({CASES[name][0]} over {CASES[name][1]})"
                if args.band_only:
                    print(f"| {label} | {mask.size / 1e6:.1f} | {100 * band.mean():.1f} % |", flush=True)
                    continue
                use = ["fast"] if f"{name}@{megapixels:g}" in args.skip_reference else ["rembg", "fast"]
                runs = {m: [] for m in use}
                for i in range(args.repeat):
                    for m in use:
                        if m == "fast" or i < (args.reference_repeat or args.repeat):
                            runs[m].append(call(m, path))
                med = {m: {k: float(np.median([r[k] for r in v])) for k in v[0]} for m, v in runs.items()}
                alpha = {m: np.load(f"{path}_{m}_alpha.npy")[band].astype(np.float32) / 255 for m in use}
                error = {m: float(np.abs(a - truth[band]).mean()) for m, a in alpha.items()}
                fast = med["fast"]
                row = f"| {label} | {mask.size / 1e6:.1f} | {100 * band.mean():.1f} % | "
                if "rembg" in use:
                    ref = med["rembg"]
                    row += (f"{ref['seconds']:.2f} s | {fast['seconds']:.2f} s | "
                            f"{ref['seconds'] / fast['seconds']:.1f}x | {ref['peak_mb']:.0f} | {fast['peak_mb']:.0f} | "
                            f"{fast['peak_mb'] / ref['peak_mb']:.2f}x | "
                            f"{np.abs(alpha['fast'] - alpha['rembg']).mean():.4f} | {error['rembg']:.4f} | ")
                else:
                    row += f"skipped | {fast['seconds']:.2f} s | - | - | {fast['peak_mb']:.0f} | - | - | - | "
                print(row + f"{error['fast']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
