"""A person's own ONNX file, run with the rules of a known family.

Spelled ``family:path`` wherever a model name goes (``u2net_custom:mine.onnx``),
so the ``model`` option, the CLI's ``-m`` and the API need nothing new. As in
rembg, the file must lie inside the model home (``U2NET_HOME``, or rembg's
``REMBG_HOME``): a web visitor's text must never make the server load an
arbitrary file. A relative path is taken from the model home.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InvalidInputError
from .registry import _BIREFNET_PRE, IMAGENET_MEAN, IMAGENET_STD, ModelSpec, Preprocess, WeightFile

# family -> (preprocessing, output rule, what the family is); rembg's u2net_custom, dis_custom and
# ben_custom, plus birefnet_custom (segkit's: BiRefNet's rule, for one's own BiRefNet exports)
FAMILIES: dict[str, tuple[Preprocess, str, str]] = {
    "u2net_custom": (Preprocess(320, IMAGENET_MEAN, IMAGENET_STD), "minmax", "a U²-Net"),
    "dis_custom": (Preprocess(1024, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0)), "minmax", "an IS-Net (DIS)"),
    "ben_custom": (Preprocess(1024, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0)), "minmax", "a BEN"),
    "birefnet_custom": (_BIREFNET_PRE, "sigmoid_minmax", "a BiRefNet"),
}
_ONNX_FIRST_BYTE = 0x08  # a serialised ModelProto starts with field 1 (ir_version), a varint


def model_homes() -> list[Path]:
    """The folders a custom file may live in: segkit's cache and rembg's home (as rembg allows)."""
    from .weights import _rembg_model_dir, cache_dir

    return [cache_dir(), _rembg_model_dir("x").parent.parent]


def expected(family: str) -> str:
    pre, _, kind = FAMILIES[family]
    return f"{kind} ONNX model with one input of shape {pre.square_input()}"


def _resolve(family: str, path: str) -> Path:
    """The real file behind ``path``, refused when it (or a link on the way) leaves the model homes."""
    homes = model_homes()
    raw = Path(os.path.expanduser(path))
    candidate = raw if raw.is_absolute() else homes[0] / raw
    real = candidate.resolve()
    if not any(real == home.resolve() or home.resolve() in real.parents for home in homes):
        raise InvalidInputError(f"model {family}:{path}: the file must be inside the model folder {homes[0]} "
                                "(or rembg's); copy it there and name it relative to that folder", subject="model")
    if not real.is_file():
        raise InvalidInputError(f"model {family}:{path}: no such file in the model folder ({real.name}); "
                                f"expected {expected(family)}", subject="model")
    with open(real, "rb") as f:
        head = f.read(1)
    if head != bytes([_ONNX_FIRST_BYTE]):
        raise InvalidInputError(f"model {family}:{path}: {real.name} is not an ONNX file; expected "
                                f"{expected(family)}", subject="model")
    return real


def custom_model(family: str, path: str) -> ModelSpec:
    """The spec for a person's file: the family's preprocessing and output rule, no download, no checksum."""
    real = _resolve(family, path)
    pre, output, kind = FAMILIES[family]
    weights = WeightFile(real.name, "", round(real.stat().st_size / 1e6, 1), ())
    return ModelSpec(f"{family}:{path}", f"Your own file {real.name}, run as {kind}.", weights, pre,
                     output=output, licence="the file's own", group="custom", user_file=str(real))


def check_input(spec: ModelSpec, shape: list) -> None:
    """A custom file whose input is not the family's shape is refused before any image runs."""
    wanted = spec.preprocess.square_input()
    fixed = [d if isinstance(d, int) else None for d in shape]
    if len(shape) != 4 or any(d is not None and d != w for d, w in zip(fixed, wanted)):
        family = spec.name.partition(":")[0]
        raise InvalidInputError(f"model {spec.name}: {Path(spec.user_file).name} takes input of shape {shape}; "
                                f"{family} expects {expected(family)}", subject="model")
