"""Model status for people: what each model is for, whether it is cached or loaded,
and how big the download is for the rest (the app's dropdown, its status line, the CLI)."""

from __future__ import annotations

from .registry import get_model, list_models
from .sessions import POOL, device
from .weights import is_cached


_UNAVAILABLE: dict[str, str] = {}  # model -> why its weights could not be fetched here


def mark_unavailable(name: str, reason: str) -> None:
    """Remember that a model's weights could not be fetched from where this server stands."""
    _UNAVAILABLE[get_model(name).name] = reason


def model_state(name: str) -> str:
    spec = get_model(name)
    if spec.name in POOL.loaded():
        return "loaded"
    if is_cached(spec):
        return "cached"
    if spec.name in _UNAVAILABLE:
        return "unavailable offline"
    return f"download {spec.weights.size_mb:.0f} MB"


def rows() -> list[tuple[str, str, str]]:
    """(name, state, description) for every model, in registry order."""
    return [(name, model_state(name), get_model(name).description) for name in list_models()]


def model_choices() -> list[tuple[str, str]]:
    """(label, name) pairs for a dropdown: the state first, so a narrow control still shows it."""
    return [(f"{name} · {state}", name) for name, state, _ in rows()]


def status_line(model: str) -> str:
    state = model_state(model)
    if state == "unavailable offline":
        state += f" ({_UNAVAILABLE[get_model(model).name]})"
    return f"Device: **{device()}** · model **{model}**: {state} · {get_model(model).description}"
