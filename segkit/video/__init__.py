"""Video in, cutout video out.

    segkit.video.segment_video("clip.mp4", "clip.webm", model="u2netp", smooth=True)

Where each part lives:

    reader.py  probe() and check_limits(): what a file is and whether it is taken;
               read_frames(): decoded frames, upright, with their timestamps
    run.py     segment_video(): the overlapped decode -> segment (two frames side by side) -> encode loop,
               progress, cancellation, temporary file and rename
    writer.py  one encoder per target suffix (webm, mov, mp4, zip), rotation and sound kept
    smooth.py  the temporal smoother and the flicker measure it is judged by
    formats.py the outputs (codec, pixels, sound) by suffix, and the suffixes read as video: data, no PyAV
    cli.py     one video for ``python -m segkit remove``, with a progress bar in frames
    serve.py   one video for the web app: upload or URL, limits, a file per format, cancel per visitor
    live.py    webcam frames one at a time: the live model, the cutout, the frame rate

Decoding and encoding use PyAV, whose wheels carry FFmpeg (libvpx, ProRes, x264, AAC, Opus). It loads
with the first name below that needs it, so the formats and suffixes can be read without it.
"""

from .formats import FORMATS, VIDEO_SUFFIXES


def __getattr__(name: str):
    if name in ("segment_video", "VideoCancelled"):
        from . import run as module
    elif name in ("probe", "check_limits", "limit", "LIMITS", "VideoInfo"):
        from . import reader as module
    elif name == "segment_video_cli":
        from . import cli as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)


__all__ = ["segment_video", "probe", "check_limits", "limit", "LIMITS", "VideoInfo", "VideoCancelled",
           "FORMATS", "VIDEO_SUFFIXES", "segment_video_cli"]
