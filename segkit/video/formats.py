"""What each video output is, by target suffix, and which inputs are videos: plain data,
without PyAV, so the command line can offer the formats before FFmpeg loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError
from ..io.decode import IMAGE_SUFFIXES

# Inputs read as video (PyAV reads them all): phones' and cameras' containers too (3GP, AVCHD's .mts).
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v", ".3gp", ".mts", ".m2ts", ".mpg", ".mpeg", ".wmv",
                  ".flv"}
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES  # what the command line takes from a folder
DEFAULT_FORMAT = "webm"  # keeps alpha and plays in browsers


@dataclass(frozen=True)
class Format:
    """How one target suffix is encoded."""

    codec: str
    alpha_pixels: str | None  # pixel format that carries alpha; None: this codec cannot
    opaque_pixels: str  # for composed backgrounds and greyscale mattes
    even_size: bool  # the codec needs even dimensions: one odd row/column is cropped
    display_matrix: bool  # the container can say how to turn frames; else they are written upright
    audio_copy: tuple[str, ...] = ()  # sound codecs the container takes as they are
    audio_codec: str | None = None  # what other sound is re-encoded to
    options: dict = field(default_factory=dict)


FORMATS = {
    # realtime speed 8: the quality/speed point where encoding keeps pace with the network (bench/video_bench.py)
    "webm": Format("libvpx-vp9", "yuva420p", "yuv420p", False, False, ("opus", "vorbis"), "libopus",
                   {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "crf": "24", "b": "0"}),
    # ProRes 4444 keeps alpha near-losslessly. FFmpeg's "prores" (prores_aw) encoder rather than prores_ks:
    # far less CPU a frame at a slightly lower bitrate, still under one level of error (bench/RESULTS.md).
    # Even sizes: prores_ks mangled a row of odd-height frames; kept for either encoder.
    "mov": Format("prores", "yuva444p10le", "yuv444p10le", True, True, ("aac", "mp3", "alac", "pcm_s16le", "opus"),
                  "aac", {"profile": "4"}),  # 4: the 4444 profile (prores_aw takes numbers only)
    "mp4": Format("libx264", None, "yuv420p", True, True, ("aac", "mp3", "opus"), "aac",
                  {"preset": "veryfast", "crf": "18"}),
    "zip": Format("png", "RGBA", "RGB", False, False),
}


def format_for(target: Path, fmt: str | None = None) -> str:
    """The output format: ``fmt`` if given, else ``target``'s suffix."""
    name = (fmt or target.suffix.lstrip(".")).lower()
    if fmt and target.suffix.lower().lstrip(".") in FORMATS.keys() - {name}:
        raise InvalidInputError(f"{target.name}: its suffix says {target.suffix.lstrip('.')}, the format asked is {fmt}; "
                                "give a target ending in ." + name)
    if not name and not fmt:
        raise InvalidInputError(f"{target.name}: no format; end the name with "
                                f"{', '.join('.' + f for f in FORMATS)}, or pass fmt")
    if name not in FORMATS:
        raise InvalidInputError(f"{target.name}: cannot write video as {name!r}; use one of "
                                f"{', '.join('.' + f for f in FORMATS)}")
    return name
