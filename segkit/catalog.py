"""Model status for people: what each model is for, whether it is cached or loaded,
and how big the download is for the rest (the app's dropdown and status line)."""

from __future__ import annotations

from .registry import get_model, list_models
from .sessions import POOL, device
from .weights import is_cached


def model_state(name: str) -> str:
    spec = get_model(name)
    if spec.name in POOL.loaded():
        return "loaded"
    if is_cached(spec):
        return "cached"
    return f"download {spec.weights.size_mb:.0f} MB"


def model_choices() -> list[tuple[str, str]]:
    """(label, name) pairs: "u2netp: Lightweight U²-Net ... [cached]"."""
    return [(f"{name}: {get_model(name).description} [{model_state(name)}]", name) for name in list_models()]


def status_line(model: str) -> str:
    return f"Device: **{device()}** · model **{model}**: {model_state(model)}"
