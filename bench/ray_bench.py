"""Bulk throughput: ``remove --ray`` on a local Ray against the plain ``remove``, same folder.

Both run as the user runs them, one command each, timed from start to exit: the Ray side
pays for starting Ray and its actors, the plain side for loading one session. Each runs
on a small and a large folder of the same photos, so that the fixed cost (start-up) and
the cost per image read apart: seconds = fixed + images / rate. Photos are scikit-image's,
cropped, flipped and resized to 0.3-1 MP, saved as JPEG in three subfolders.

    .venv/bin/python -m bench.ray_bench [--counts 24 300] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")


def make_photos(folder: Path, count: int, seed: int = 0) -> None:
    from skimage import data

    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(getattr(data, name)()) for name in PHOTOS]
    for index in range(count):
        image = sources[index % len(sources)]
        scale = rng.uniform(0.6, 1.0)
        width, height = int(image.width * scale), int(image.height * scale)
        left, top = rng.integers(0, image.width - width + 1), rng.integers(0, image.height - height + 1)
        crop = image.crop((left, top, left + width, top + height))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        grow = (rng.uniform(0.3e6, 1e6) / (width * height)) ** 0.5
        crop = crop.resize((int(width * grow), int(height * grow)), Image.Resampling.BICUBIC)
        target = folder / f"set{index % 3}" / f"photo{index:04d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        crop.save(target, quality=90)


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True,
                         env={**os.environ, "RAY_DISABLE_USAGE_STATS": "1"})
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{run.stderr[-2000:]}")
    return time.perf_counter() - started


def fit(small: int, large: int, t_small: float, t_large: float) -> tuple[float, float]:
    """(fixed seconds, images per second) of the line through both runs."""
    per_image = (t_large - t_small) / (large - small)
    return t_small - small * per_image, 1 / per_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs=2, default=[24, 300], help="small and large folder")
    parser.add_argument("--workers", type=int, help="Ray actors (default: one per core)")
    args = parser.parse_args()
    remove = [sys.executable, "-m", "segkit", "remove"]
    ray_flags = ["--ray", "-q"] + (["--workers", str(args.workers)] if args.workers else [])
    times: dict[str, list[float]] = {"plain": [], "ray": []}
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.counts:
            photos = Path(tmp) / f"in{count}"
            make_photos(photos, count)
            times["plain"].append(timed(remove + [str(photos), "-o", f"{tmp}/plain{count}", "-q"]))
            times["ray"].append(timed(remove + [str(photos), "-o", f"{tmp}/ray{count}"] + ray_flags))
    small, large = args.counts
    print(f"{os.cpu_count()} cores, u2netp, photos 0.3-1 MP; seconds from command start to exit")
    print(f"{'':6} {small:>5} img  {large:>5} img  {'img/s':>6}  {'fixed s':>7}  {'img/s w/o fixed':>15}")
    for side, (t_small, t_large) in times.items():
        fixed, rate = fit(small, large, t_small, t_large)
        print(f"{side:6} {t_small:8.1f}  {t_large:8.1f}  {large / t_large:6.2f}  {fixed:7.1f}  {rate:15.2f}")
    (p_small, p_large), (r_small, r_large) = times["plain"], times["ray"]
    print(f"ray / plain on {large} images: {r_large / p_large:.2f}x the time "
          f"({r_large - p_large:+.1f} s); on {small}: {r_small / p_small:.2f}x ({r_small - p_small:+.1f} s)")


if __name__ == "__main__":
    main()
