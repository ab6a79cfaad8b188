"""segkit: cut subjects out of images with the rembg family of ONNX models and MODNet.

Where each stage lives::

    options.py         every option, declared once (validation, controls, flags and docs derive from it)
    pipeline.py        one image, top to bottom: decode -> model -> masks -> matting -> cutout -> background
    batch.py           process()/segment(): the pipeline over any iterable, errors kept per image
    io/                decode inputs (files, bytes, arrays, tensors, URLs), backgrounds, PNG/zip output
    models/            the registry (models as data), weights (fetch, resume, verify), sessions, tensors in/out,
                       SAM's prompts (sam.py), a person's own ONNX file (custom.py), which models this
                       server can't fetch (reachability.py), GPU batches gathered from threads (batching.py)
    pixels/            full-resolution pixel work: exact resizes, cutout, mask clean-up, matting (numba),
                       on threads kept one to a core (cores.py)
    video/             clips in, cutout clips out: decode -> the pipeline per frame -> encode, overlapped;
                       the app's video jobs and live webcam frames
    scale/             bulk jobs on Ray
    warmup.py          numba's cache in a folder that survives, filled at setup and at app start
    memory.py          how the C heap hands memory back (the server's two heaps)
    cli.py, comfy.py, service.py   the doors: command line, ComfyUI node, the web app's backend
"""

from .warmup import use_persistent_cache, warm_up

use_persistent_cache()  # before anything imports numba

from .batch import preload, process, segment
from .errors import (InvalidInputError, ModelLoadError, ModelNotAvailableError, SegkitError,
                     UnknownModelError)
from .io.url import fetch_url
from .models.lookup import get_model, list_models
from .models.reachability import check_model_sources
from .models.registry import ModelSpec
from .models.sessions import POOL, device
from .models.weights import cache_dir, model_path
from .models.weights import is_cached as _spec_is_cached
from .options import Options
from .pipeline import Result
from .service import public_message


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
    return _spec_is_cached(get_model(model))


def download(model: str, progress=None):
    """Fetch a model's weights into the cache; returns the file's path."""
    return model_path(get_model(model), progress)


__all__ = [
    "segment", "segment_video", "probe", "check_limits", "process", "preload", "download", "is_cached",
    "list_models", "get_model", "device",
    "loaded_models", "cache_dir", "Result", "Options", "ModelSpec", "SegkitError", "InvalidInputError",
    "UnknownModelError", "ModelNotAvailableError", "ModelLoadError", "public_message", "fetch_url", "warm_up",
    "check_model_sources",
]
from ._version import __version__  # noqa: E402 - one place for the version
