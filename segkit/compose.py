"""Backgrounds behind a cutout: transparent, a colour, the blurred original, or an image."""

from __future__ import annotations

from typing import Union

from PIL import Image, ImageColor, ImageFilter, ImageOps

from .errors import InvalidInputError

Background = Union[None, str, tuple, Image.Image]
BLUR_FRACTION = 1 / 40  # blur radius as a share of the long side: reads as "out of focus" at any size


def _colour(value) -> tuple[int, int, int]:
    if isinstance(value, tuple):
        return tuple(int(c) for c in value[:3])
    text = value.strip()
    if text.startswith("rgba(") or text.startswith("rgb("):  # colour pickers may send CSS rgba()
        parts = [float(p) for p in text[text.index("(") + 1:text.rindex(")")].split(",")[:3]]
        return tuple(int(round(p)) for p in parts)
    try:
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise InvalidInputError(f"background colour {value!r} is not a colour name, #hex or rgb()") from None


def compose(cutout: Image.Image, original: Image.Image, background: Background, *, matted: bool = False) -> Image.Image:
    """Put ``background`` behind the subject.

    ``None``/``"transparent"`` returns the RGBA cutout. Otherwise the result is RGB:
    the subject's colour (the original photo, or the estimated foreground when
    ``matted``) blended over the background through the cutout's alpha.
    """
    if background is None or (isinstance(background, str) and background.strip().lower() in ("", "transparent")):
        return cutout
    size = cutout.size
    if isinstance(background, Image.Image):
        behind = ImageOps.fit(ImageOps.exif_transpose(background).convert("RGB"), size, Image.Resampling.LANCZOS)
    elif isinstance(background, str) and background.strip().lower() in ("blur", "blurred original"):
        radius = max(2.0, max(size) * BLUR_FRACTION)
        behind = original.convert("RGB").filter(ImageFilter.GaussianBlur(radius))
    else:
        behind = Image.new("RGB", size, _colour(background))
    subject = cutout.convert("RGB") if matted else original.convert("RGB")
    return Image.composite(subject, behind, cutout.getchannel("A"))
