"""Writing the output: one encoder per target suffix, with the source's timing,
rotation and sound.

Frames arrive upright (as segmented); containers that can say how to display a
frame (mov, mp4) get them back in the stored orientation with the source's
display matrix, so the file matches its source frame for frame; WebM, whose
muxer writes no rotation, gets them upright. Sound is copied packet
by packet where the container accepts the codec, otherwise re-encoded, and is
interleaved with the pictures as they are written, so nothing is held whole.
"""

from __future__ import annotations

import glob
import os
import socket
import uuid
import zipfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from ..errors import InvalidInputError
from ..io.encode import PNG_COLOUR_TYPES, png_bytes
from .formats import FORMATS, Format
from .reader import VideoInfo, stored


# Pictures are converted to YUV with the BT.709 matrix in limited ("tv") range, and the streams say so
# (primaries, transfer, matrix, range): untagged, players guess BT.601 for small frames and BT.709 for
# HD, and swscale converts untagged RGB with BT.601, so colours shifted. 1 is BT.709 in all three tables.
BT709 = 1
LIMITED_RANGE = av.video.reformatter.ColorRange.MPEG
AV_PIXELS = {"RGBA": "rgba", "RGB": "rgb24", "L": "gray"}  # Pillow mode -> PyAV's name for its frames


class _Sound:
    """The source's audio, carried into the output as the pictures advance."""

    def __init__(self, info: VideoInfo, output, spec: Format):
        self.source = av.open(str(info.path))
        self.input = self.source.streams.audio[0]
        self.input.codec_context.thread_type = "AUTO"
        if self.input.codec_context.name in spec.audio_copy:
            self.output, self.encoder = output.add_stream_from_template(self.input), None
        else:
            rate = 48000 if spec.audio_codec == "libopus" else self.input.rate
            self.encoder = self.output = output.add_stream(spec.audio_codec, rate=rate)
            self.output.layout = "stereo" if self.input.codec_context.channels >= 2 else "mono"
        self.container = output
        self.packets = self.source.demux(self.input)
        self.start = round(info.start / self.input.time_base)  # the pictures are timed from the file's start too
        self.done = False

    def until(self, seconds: float | None) -> None:
        """Write the sound up to ``seconds`` (all of it for None)."""
        while not self.done:
            packet = next(self.packets, None)
            if packet is None:
                self.done = True
                if self.encoder:
                    self.container.mux(self.encoder.encode(None))
                return
            if packet.dts is None:  # the demuxer's flush marker
                continue
            at = None if packet.pts is None else float((packet.pts - self.start) * self.input.time_base)
            if self.encoder:
                for frame in self.input.decode(packet):
                    frame.pts = None  # the encoder re-times samples after resampling
                    self.container.mux(self.encoder.encode(frame))
            else:
                packet.pts = None if packet.pts is None else packet.pts - self.start
                packet.dts -= self.start
                packet.stream = self.output
                self.container.mux(packet)
            if seconds is not None and at is not None and at > seconds:
                return

    def close(self) -> None:
        self.source.close()


class VideoWriter:
    """A video container: frames in at their source timestamps, sound alongside."""

    def __init__(self, path: Path, fmt: str, info: VideoInfo, alpha: bool):
        spec = FORMATS[fmt]
        if alpha and not spec.alpha_pixels:
            raise InvalidInputError(f"{path.name}: {fmt} has no alpha channel; give a background")
        self.info, self.spec = info, spec
        self.rotation = info.rotation if spec.display_matrix else 0
        self.container = av.open(str(path), "w", format={"mov": "mov", "mp4": "mp4", "webm": "webm"}[fmt])
        try:
            self.video = self.container.add_stream(spec.codec, rate=Fraction(info.fps).limit_denominator(100000))
            width, height = (info.height, info.width) if self.rotation in (90, 270) else (info.width, info.height)
            self.width, self.height = (width - width % 2, height - height % 2) if spec.even_size else (width, height)
            self.video.width, self.video.height = self.width, self.height
            self.video.pix_fmt = spec.alpha_pixels if alpha else spec.opaque_pixels
            self.video.time_base = self.video.codec_context.time_base = info.time_base
            self.video.options = dict(spec.options)
            codec = self.video.codec_context
            codec.color_primaries = codec.color_trc = codec.colorspace = BT709
            codec.color_range = LIMITED_RANGE
            if self.rotation:
                self.video.set_display_rotation(self.rotation)
            self.sound = _Sound(info, self.container, spec) if info.has_audio else None
        except Exception:
            self.container.close()
            raise

    def write(self, pts: int, image: Image.Image) -> None:
        pixels = stored(np.asarray(image), self.rotation)[:self.height, :self.width]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=AV_PIXELS[image.mode]).reformat(
            format=self.video.pix_fmt, dst_colorspace="ITU709", dst_color_range=LIMITED_RANGE)
        frame.color_primaries = frame.color_trc = BT709
        frame.pts, frame.time_base = pts, self.info.time_base
        self.container.mux(self.video.encode(frame))
        if self.sound:
            self.sound.until(float(pts * self.info.time_base))

    def close(self) -> None:
        try:
            self.container.mux(self.video.encode(None))
            if self.sound:
                self.sound.until(None)
        finally:
            if self.sound:
                self.sound.close()
            self.container.close()

    def abort(self) -> None:
        if self.sound:
            self.sound.close()
        self.container.close()


class PngSequenceWriter:
    """A zip of upright PNG frames, frame_000001.png on; lossless, without sound.

    Written as ``io.encode.save_png`` writes photos (bench/RESULTS.md, Video)."""

    def __init__(self, path: Path, fmt: str, info: VideoInfo, alpha: bool):
        self.archive = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED)  # PNG is compressed already
        self.count = 0

    def write(self, pts: int, image: Image.Image) -> None:
        if image.mode not in PNG_COLOUR_TYPES:
            image = image.convert("RGBA" if image.has_transparency_data else "RGB")
        self.count += 1
        self.archive.writestr(f"frame_{self.count:06d}.png", png_bytes(image))

    def close(self) -> None:
        self.archive.close()

    abort = close


def open_writer(path: Path, fmt: str, info: VideoInfo, alpha: bool):
    return (PngSequenceWriter if fmt == "zip" else VideoWriter)(path, fmt, info, alpha)


_HOST = socket.gethostname()


def partial_for(target: Path) -> Path:
    """The hidden file a job writes before renaming it to ``target``, named with this host and
    process. A job killed outright (SIGKILL, the OOM killer) cannot remove it; the next job that
    writes ``target`` does, once no process of that number runs on this host. Other hosts' files
    (a shared disk) and live jobs' are left alone."""
    prefix = f".{target.stem}.{_HOST}-"
    if os.name == "posix" and target.parent.is_dir():
        for path in target.parent.glob(glob.escape(prefix) + "*.partial" + glob.escape(target.suffix)):
            pid = path.name[len(prefix):].split("-", 1)[0]
            if pid.isdigit() and not _running(int(pid)):
                path.unlink(missing_ok=True)
    return target.with_name(f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:6]}.partial{target.suffix}")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True
