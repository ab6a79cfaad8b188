"""Tiny generated video clips for the video tests and bench: scikit-image's astronaut,
panned and zoomed by known amounts, written with PyAV, with a sine-wave sound track; and
outputs decoded with their alpha. Nothing is downloaded or committed."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from segkit.video.reader import _decoded

SAMPLE_RATE = 44100


def photo_frames(width: int, height: int, count: int, pan: tuple[float, float] = (0.5, 1.0),
                 zoom: float = 0.01, noise: float = 0.0, seed: int = 0) -> list[np.ndarray]:
    """``count`` RGB frames of the astronaut: the view moves by ``pan`` (dy, dx) output pixels
    a frame, and grows by ``zoom`` a frame (content moves by exactly -pan when zoom is 0)."""
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    scale = min(photo.width / width, photo.height / height) * 0.7  # photo pixels per output pixel
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(count):
        s = scale / (1 + zoom * t)
        x0 = photo.width / 2 - width * s / 2 + pan[1] * t * s
        y0 = photo.height / 2 - height * s / 2 + pan[0] * t * s
        view = photo.transform((width, height), Image.Transform.AFFINE, (s, 0, x0, 0, s, y0),
                               Image.Resampling.BILINEAR)
        pixels = np.asarray(view, dtype=np.float32)
        if noise:
            pixels = pixels + rng.normal(0, noise, pixels.shape)
        frames.append(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 12, codec: str = "libx264",
               pixel_format: str = "yuv420p", rotation: int = 0, audio: bool = True,
               timestamps: list[int] | None = None, options: dict | None = None) -> Path:
    """Write upright ``frames``; with ``rotation`` they are stored turned back and the
    display matrix says to turn them (as phones do). ``timestamps`` in 1/(fps*10) s
    units make a variable frame rate. The sound is a 440 Hz sine as long as the video, from its first frame."""
    container = av.open(str(path), "w")
    video = container.add_stream(codec, rate=fps)
    height, width = np.rot90(frames[0], -rotation // 90).shape[:2]
    video.width, video.height, video.pix_fmt = width, height, pixel_format
    video.codec_context.time_base = Fraction(1, fps * 10)
    video.options = options or {}
    if rotation:
        video.set_display_rotation(rotation)
    sound = container.add_stream("aac", rate=SAMPLE_RATE) if audio else None
    for index, pixels in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(pixels, -rotation // 90)), format="rgb24")
        frame.pts = timestamps[index] if timestamps else index * 10
        frame.time_base = video.codec_context.time_base
        container.mux(video.encode(frame))
    container.mux(video.encode(None))
    if sound:
        seconds = len(frames) / fps
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        frame.sample_rate, frame.pts = SAMPLE_RATE, round((timestamps[0] if timestamps else 0) / (fps * 10) * SAMPLE_RATE)
        container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    container.close()
    return path


def make_clip(path: Path, width: int = 96, height: int = 64, count: int = 12, **write) -> list[np.ndarray]:
    """A panned and zoomed clip at ``path``; returns its upright frames as written."""
    frames = photo_frames(width, height, count)
    write_clip(path, frames, **write)
    return frames


def decoded_output(path):
    """(frame, upright RGBA pixels) of every frame of an output video, alpha decoded."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = []
        for frame in _decoded(container, stream, path.name):
            pixels = frame.to_ndarray(format="rgba")
            frames.append((frame, np.ascontiguousarray(np.rot90(pixels, round(frame.rotation / 90)))))
        return frames
