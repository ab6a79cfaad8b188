"""segkit: cut subjects out of images with the rembg family of ONNX models and MODNet.

The public API::

    import segkit
    cutouts = segkit.segment(["photo.jpg"], model="u2netp")   # RGBA PIL images
    results = segkit.process(files, model="u2net")           # per-image results and errors
    segkit.segment_video("clip.mp4", "clip.webm")            # video in, cutout video out
"""

from .api import Result, Settings, preload, process, segment
from .errors import (InvalidInputError, ModelLoadError, ModelNotAvailableError, SegkitError,
                     UnknownModelError, public_message)
from .registry import ModelSpec, get_model, list_models
from .sessions import POOL, device
from .weights import cache_dir


def __getattr__(name: str):
    """``segkit.segment_video``, ``segkit.probe`` and ``segkit.check_limits`` come from
    segkit.video, imported on first use so that image-only callers never load FFmpeg."""
    if name in ("segment_video", "probe", "check_limits"):
        from . import video

        return getattr(video, name)
    raise AttributeError(f"module 'segkit' has no attribute {name!r}")


def loaded_models() -> list[str]:
    """Models whose sessions are live in this process, least recently used first."""
    return POOL.loaded()


def is_cached(model: str) -> bool:
    """Whether the model's weights are already in the cache (verified)."""
    from .weights import is_cached as _is_cached

    return _is_cached(get_model(model))


def download(model: str, progress=None):
    """Fetch a model's weights into the cache; returns the file's path."""
    from .api import model_path

    return model_path(get_model(model), progress)


__all__ = [
    "segment", "process", "preload", "download", "is_cached", "list_models", "get_model", "device",
    "loaded_models", "cache_dir", "Result", "Settings", "ModelSpec", "SegkitError", "InvalidInputError",
    "UnknownModelError", "ModelNotAvailableError", "ModelLoadError", "public_message",
    "segment_video", "probe", "check_limits",
]
__version__ = "0.1.0"
