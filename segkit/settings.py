"""segkit's settings from the environment, declared once: kind, default and what each is in.

Every read goes through ``read(name)``, so a wrong value is named with its variable and what it
takes, wherever it is read, instead of a bare ``int()`` error far from the cause (or a silent
fallback). ``check_all()`` reads every one: the command line and the app call it before any work.
The README's Settings table lists these names (``tests/test_structure.py`` checks); paths, URLs
and model lists (``SEGKIT_CACHE``, ``SEGKIT_OUTPUT_DIR``, ``SEGKIT_WEIGHTS_MIRROR``,
``SEGKIT_PRELOAD``, ``SEGKIT_MAX_UPLOAD``, ``SEGKIT_SKIP_CHECKSUM``) are free text, read where used.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInputError

SWITCH_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
CUDNN_SEARCHES = ("HEURISTIC", "EXHAUSTIVE", "DEFAULT")


@dataclass(frozen=True)
class Setting:
    """``kind``: "count" (a whole number, 1 or more), "amount" (a number above 0), "choice" (one of
    ``choices``, any case) or "switch" (1/0, true/false, yes/no, on/off). ``default`` is what unset
    (or empty) gives; None leaves the choice to the code that reads it."""

    kind: str
    default: Any = None
    unit: str = ""  # words after "a whole number" / "a number" in the message
    choices: tuple[str, ...] = ()


SETTINGS = {
    "SEGKIT_DEVICE": Setting("choice", "auto", choices=("auto", "cpu", "cuda")),
    "SEGKIT_THREADS": Setting("count", unit=" of threads"),
    "SEGKIT_MAX_SESSIONS": Setting("count", 3, " of models"),
    "SEGKIT_SESSION_MEMORY_MB": Setting("amount", unit=" of MB"),
    "SEGKIT_NETWORK_BATCH": Setting("count", unit=" of images"),
    "SEGKIT_IMAGES_IN_FLIGHT": Setting("count", 2, " of images"),
    "SEGKIT_SAM_EMBEDDINGS": Setting("count", 4, " of photos"),
    "SEGKIT_GPU_PIXELS": Setting("switch", True),
    "SEGKIT_TF32": Setting("switch", False),
    "SEGKIT_CUDNN_SEARCH": Setting("choice", "HEURISTIC", choices=CUDNN_SEARCHES),
    "SEGKIT_PROBE_MODELS": Setting("switch", True),
    "SEGKIT_MAX_PIXELS": Setting("count", 64_000_000, " of pixels"),
    "SEGKIT_MAX_URL_MB": Setting("amount", 25.0, " of MB"),
    "SEGKIT_MAX_BATCH": Setting("count", 16, " of photos"),
    "SEGKIT_MAX_FILE_MB": Setting("amount", 25.0, " of MB"),
    "SEGKIT_OUTPUT_TTL": Setting("count", 3600, " of seconds"),
    "SEGKIT_OUTPUT_MAX_MB": Setting("count", 2048, " of MB"),
    "SEGKIT_MAX_VIDEO_SECONDS": Setting("amount", 600.0, " of seconds"),
    "SEGKIT_MAX_VIDEO_PIXELS": Setting("amount", 3840 * 2160, " of pixels a frame"),
    "SEGKIT_MAX_VIDEO_MB": Setting("amount", 2048.0, " of MB"),
    "SEGKIT_CONCURRENCY": Setting("count", unit=" of requests"),
}


def read(name: str) -> Any:
    """The setting's value now (the environment is read each time), or its default if unset."""
    setting, raw = SETTINGS[name], os.getenv(name, "").strip()
    if not raw:
        return setting.default
    if setting.kind == "choice":
        chosen = [choice for choice in setting.choices if choice.lower() == raw.lower()]
        if not chosen:
            raise InvalidInputError(f"{name} must be one of {', '.join(setting.choices)} (got {raw!r})", subject=name)
        return chosen[0]
    if setting.kind == "switch":
        if raw.lower() not in SWITCH_WORDS:
            raise InvalidInputError(f"{name} must be 1 or 0 (or true/false, yes/no, on/off) (got {raw!r})",
                                    subject=name)
        return SWITCH_WORDS[raw.lower()]
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if setting.kind == "count":
        if not (math.isfinite(number) and number >= 1 and number == int(number)):
            raise InvalidInputError(f"{name} must be a whole number{setting.unit}, 1 or more (got {raw!r})",
                                    subject=name)
        return int(number)
    if not (math.isfinite(number) and number > 0):
        raise InvalidInputError(f"{name} must be a number{setting.unit} above 0 (got {raw!r})", subject=name)
    return number


def check_all() -> None:
    """Read every setting, so a wrong one stops a command or the app before it starts work."""
    for name in SETTINGS:
        read(name)
