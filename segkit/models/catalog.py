"""Model status for people: what each model is for, whether it is cached or loaded,
how big the download is for the rest and under which licence, grouped by purpose
(the app's dropdown, its status line, the CLI)."""

from __future__ import annotations

from .lookup import get_model, list_models
from .registry import GROUPS
from .sessions import POOL, device
from .weights import is_cached, licence_notice


_UNAVAILABLE: dict[str, str] = {}  # model -> why its weights could not be fetched here


def mark_unavailable(name: str, reason: str) -> None:
    """Remember that a model's weights can't be fetched from where this server stands, and why
    (a failed download, or ``segkit.models.reachability``'s check at start)."""
    _UNAVAILABLE[get_model(name).name] = reason


def model_state(name: str) -> str:
    spec = get_model(name)
    if spec.name in POOL.loaded():
        return "loaded"
    if is_cached(spec):
        return "cached"
    if spec.name in _UNAVAILABLE:
        return f"unavailable: {_UNAVAILABLE[spec.name]}"
    return f"download {spec.download_mb:.0f} MB"


def by_group() -> list[str]:
    """Model names grouped by purpose (general, people, anime, clothes, matting, prompted), registry order within."""
    names = list_models()
    return sorted(names, key=lambda n: (GROUPS.index(get_model(n).group), names.index(n)))


def rows() -> list[tuple[str, str, str, str, str]]:
    """(group, name, state, licence, description) for every model, grouped by purpose."""
    return [(spec.group, spec.name, model_state(spec.name), spec.licence, spec.description)
            for spec in map(get_model, by_group())]


def model_choices() -> list[tuple[str, str]]:
    """(label, name) pairs for a dropdown, grouped by purpose: the state right after the name, so a
    narrow control still shows it, and a non-commercial licence said before anyone downloads."""
    return [(f"{name} · {state}" + (" · non-commercial" if get_model(name).non_commercial else ""), name)
            for _, name, state, _, _ in rows()]


def status_line(model: str) -> str:
    spec = get_model(model)
    state = model_state(model)
    notice = f" · **{licence_notice(spec)}**" if spec.non_commercial else ""
    return f"Device: **{device()}** · model **{model}**: {state} · {spec.description}{notice}"
