"""Every per-image option, declared once.

``Options`` is the declaration: each field carries its default and, in its
metadata, a ``Control`` with the help text, the accepted range and how a person
sets it. Everything else is derived from it: validation (``Options(...)``),
the app's controls and API docs (``app.py``), the CLI flags (``segkit.cli``),
the keyword arguments of ``segment()``/``process()`` (``OptionValues``), and
the ComfyUI node's call. Adding an option is adding a field here.
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Callable, Optional, TypedDict

from .errors import InvalidInputError
from .io.compose import BACKGROUND_KEYWORDS, Background, parse_colour
from .io.decode import decode
from .models.lookup import get_model, list_models
from .models.registry import ModelSpec
from .models.sam import parse_prompt

Prompt = Optional[tuple[dict, ...]]  # rembg's sam_prompt marks (see segkit.models.sam)


@dataclass(frozen=True)
class Control:
    """How one option is described, bounded and set (the data behind each door)."""

    help: str
    label: str
    low: Optional[int] = None  # accepted range, inclusive (whole numbers)
    high: Optional[int] = None
    step: int = 1  # the slider's step in the app
    slider_high: Optional[int] = None  # the app's slider end, where narrower than ``high`` (the seed's 250)
    shown_with: str = ""  # the boolean option this one refines (hidden in the app while it is off)
    flag: str = ""  # CLI long flag; derived from the name when empty
    short: str = ""  # CLI short flag
    choices: Optional[Callable[[], list[str]]] = None


def _option(default: Any, help: str, label: str, **control: Any) -> Any:
    return field(default=default, metadata={"control": Control(help, label, **control)})


@dataclass(frozen=True)
class Options:
    """The seed node's parameters (and the background behind the cutout), validated on creation."""

    model: str = _option("u2netp", "the segmentation model; u2netp is small and works offline, others may "
                         "download first", "Model", short="-m", choices=list_models)
    alpha_matting: bool = _option(False, "refine soft edges (hair, fur) with closed-form matting",
                                  "Alpha matting (finer hair and soft edges)", short="-a")
    alpha_matting_foreground_threshold: int = _option(
        240, "mask values above this are sure foreground", "Foreground threshold",
        low=0, high=255, step=5, slider_high=250, shown_with="alpha_matting", flag="--foreground-threshold")
    alpha_matting_background_threshold: int = _option(
        20, "mask values below this are sure background", "Background threshold",
        low=0, high=255, step=5, slider_high=250, shown_with="alpha_matting", flag="--background-threshold")
    alpha_matting_erode_size: int = _option(
        10, "pixels the sure regions shrink by before matting", "Erode size",
        low=0, high=100, slider_high=40, shown_with="alpha_matting", flag="--erode-size")
    post_process_mask: bool = _option(False, "smooth the mask's boundary (opening, blur, threshold)",
                                      "Post-process mask (smoother boundary)", flag="--post-process", short="-p")
    background: Background = _option(
        None, "what goes behind the subject: transparent (RGBA), a colour (#00ff00, a name or rgb(r,g,b)), "
        "blur (the blurred original) or an image", "Background")
    prompt: Prompt = _option(
        None, 'for the sam model: what to cut out, as a list of marks (JSON text too): {"type": "point", '
        '"data": [x, y], "label": 1} keeps what is under a point (label 0 removes it), {"type": "rectangle", '
        '"data": [x0, y0, x1, y1]} boxes it; none means the centre of the photo', "Points and box (sam)")

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, _VALIDATORS[kind(f)](f, getattr(self, f.name)))
        fg, bg = self.alpha_matting_foreground_threshold, self.alpha_matting_background_threshold
        if self.alpha_matting and bg > fg:
            raise InvalidInputError(
                f"alpha_matting_background_threshold ({bg}) is above alpha_matting_foreground_threshold ({fg}); "
                "the background threshold must be the lower one", subject="alpha_matting_background_threshold")
        if self.prompt and self.spec.output != "prompted":
            raise InvalidInputError(f"prompt: only prompted models (sam) take points and boxes, not {self.model}",
                                    subject="prompt")

    @classmethod
    def of(cls, **values: Any) -> "Options":
        """Options from keyword arguments; an unknown keyword is named with the known ones."""
        unknown = sorted(set(values) - set(names()))
        if unknown:
            close = [n for n in names() if unknown[0] in n][:1] or difflib.get_close_matches(unknown[0], names(), n=1)
            guess = f"did you mean {close[0]!r}? " if close else ""
            raise InvalidInputError(f"unknown option {unknown[0]!r}; {guess}the options are: {', '.join(names())}",
                                    subject=unknown[0])
        return cls(**values)

    @property
    def spec(self) -> ModelSpec:
        return get_model(self.model)


class OptionValues(TypedDict, total=False):
    """``Options`` as keyword arguments, for editors (``**options: Unpack[OptionValues]``).
    A test keeps its keys equal to ``Options``' fields."""

    model: str
    alpha_matting: bool
    alpha_matting_foreground_threshold: int
    alpha_matting_background_threshold: int
    alpha_matting_erode_size: int
    post_process_mask: bool
    background: Background
    prompt: Prompt


def declared() -> list[tuple[Field, Control]]:
    """Every option's field (name, type, default) with its ``Control``, in declaration order."""
    return [(f, f.metadata["control"]) for f in fields(Options)]


def names() -> list[str]:
    return [f.name for f in fields(Options)]


def defaults() -> dict[str, Any]:
    return {f.name: f.default for f in fields(Options) if f.default is not MISSING}


def control(name: str) -> Control:
    return {f.name: c for f, c in declared()}[name]


def accepted(name: str) -> str:
    """The accepted values of an option, in words (for messages and docs)."""
    f = {f.name: f for f in fields(Options)}[name]
    c = control(name)
    what = kind(f)
    if what == "bool":
        return 'true or false (the strings "true"/"false" too)'
    if what == "int":
        return f"a whole number from {c.low} to {c.high}"
    if what == "choice":
        return "one of " + ", ".join(c.choices()) + ", or your own file as u2net_custom:PATH"
    if what == "prompt":
        return "a list of point and rectangle marks (see the help)"
    return "transparent, blur, a colour (#rrggbb, a name, rgb(r,g,b)) or an image"


def kind(f: Field) -> str:
    """"bool", "int", "choice" (the model), "prompt" or "background": what control and check an option gets."""
    control_ = f.metadata["control"]
    if control_.choices:
        return "choice"
    return {"bool": "bool", "int": "int", "Prompt": "prompt"}.get(str(f.type), "background")


def _bool(f: Field, value: Any) -> bool:
    """Real booleans, and the seed node's "true"/"false" strings; nothing else is guessed at."""
    if isinstance(value, bool):
        return value
    if hasattr(value, "dtype") and getattr(value, "dtype", None) == bool:  # numpy.bool_
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidInputError(f"{f.name}: must be {accepted(f.name)}, got {_shown(value)}", subject=f.name)


def _int(f: Field, value: Any) -> int:
    c: Control = f.metadata["control"]
    problem = f"{f.name}: must be {accepted(f.name)}, got {_shown(value)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(problem, subject=f.name)
    if isinstance(value, numbers.Integral):
        number = int(value)
    else:
        number = float(value)
        if not math.isfinite(number) or not number.is_integer():
            raise InvalidInputError(problem, subject=f.name)
        number = int(number)
    if not c.low <= number <= c.high:
        raise InvalidInputError(problem, subject=f.name)
    return number


def _choice(f: Field, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{f.name}: must be a model name, got {_shown(value)}", subject=f.name)
    get_model(value)  # an unknown name lists the known ones
    return value.strip()


def _background(f: Field, value: Any) -> Background:
    """Strings are keywords or colours, never file paths (a web visitor's text must not open
    server files); images come as PIL images, arrays, bytes or ``pathlib.Path``."""
    if value is None:
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in BACKGROUND_KEYWORDS:
            return BACKGROUND_KEYWORDS[text]
        parse_colour(value)
        return value.strip()
    if isinstance(value, tuple):
        parse_colour(value)
        return value
    if isinstance(value, os.PathLike) and not os.path.exists(value):  # the caller's own path: say which
        raise InvalidInputError(f"{f.name} image {value}: file not found", subject=f.name)
    return decode(value, label=f"{f.name} image").image  # a photo's limits, checked before decoding


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _prompt(f: Field, value: Any) -> Prompt:
    return parse_prompt(value, f.name)


_VALIDATORS: dict[str, Callable[[Field, Any], Any]] = {
    "bool": _bool, "int": _int, "choice": _choice, "background": _background, "prompt": _prompt}
