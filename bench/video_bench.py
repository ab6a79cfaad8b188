"""The video path against the network alone and a rembg loop, on the same 720p frames.

    .venv/bin/python -m bench.video_bench [--frames 48] [--formats webm mp4 mov zip] [--repeat 3]

"network alone" runs u2netp on the frames' prepared inputs (decoded and
resized beforehand, outside the clock), the better of segkit's pooled session
(every core, one frame after another) and the video path's own way (two frames
side by side, ``session_side_by_side``). "segkit video" is ``segment_video`` from the clip file
to the output file: decode, network, compose and encode. "rembg loop" decodes
with PyAV, calls ``rembg.remove`` per frame and encodes the same way, one step
after another. The network and the video path alternate ``--repeat`` times and their medians
are compared. Ratios are the claims; absolute rates move with the machine. ``make bench`` prints
the same table (``video_table``) without the A/B.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
from PIL import Image

import segkit
from segkit.models.lookup import get_model
from segkit.models.predict import model_input
from segkit.models.sessions import session_for, session_side_by_side
from segkit.video import probe, segment_video
from segkit.video.reader import read_frames
from segkit.video.writer import FORMATS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from video_clips import photo_frames, write_clip  # noqa: E402 - the tests' clip maker

WIDTH, HEIGHT, FPS = 1280, 720, 24


def network_alone(tensors: list[np.ndarray]) -> float:
    """Frames per second of the network by itself, the better of one session and two side by side."""
    spec = get_model("u2netp")
    whole, half = session_for(spec), session_side_by_side(spec, 2)

    def run(session, tensor):
        session.run(None, {session.get_inputs()[0].name: tensor})

    start = time.perf_counter()
    for tensor in tensors:
        run(whole, tensor)
    sequential = len(tensors) / (time.perf_counter() - start)
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda tensor: run(half, tensor), tensors))
    side_by_side = len(tensors) / (time.perf_counter() - start)
    return max(sequential, side_by_side)


def video_rate(clip: Path, target: Path, background, frames: int, frames_at_once: int | None = None) -> float:
    """Frames per second of ``segment_video``; ``frames_at_once=1`` is the A/B without side by side."""
    from segkit.video import run

    shipped = run.FRAMES_AT_ONCE
    run.FRAMES_AT_ONCE = frames_at_once or shipped
    try:
        start = time.perf_counter()
        segment_video(clip, target, background=background)
        return frames / (time.perf_counter() - start)
    finally:
        run.FRAMES_AT_ONCE = shipped


def rembg_loop(clip: Path, target: Path, fmt: str) -> float:
    """Frames per second of decode -> rembg.remove -> encode, one after another."""
    import rembg

    session = rembg.new_session("u2netp", providers=["CPUExecutionProvider"])
    spec = FORMATS[fmt]
    start = time.perf_counter()
    count = 0
    with av.open(str(clip)) as source, av.open(str(target), "w") as output:
        stream = output.add_stream(spec.codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, spec.alpha_pixels or spec.opaque_pixels
        stream.options = dict(spec.options)
        for frame in source.decode(video=0):
            cutout = np.asarray(rembg.remove(frame.to_image(), session=session))
            if not spec.alpha_pixels:
                cutout = cutout[:, :, :3]
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(cutout), "rgba" if spec.alpha_pixels else "rgb24")
            picture.pts = count
            output.mux(stream.encode(picture))
            count += 1
        output.mux(stream.encode(None))
    return count / (time.perf_counter() - start)


def flicker_table(folder: Path) -> None:
    """Flicker of the mattes on a noisy clip whose content moves a known pixel a frame, smoothing off and on."""
    from segkit.video.smooth import DEFAULT_STRENGTH, flicker
    from video_clips import write_clip as write  # the same maker as above

    frames = photo_frames(320, 240, 24, pan=(0, 1), zoom=0, noise=6)
    clip = write(folder / "noisy.mkv", frames, codec="ffv1", pixel_format="yuv444p", audio=False)
    motion = [(0.0, -1.0)] * len(frames)
    mattes = {}
    for smooth in (0, DEFAULT_STRENGTH):
        out = segment_video(clip, folder / f"smooth-{smooth}.zip", only_mask=True, smooth=smooth)
        with zipfile.ZipFile(out) as archive:
            mattes[smooth] = [np.asarray(Image.open(archive.open(n))) for n in sorted(archive.namelist())]
    raw, steady = mattes[0], mattes[DEFAULT_STRENGTH]
    drift = np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(raw, steady)])
    print(f"\nflicker (mean matte change per frame after undoing the known motion, 0..255), 320x240, 24 frames, "
          f"noise sigma 6: off {flicker(raw, motion):.3f}, smooth={DEFAULT_STRENGTH} {flicker(steady, motion):.3f} "
          f"({flicker(steady, motion) / flicker(raw, motion):.2f}x); smoothed vs raw mattes differ by {drift:.3f} on average")


def prepared_clip(frames: int) -> tuple[Path, Path, list[np.ndarray]]:
    """(folder, a generated 720p clip, the frames' prepared network inputs), sessions warmed."""
    folder = Path(tempfile.mkdtemp(prefix="segkit-video-bench-"))
    clip = write_clip(folder / "clip.mp4", photo_frames(WIDTH, HEIGHT, frames), fps=FPS)
    segkit.preload("u2netp")
    spec = get_model("u2netp")
    tensors = [model_input(f.image, spec.preprocess) for f in read_frames(probe(clip))]
    network_alone(tensors[:4])  # warm both sessions
    return folder, clip, tensors


def video_table(formats: list[str], frames: int, repeat: int = 3, one_at_a_time: bool = True) -> Path:
    """The table: per output, the network alone and segment_video ``repeat`` times each, interleaved
    (neighbours on the machine come and go), medians; then a rembg loop and the A/B once. Returns
    the folder of its files."""
    folder, clip, tensors = prepared_clip(frames)
    print(f"\n# video: {WIDTH}x{HEIGHT}, {frames} frames at {FPS} fps, u2netp, {segkit.device()}, "
          f"{os.cpu_count()} cores, PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}), medians of {repeat}")
    print("| output | network alone | segkit video | rembg loop | segkit/network | segkit/rembg "
          "| one frame at a time (A/B) | side by side buys |")
    print("|---|---|---|---|---|---|---|---|")
    for fmt in formats:
        background = "black" if fmt == "mp4" else None
        nets, ours = [], []
        for _ in range(repeat):
            nets.append(network_alone(tensors))
            ours.append(video_rate(clip, folder / f"out.{fmt}", background, frames))
        net, mine = statistics.median(nets), statistics.median(ours)
        ab = "- | -"
        if one_at_a_time:
            single = video_rate(clip, folder / f"single.{fmt}", background, frames, frames_at_once=1)
            ab = f"{single:.2f} fps | {mine / single:.2f}x"
        theirs = rembg_loop(clip, folder / f"rembg.{fmt}", fmt) if fmt != "zip" else None  # rembg writes no PNG sequence
        print(f"| {fmt} | {net:.2f} fps | {mine:.2f} fps | " + (f"{theirs:.2f} fps" if theirs else "-")
              + f" | {mine / net:.2f} | " + (f"{mine / theirs:.2f}x" if theirs else "-") + f" | {ab} |", flush=True)
    return folder


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--formats", nargs="+", default=["webm", "mp4", "mov", "zip"])
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs of the network and the video path")
    args = parser.parse_args(argv)
    folder = video_table(args.formats, args.frames, args.repeat)
    flicker_table(folder)
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
