"""PNG and zip output.

zlib level 1, chosen with ``bench/png_levels.py`` (figures in bench/RESULTS.md):
it encodes several times faster than Pillow's default for somewhat larger
files. Encoding must not dominate a request; a few hundred KB more per image is
the cheaper side. Where PyAV is installed, FFmpeg's PNG encoder writes them:
its Paeth filter makes files the size of Pillow's level 1 in about half the CPU
(Pillow tries every filter on every row); a photo's colour profile is added to its file.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import uuid
import zipfile
import zlib
from collections import Counter
from fractions import Fraction
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from ..errors import InvalidInputError

PNG_COMPRESS_LEVEL = 1
AV_PIXELS = {"RGBA": "rgba", "RGB": "rgb24", "L": "gray"}  # Pillow mode -> PyAV's name for its frames


def save_png(image: Image.Image, target) -> None:
    """PNG into a file object, or into a path whole or not at all: a stop (Ctrl-C) or a full disk
    mid-way leaves no cut-off file under the name, for a person or a rerun to take for finished."""
    if not isinstance(target, (str, os.PathLike)):
        _write_png(image, target)
        return
    path = Path(target)
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with open(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as file:
            _write_png(image, file)
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _write_png(image: Image.Image, file) -> None:
    # Pillow where FFmpeg has no such pixel format, or for a transparent colour in image.info
    if image.mode in AV_PIXELS and "transparency" not in image.info:
        try:
            encoder = png_encoder(image.mode, image.size)
        except ImportError:  # photos need no PyAV
            pass
        else:
            png = png_bytes(encoder, image, 1)
            file.write(_with_profile(png, image.info["icc_profile"]) if image.info.get("icc_profile") else png)
            return
    image.save(file, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def _with_profile(png: bytes, profile: bytes) -> bytes:
    """``png`` with the colour profile in an iCCP chunk right after its header (signature and
    IHDR, 33 bytes), as Pillow writes it."""
    body = b"ICC Profile\0\0" + zlib.compress(profile)  # name, then compression method 0 (zlib)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
    return png[:33] + chunk + png[33:]


def png_encoder(mode: str, size: tuple[int, int]):
    """FFmpeg's PNG encoder (PyAV) for pictures of this mode and size: Paeth filter, zlib level 1."""
    import av

    encoder = av.CodecContext.create("png", "w")
    encoder.width, encoder.height = size
    encoder.pix_fmt = AV_PIXELS[mode]
    encoder.time_base = Fraction(1, 25)
    encoder.sample_aspect_ratio = Fraction(1, 1)  # its pHYs chunk says square pixels, not 0:1
    encoder.options = {"pred": "paeth", "compression_level": str(PNG_COMPRESS_LEVEL)}
    return encoder


def png_bytes(encoder, image: Image.Image, number: int) -> bytes:
    """One PNG file from ``encoder`` (``png_encoder``); ``number`` counts the pictures it has had."""
    import av

    frame = av.VideoFrame.from_ndarray(np.asarray(image), format=AV_PIXELS[image.mode])
    frame.pts = number
    return b"".join(bytes(packet) for packet in encoder.encode(frame))


def unique_names(labels: list[str]) -> list[str]:
    """File stems for a batch's results: each input's own stem (safe characters only),
    numbered where two share one."""
    used: set[str] = set()
    stems = []
    for label in labels:
        stem, n = re.sub(r"[^\w.-]+", "-", Path(label).stem).strip("-.") or "image", 1
        candidate = stem
        while candidate in used:
            n += 1
            candidate = f"{stem}-{n}"
        used.add(candidate)
        stems.append(candidate)
    return stems


def write_zip(files: list[Path], path: str | os.PathLike) -> None:
    """A zip of PNG files under their own names (stored, not deflated: PNG is compressed already),
    dated 1980 so that the same cutouts make the same bytes (a web server's cache keeps one copy)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for file in files:
            info = zipfile.ZipInfo(Path(file).name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            with open(file, "rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target)


def output_name(file: str, folder: str | None, suffix: str = ".png") -> str:
    """Where a cutout goes, relative to the output folder: a file found under a folder keeps its
    place in it, a file named alone keeps its name, the suffix becomes ``suffix``. On POSIX paths,
    so that it holds for s3:// and gs:// keys too (the CLI and the Ray job share it)."""
    relative = PurePosixPath(file).relative_to(folder) if folder else PurePosixPath(PurePosixPath(file).name)
    return relative.with_suffix(suffix).as_posix()


def found_kind(file: str, folder: str, suffixes: set[str], output: str | None = None) -> str:
    """What a file met walking ``folder`` is: "input" (a suffix in ``suffixes``), "other" (a file
    of another kind, worth a mention) or "ignored": hidden or inside a hidden folder (macOS leaves
    a ._photo.jpg beside each photo it copies to a USB drive), or under ``output`` where that is a
    folder inside ``folder``: a rerun would take the last run's cutouts for photos (``output`` as
    ``folder`` itself is ``overwrites_input``'s to catch). POSIX paths in one form (all relative or
    all absolute); the CLI and the Ray job share it."""
    relative, out = PurePosixPath(file).relative_to(folder), PurePosixPath(output or "/")
    nested = output is not None and out != PurePosixPath(folder) and out.is_relative_to(folder)
    if any(part.startswith(".") for part in relative.parts) or (nested and PurePosixPath(file).is_relative_to(out)):
        return "ignored"
    return "input" if relative.suffix.lower() in suffixes else "other"


def distinct_outputs(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (input, output name) pairs with no file written twice. Where several inputs would
    write one name (photo.jpg and photo.webp both to photo.png), each keeps its own suffix in
    it (photo.jpg.png, photo.webp.png): the names stay the same from run to run, which reruns
    that skip finished outputs rely on. Names are compared ignoring case, as macOS and Windows
    file systems do; an input given twice is done once. Two inputs that still meet (one file
    name from two folders, each given alone) are an error before any work."""
    pairs = list(dict.fromkeys(pairs))
    shared = Counter(name.casefold() for _, name in pairs)
    kept = [(file, _keeping_suffix(name, file) if shared[name.casefold()] > 1 else name) for file, name in pairs]
    first: dict[str, str] = {}
    for (file, name), (_, kept_name) in zip(pairs, kept):
        if (other := first.setdefault(kept_name.casefold(), file)) != file:
            hint = "give the folder that holds them, or run them one at a time"
            raise InvalidInputError(f"{other} and {file} would both be written to {name}: {hint}", subject=file,
                                    hint=hint)
    return kept


def overwrites_input(source: str | os.PathLike, hint: str = "choose another output folder") -> InvalidInputError:
    """The error for an input whose cutout would replace it (a rerun into the input's own folder, a
    video written to its own path), raised before any work. Callers compare paths each in their own kind."""
    return InvalidInputError(f"{source}: its cutout would be written over it; {hint}", subject=str(source), hint=hint)


def _keeping_suffix(name: str, file: str) -> str:
    path = PurePosixPath(name)
    return path.with_name(path.stem + PurePosixPath(file).suffix + path.suffix).as_posix()
