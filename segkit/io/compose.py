"""Backgrounds behind a cutout: transparent, a colour, the blurred original, or an image."""

from __future__ import annotations

import math
import re
from typing import Union

from PIL import Image, ImageColor, ImageFilter, ImageOps

from ..errors import InvalidInputError
from .decode import names_a_file

Background = Union[None, str, tuple, Image.Image]
BLUR_FRACTION = 1 / 40  # blur radius as a share of the long side: reads as "out of focus" at any size
# what people and the app type -> the value compose() takes
BACKGROUND_KEYWORDS = {"": None, "transparent": None, "none": None, "blur": "blur", "blurred original": "blur"}
_CSS_RGB = re.compile(r"rgba?\((.*)\)", re.IGNORECASE | re.DOTALL)


def parse_colour(value: str | tuple) -> tuple[int, int, int]:
    """A colour name, #hex, CSS ``rgb(r, g, b)``/``rgba(r, g, b, a)`` (what colour pickers send) or an
    (r, g, b) tuple; anything else is an ``InvalidInputError`` naming the form expected."""
    problem = (f"background: {value!r} is not a colour; use a name (green), #rrggbb or rgb(r, g, b) "
               "with each part from 0 to 255")
    if isinstance(value, str) and names_a_file(value):
        problem += "; text names a colour, never a file: pass the picture itself (a pathlib.Path or an image)"
    if isinstance(value, str) and (css := _CSS_RGB.fullmatch(value.strip())):
        parts = [p.strip() for p in css.group(1).split(",")]
        value = tuple(parts[:3]) if len(parts) in (3, 4) else ()
    if isinstance(value, tuple):
        try:
            numbers = [float(p) for p in value]
        except (TypeError, ValueError):
            raise InvalidInputError(problem, subject="background") from None
        if len(numbers) != 3 or not all(math.isfinite(n) and 0 <= n <= 255 for n in numbers):
            raise InvalidInputError(problem, subject="background")
        return tuple(int(round(n)) for n in numbers)
    try:
        return ImageColor.getrgb(str(value).strip())[:3]
    except ValueError:
        raise InvalidInputError(problem, subject="background") from None


def compose(cutout: Image.Image, original: Image.Image, background: Background, *, matted: bool = False) -> Image.Image:
    """Put ``background`` (validated by ``Options``) behind the subject.

    ``None`` returns the RGBA cutout. Otherwise the result is RGB: the subject's
    colour (the original photo, or the estimated foreground when ``matted``)
    blended over the background through the cutout's alpha. Either way it keeps
    the photo's colour profile: its pixels are in the photo's colours (a phone's
    Display P3, say), which viewers would otherwise take for sRGB. Only an RGB
    profile: a CMYK or grey photo's was left behind when it was turned into RGB.
    """
    result = cutout if background is None else _over(cutout, original, background, matted)
    if (profile := original.info.get("icc_profile")) and profile[16:20] == b"RGB ":  # its colour space
        result.info["icc_profile"] = profile
    return result


def _over(cutout: Image.Image, original: Image.Image, background: Background, matted: bool) -> Image.Image:
    size = cutout.size
    if isinstance(background, Image.Image):
        behind = ImageOps.fit(background.convert("RGB"), size, Image.Resampling.LANCZOS)
    elif background == "blur":
        radius = max(2.0, max(size) * BLUR_FRACTION)
        behind = original.convert("RGB").filter(ImageFilter.GaussianBlur(radius))
    else:
        behind = Image.new("RGB", size, parse_colour(background))
    subject = cutout.convert("RGB") if matted else original.convert("RGB")
    return Image.composite(subject, behind, cutout.getchannel("A"))
