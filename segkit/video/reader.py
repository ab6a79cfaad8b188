"""Reading a video: what it is (``probe``), whether we take it (``check_limits``),
and its frames upright, one at a time, with their timestamps (``read_frames``).

Every way a file can be unusable becomes an ``InvalidInputError`` that names the
file and the problem, raised before any frame is segmented where possible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from PIL import Image

from .. import settings
from ..errors import InvalidInputError
from ..io.url import names_a_url

# (environment variable, what it limits; defaults in ``segkit.settings``): the web app reads the same ones.
LIMITS = {
    "seconds": ("SEGKIT_MAX_VIDEO_SECONDS", "long"),
    "pixels": ("SEGKIT_MAX_VIDEO_PIXELS", "large a frame"),
    "megabytes": ("SEGKIT_MAX_VIDEO_MB", "large a file"),
}


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` learns from a file's headers and its first frame."""

    path: Path
    duration: float  # seconds
    fps: float  # average frame rate
    width: int  # as displayed, after rotation
    height: int
    rotation: int  # degrees counter-clockwise the stored frames are turned for display
    has_audio: bool
    frames: int  # exact where the container says, else duration x fps
    megabytes: float
    codec: str
    pixel_format: str
    time_base: Fraction  # of the video stream's timestamps, kept in the output
    start: float = 0.0  # seconds before the first frame or sound; MPEG-TS clips start anywhere, outputs at 0

    @property
    def label(self) -> str:
        return self.path.name


def limit(name: str) -> float:
    """The current limit on ``seconds``, ``pixels`` or ``megabytes`` (environment first)."""
    return float(settings.read(LIMITS[name][0]))


def check_limits(info: VideoInfo) -> None:
    """Refuse a video over any limit, before work starts; the message says which and how to raise it."""
    values = {"seconds": info.duration, "pixels": info.width * info.height, "megabytes": info.megabytes}
    shown = {"seconds": f"{info.duration:.1f} s", "pixels": f"{info.width}x{info.height}",
             "megabytes": f"{info.megabytes:.1f} MB"}
    for name, value in values.items():
        variable, what = LIMITS[name]
        if value > limit(name):
            ceiling = f"{limit(name):g} pixels" if name == "pixels" else f"{limit(name):g} {name}"
            raise InvalidInputError(f"{info.label}: video is too {what} ({shown[name]}; the limit is {ceiling}, "
                                    f"set {variable} to raise it)")


def _open(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise InvalidInputError(f"{path.name}: " + ("is a folder, not a video file" if path.is_dir() else "file not found"))
    if path.stat().st_size == 0:
        raise InvalidInputError(f"{path.name}: file is empty")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise InvalidInputError(f"{path.name}: not a video FFmpeg can read ({exc.strerror or exc})") from None


def _video_stream(container, label: str):
    if container.format.name == "image2" or container.format.name.endswith("_pipe"):  # FFmpeg reading one picture
        codec = container.streams.video[0].codec.name if container.streams.video else "?"
        raise InvalidInputError(f"{label}: a still image ({codec}), not a video; cut it out as a photo")
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
        raise InvalidInputError(f"{label}: has no video stream ({kinds})")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise InvalidInputError(f"{label}: video codec {stream.codec.name if stream.codec else '?'} "
                                "cannot be decoded here")
    return stream


def _decoder(stream):
    """The stream's decoder; VP9 through libvpx, the only one that reads WebM's alpha layer."""
    if stream.codec_context.name == "vp9":
        return av.CodecContext.create("libvpx-vp9", "r")
    stream.codec_context.thread_type = "AUTO"
    return stream.codec_context


def _decoded(container, stream, label: str) -> Iterator[av.VideoFrame]:
    decoder = _decoder(stream)
    try:
        for packet in container.demux(stream):
            if packet.size == 0 and packet.dts is None:  # the demuxer's end marker: flush
                packet = None
            yield from decoder.decode(packet)
    except av.error.FFmpegError as exc:
        raise InvalidInputError(f"{label}: the video data is damaged ({exc.strerror or exc})") from None


def refuse_url(source: str | os.PathLike) -> None:
    """A URL names no file here (``Path`` would fold its // and call it missing): say what to do."""
    if names_a_url(source):
        raise InvalidInputError(f"{source}: a URL, not a file; fetch it first (segkit.fetch_url(url, accept="
                                "('video',)), then write the bytes to a file)")


def probe(source: str | os.PathLike) -> VideoInfo:
    """Duration, frame rate, displayed size, rotation, audio and frame count of a video file."""
    refuse_url(source)
    path = Path(source)
    with _open(path) as container:
        stream = _video_stream(container, path.name)
        first = next(_decoded(container, stream, path.name), None)
        if first is None:
            raise InvalidInputError(f"{path.name}: the video stream has no frames")
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = (container.duration or 0) / av.time_base
        if fps <= 0:
            raise InvalidInputError(f"{path.name}: the video has no frame rate")
        rotation = int(round(first.rotation / 90)) * 90 % 360
        width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
        return VideoInfo(path, duration, fps, width, height, rotation, bool(container.streams.audio),
                         stream.frames or max(1, round(duration * fps)), path.stat().st_size / 1e6,
                         stream.codec_context.name, first.format.name, stream.time_base,
                         (container.start_time or 0) / av.time_base)


@dataclass
class Frame:
    """One decoded frame: its place, its presentation time in ``time_base`` units, its upright picture."""

    index: int
    pts: int
    image: Image.Image


def upright(pixels: np.ndarray, rotation: int) -> np.ndarray:
    """Stored pixels turned the way a player shows them (``rotation`` counter-clockwise)."""
    return np.ascontiguousarray(np.rot90(pixels, rotation // 90)) if rotation else pixels


def stored(pixels: np.ndarray, rotation: int) -> np.ndarray:
    """The inverse of ``upright``: back to the orientation the file stores."""
    return np.ascontiguousarray(np.rot90(pixels, -rotation // 90)) if rotation else pixels


def read_frames(info: VideoInfo) -> Iterator[Frame]:
    """The video's frames in display order, as upright RGB images (any bit depth becomes 8-bit),
    timed from the file's start (``info.start``)."""
    with _open(info.path) as container:
        stream = _video_stream(container, info.label)
        step = 1 / (info.fps * stream.time_base)  # for frames without a timestamp
        start = round(info.start / stream.time_base)
        last = None
        for index, frame in enumerate(_decoded(container, stream, info.label)):
            pts = frame.pts - start if frame.pts is not None else round(index * step)
            if last is not None and pts <= last:  # muxers refuse repeated times; VFR files can carry them
                pts = last + 1
            last = pts
            pixels = upright(frame.to_ndarray(format="rgb24"), info.rotation)
            yield Frame(index, pts, Image.fromarray(pixels, "RGB"))
