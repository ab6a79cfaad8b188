"""segkit vs rembg vs the bare model run, side by side in one process.

Prints one table. Every case runs the contenders interleaved on the same image,
repeated, and reports median seconds and ratios; ratios are the claims (absolute
times depend on the machine and its neighbours). "bare model" is a default
onnxruntime session on a prepared input; "segkit net" is segkit's own session on
that input, so its pipeline's cost reads apart from its session options. Each
call starts after a short pause: onnxruntime's idle threads spin after a run
and would otherwise slow whichever contender comes next. Peak memory is each
call's resident high-water mark above the level before it (Linux: VmHWM reset
through /proc/self/clear_refs). Then a batch, the video rows of bench/video_bench.py
(720p through each output format against the network alone and a rembg loop), and the cold-start table
of bench/cold_start.py (fresh processes on an empty and on a setup-warmed numba cache).

    .venv/bin/python -m bench.run [--model u2netp] [--sizes 0.5 4.6 12] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

from PIL import Image

SETTLE_SECONDS = 0.3  # measured: 0.3 s after a run, a spinning session no longer slows the next one


def photo(megapixels: float) -> Image.Image:
    """scikit-image's astronaut, upscaled to the asked size (4:3)."""
    from skimage import data

    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    return Image.fromarray(data.astronaut()).resize((width, int(width * 3 / 4)), Image.Resampling.LANCZOS)


def fresh_memory_ms(megabytes: int = 128, idle: float = 3.0) -> tuple[float, float]:
    """Milliseconds to fill `megabytes` of new memory right after freeing as much, and again after `idle`
    seconds. Where the host takes a VM's freed pages back (virtio free page reporting) the second is
    several times the first, and calls that allocate a lot after a pause pay it: matting far more than
    the network, whose arena keeps its memory. Printed with the tables, as it moves their ratios."""
    import numpy as np

    def fill() -> float:
        start = time.perf_counter()
        np.ones(megabytes << 18, np.float32)  # 2**18 floats of 4 bytes per MB
        return (time.perf_counter() - start) * 1e3

    fill()
    soon = fill()
    time.sleep(idle)
    return soon, fill()


def machine_line(megabytes: int = 128, idle: float = 3.0) -> str:
    soon, late = fresh_memory_ms(megabytes, idle)
    return f"# fresh memory, {megabytes} MB: {soon:.0f} ms right after a free, {late:.0f} ms after {idle:g} s idle"


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def measure(fn) -> tuple[float, float]:
    """(seconds, peak MB above the starting resident size) of one call."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the high-water mark
    except OSError:
        pass
    base = _rss_kb("VmRSS:")
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return seconds, max(_rss_kb("VmHWM:") - base, 0) / 1024


def interleaved(contenders: dict, repeat: int, settle: float = SETTLE_SECONDS) -> dict:
    """Median time and max peak memory of each contender, run round-robin, ``settle`` seconds apart."""
    times = {name: [] for name in contenders}
    peaks = {name: 0.0 for name in contenders}
    for name, fn in contenders.items():
        fn()  # warm up: sessions, caches, first-call allocations
    for _ in range(repeat):
        for name, fn in contenders.items():
            time.sleep(settle)
            seconds, peak = measure(fn)
            times[name].append(seconds)
            peaks[name] = max(peaks[name], peak)
    return {name: (statistics.median(times[name]), peaks[name]) for name in contenders}


class SideBySide:
    """The batch runner segkit dropped, rebuilt from public pieces for the A/B row: two images
    at once, each network on its own single-threaded session, outputs equal to process()'s."""

    def __init__(self, model: str):
        import onnxruntime as ort

        import segkit
        from segkit.models.sessions import _session_options

        self.options = segkit.Options(model=model)
        path = str(segkit.download(model))
        self.sessions = []
        for _ in range(2):
            options = _session_options()
            options.intra_op_num_threads = 1
            self.sessions.append(ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]))

    def __call__(self, photos: list) -> list:
        from concurrent.futures import ThreadPoolExecutor

        from segkit.pipeline import segment_one

        with ThreadPoolExecutor(2) as workers:
            return list(workers.map(lambda i: segment_one(photos[i], self.options, self.sessions[i % 2], i),
                                    range(len(photos))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 4.6, 12.0])
    parser.add_argument("--repeat", type=int, default=7, help="timed calls per contender without matting")
    parser.add_argument("--matting-repeat", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batch-repeat", type=int, default=3)
    parser.add_argument("--skip-rembg-matting-above", type=float, default=13.0,
                        help="MP above which rembg's whole-image matting is not run (it takes minutes)")
    parser.add_argument("--video-frames", type=int, default=48, help="720p frames for the video rows (0: none)")
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args()

    import onnxruntime as ort
    import rembg

    import segkit
    from segkit.models import sessions
    from segkit.models.predict import model_input
    from segkit.models.lookup import get_model

    from .cold_start import cold_start, print_table

    spec = get_model(args.model)
    # the bare run: a plain onnxruntime session with default options on the same file
    session = ort.InferenceSession(str(segkit.download(args.model)), providers=list(sessions.providers()))
    feed_name = session.get_inputs()[0].name
    net = sessions.session_for(spec)  # segkit's own session: its options, the network alone
    rembg_session = rembg.new_session(spec.weights.filename[:-5], providers=list(sessions.providers()))
    print(f"# segkit {segkit.__version__} vs rembg {rembg.__version__}, model {args.model}, "
          f"device {segkit.device()}, onnxruntime {ort.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, python {platform.python_version()}")
    print(machine_line())
    print("| case | bare model | segkit net | segkit | rembg | segkit/bare | rembg/bare | rembg/segkit "
          "| peak MB segkit | peak MB rembg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for mp in args.sizes:
        image = photo(mp)
        feed = {feed_name: model_input(image, spec.preprocess)}
        for matting in (False, True):
            kwargs = dict(alpha_matting=matting)
            contenders = {
                "bare": lambda: session.run(None, feed),
                "net": lambda: net.run(None, feed),
                "segkit": lambda: segkit.segment(image, model=args.model, **kwargs),
            }
            if not (matting and mp > args.skip_rembg_matting_above):
                contenders["rembg"] = lambda: rembg.remove(image, session=rembg_session, **kwargs)
            got = interleaved(contenders, args.matting_repeat if matting else args.repeat)
            bare, ours = got["bare"][0], got["segkit"][0]
            theirs = got.get("rembg", (float("nan"), float("nan")))
            case = f"{mp:g} MP{' + matting' if matting else ''}"
            rows.append(dict(case=case, bare=bare, net=got["net"][0], segkit=ours, rembg=theirs[0],
                             peak_segkit=got["segkit"][1], peak_rembg=theirs[1]))
            print(f"| {case} | {bare:.3f} s | {got['net'][0]:.3f} s | {ours:.3f} s | {theirs[0]:.3f} s | "
                  f"{ours / bare:.2f}x | "
                  f"{theirs[0] / bare:.2f}x | {theirs[0] / ours:.1f}x | {got['segkit'][1]:.0f} | {theirs[1]:.0f} |",
                  flush=True)
    photos = [photo(0.5 + 0.25 * (i % 4)) for i in range(args.batch)]
    side_by_side = SideBySide(args.model)
    got = interleaved({
        "segkit": lambda: segkit.process(photos, model=args.model),
        "side by side": lambda: side_by_side(photos),
        "rembg": lambda: [rembg.remove(p, session=rembg_session) for p in photos],
    }, args.batch_repeat)
    rate = {name: args.batch / seconds for name, (seconds, _) in got.items()}
    print(f"\nbatch of {args.batch} photos (0.5-1.25 MP): segkit {rate['segkit']:.2f} img/s, "
          f"rembg {rate['rembg']:.2f} img/s, ratio {rate['segkit'] / rate['rembg']:.2f}x; "
          f"two images side by side on single-threaded sessions (A/B, not shipped): "
          f"{rate['side by side']:.2f} img/s, {rate['side by side'] / rate['segkit']:.2f}x segkit's")
    if args.video_frames:  # issue 15's rows: the whole video path against the network alone and a rembg loop
        from .video_bench import video_table

        shutil.rmtree(video_table(["webm", "mp4", "mov", "zip"], args.video_frames, repeat=3, one_at_a_time=False))
    cold = cold_start(args.model)
    print_table(cold, args.model, 4.6)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(rows=rows, batch=got, cold=cold), indent=1))


if __name__ == "__main__":
    main()
