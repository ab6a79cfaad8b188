"""PNG and zip output.

PNGs are written here rather than by Pillow or FFmpeg: every row with the "Up" filter (minus the row
above, one numpy subtraction) and deflated by ISA-L at level 1 (``isal``), which encodes several times
faster than zlib at level 1 for files of about the same size (bench/RESULTS.md, PNG encoding). Encoding
must not dominate a request, nor a zip of video frames. Pillow writes the other modes (palette, 16-bit)
and images with a transparent colour; a photo's colour profile goes into the file either way.
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
from pathlib import Path, PurePosixPath

import numpy as np
from isal import isal_zlib
from PIL import Image

from ..errors import InvalidInputError

PNG_COMPRESS_LEVEL = 1  # Pillow's, for the modes written through it
PNG_COLOUR_TYPES = {"L": 0, "RGB": 2, "LA": 4, "RGBA": 6}  # Pillow mode -> PNG colour type, 8 bits a sample
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IDAT_LIMIT = 1 << 30  # a chunk holds under 2 GiB


def save_png(image: Image.Image, target) -> None:
    """PNG into a file object, or into a path whole or not at all: a stop (Ctrl-C) or a full disk
    mid-way leaves no cut-off file under the name, for a person or a rerun to take for finished."""
    if isinstance(target, (str, os.PathLike)):
        _write_whole(Path(target), lambda file: _write_png(image, file))
    else:
        _write_png(image, target)


def save_for_browser(image: Image.Image, stem: str | os.PathLike) -> str:
    """The photo as shown beside its cutout, written whole to ``stem`` plus a suffix, which it returns.
    A browser fetches it, maybe from afar: a JPEG (quality 95, colour at full resolution) where there is
    no alpha, a quarter of a PNG's bytes or less; else a PNG. Its colour profile goes with it."""
    if image.mode not in ("RGB", "L"):
        save_png(image, f"{stem}.png")
        return f"{stem}.png"
    profile = image.info.get("icc_profile")
    _write_whole(Path(f"{stem}.jpg"),
                 lambda file: image.save(file, "JPEG", quality=95, subsampling=0, icc_profile=profile))
    return f"{stem}.jpg"


def _write_whole(path: Path, write) -> None:
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with open(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as file:
            write(file)
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _write_png(image: Image.Image, file) -> None:
    if image.mode in PNG_COLOUR_TYPES and "transparency" not in image.info and image.width and image.height:
        file.write(png_bytes(image))
    else:
        image.save(file, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def png_bytes(image: Image.Image) -> bytes:
    """The PNG file of ``image``, whose mode is one of ``PNG_COLOUR_TYPES``."""
    rows = np.asarray(image).reshape(image.height, -1)
    filtered = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2  # "Up": each byte minus the one above it (the first row's minus 0)
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", image.width, image.height, 8, PNG_COLOUR_TYPES[image.mode], 0, 0, 0)
    chunks = [_chunk(b"IHDR", header)]
    if image.info.get("icc_profile"):  # name, then compression method 0 (zlib), as Pillow writes it
        chunks.append(_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(image.info["icc_profile"])))
    data = memoryview(isal_zlib.compress(filtered, 1))
    chunks += [_chunk(b"IDAT", data[start:start + IDAT_LIMIT]) for start in range(0, len(data), IDAT_LIMIT)]
    return PNG_SIGNATURE + b"".join([*chunks, _chunk(b"IEND", b"")])


def _chunk(kind: bytes, body) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return b"".join((struct.pack(">I", len(body)), kind, body, struct.pack(">I", crc)))


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
