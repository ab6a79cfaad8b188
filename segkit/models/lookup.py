"""Finding a model by the name a person gives: a registry name, an alias, or their own file."""

from __future__ import annotations

from ..errors import UnknownModelError
from .custom import FAMILIES, custom_model
from .registry import MODELS, ModelSpec


def list_models() -> list[str]:
    """Model names in registry order (the seed node's order comes first)."""
    return list(MODELS)


def get_model(name: str) -> ModelSpec:
    """Look a model up by name or alias, or a person's own file as ``family:path``
    (``u2net_custom:mine.onnx``, see ``segkit.models.custom``); unknown names list the valid ones."""
    key = str(name).strip()
    if key in MODELS:
        return MODELS[key]
    for spec in MODELS.values():
        if key in spec.aliases:
            return spec
    family, _, path = key.partition(":")
    if path and family in FAMILIES:
        return custom_model(family, path)
    raise UnknownModelError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}, or your own "
                            "file as u2net_custom:PATH (dis_custom, ben_custom, birefnet_custom)", subject="model")
