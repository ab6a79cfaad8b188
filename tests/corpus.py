"""A corpus of awkward uploads, generated here (no files from elsewhere).

``file_cases()`` maps a name to (encoded bytes, expectation): either
``("ok", (width, height))`` for odd-but-valid images that must come back as an
RGBA cutout of that size (after EXIF rotation), or ``("error", substring)`` for
bad ones whose error must name the problem."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A valid PNG header claiming a huge canvas, with almost no data behind it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 100))
            + _chunk(b"IEND", b""))


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(width: int = 120, height: int = 90) -> Image.Image:
    """A small synthetic photo: a bright disc on a textured darker ground."""
    yy, xx = np.mgrid[0:height, 0:width]
    disc = ((xx - width / 2) ** 2 + (yy - height / 2) ** 2) < (min(width, height) / 3) ** 2
    rng = np.random.default_rng(7)
    pixels = rng.integers(20, 90, (height, width, 3)).astype(np.uint8)
    pixels[disc] = [230, 180, 60]
    return Image.fromarray(pixels)


def _with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(photo(120, 90), "JPEG", exif=exif.tobytes(), quality=90)


def heic(image: Image.Image, orientation: int = 1) -> bytes:
    """HEIC as an iPhone writes it, through pillow-heif's own writer (not Pillow's plugin, so
    that segkit's registering of it on first use is what the tests see)."""
    import pillow_heif

    exif = Image.Exif()
    exif[0x0112] = orientation  # pillow-heif stores a turn as the file's rotation, as phones do
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def _animated(fmt: str) -> bytes:
    frames = [photo(64, 48), photo(64, 48).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _tiny_mp4() -> bytes:
    """Four frames of H.264 in MP4: a clip sent where a photo goes."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=4)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(4):
            out.mux(stream.encode(av.VideoFrame.from_image(photo(64, 48))))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def file_cases() -> dict[str, tuple[bytes, tuple[str, object]]]:
    png, jpeg = encode(photo()), encode(photo(), "JPEG", quality=90)
    palette = photo().convert("P")
    palette.info["transparency"] = 0
    cases = {
        "empty file": (b"", ("error", "empty")),
        "truncated png": (png[: len(png) // 3], ("error", "truncated or corrupt")),
        "truncated jpeg": (jpeg[: len(jpeg) // 2], ("error", "truncated or corrupt")),
        "png header only": (png[:33], ("error", "truncated or corrupt")),
        "text named as image": (b"just some text, not pixels\n" * 10, ("error", "not an image")),
        "html named as image": (b"<!doctype html><html><body><img src=x></body></html>", ("error", "not an image")),
        "svg named as image": (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
                               ("error", "not an image")),
        "a video named as a photo": (_tiny_mp4(), ("error", "a video, not a photo")),
        "random bytes": (bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)),
                         ("error", "not an image")),
        "decompression bomb 60000x60000": (bomb_png(), ("error", "decompression bomb")),
        "over the pixel limit 9000x9000": (bomb_png(9000, 9000), ("error", "MP limit")),
        "1x1": (encode(photo(1, 1)), ("ok", (1, 1))),
        "1xN": (encode(photo(1, 300)), ("ok", (1, 300))),
        "Nx1": (encode(photo(300, 1)), ("ok", (300, 1))),
        "extreme aspect 2000x3": (encode(photo(2000, 3)), ("ok", (2000, 3))),
        "16-bit grey": (encode(Image.fromarray(np.asarray(photo().convert("L"), np.uint16) * 257)), ("ok", (120, 90))),
        "16-bit RGB as I;16 tiff": (encode(Image.fromarray(np.asarray(photo().convert("L"), np.uint16) * 257), "TIFF"),
                                    ("ok", (120, 90))),
        "CMYK jpeg": (encode(photo().convert("CMYK"), "JPEG"), ("ok", (120, 90))),
        "palette with transparency": (encode(palette), ("ok", (120, 90))),
        "LA": (encode(photo().convert("LA")), ("ok", (120, 90))),
        "RGBA": (encode(photo().convert("RGBA")), ("ok", (120, 90))),
        "1-bit": (encode(photo().convert("1")), ("ok", (120, 90))),
        "animated GIF (first frame)": (_animated("GIF"), ("ok", (64, 48))),
        "animated WebP (first frame)": (_animated("WEBP"), ("ok", (64, 48))),
        "BMP": (encode(photo(), "BMP"), ("ok", (120, 90))),
        "progressive JPEG": (encode(photo(), "JPEG", progressive=True), ("ok", (120, 90))),
        "HEIC": (heic(photo()), ("ok", (120, 90))),
        "HEIC stored turned (portrait)": (heic(photo(), orientation=6), ("ok", (90, 120))),
        "truncated HEIC": (heic(photo())[:-120], ("error", "truncated or corrupt")),
        "AVIF": (encode(photo(), "AVIF"), ("ok", (120, 90))),
    }
    for orientation in range(1, 9):  # 5..8 swap width and height
        size = (90, 120) if orientation >= 5 else (120, 90)
        cases[f"EXIF orientation {orientation}"] = (_with_orientation(orientation), ("ok", size))
    return cases


def bad_options() -> list[tuple[dict, str]]:
    """(options, the message they must get): every kind of wrong value for every option,
    generated from the declarations, so a new option is covered by adding it there."""
    from segkit import options as declared

    cases: list[tuple[dict, str]] = []
    for f, control in declared.declared():
        name = f.name
        kind = str(f.type)
        if kind == "int":
            must = rf"^{name}: must be a whole number from {control.low} to {control.high}, got "
            for value in (control.low - 1, control.high + 1, 10 ** 30, -10 ** 30, 1e308, -1e308, float("nan"),
                          float("inf"), float("-inf"), 2.5, "abc", "10", None, True, [1], complex(1, 1)):
                cases.append(({name: value}, must))
        elif kind == "bool":
            must = rf"^{name}: must be true or false"
            for value in ("yes", "no", "", "1", 2, 0, 1.0, None, "abc", [True]):
                cases.append(({name: value}, must))
        elif kind == "Prompt":
            cases += [({name: "[", "model": "sam"}, rf"^{name}: not valid JSON"),
                      ({name: [{"type": "dot"}], "model": "sam"}, rf"^{name}: mark 1: must be a dict whose"),
                      ({name: [{"type": "point", "data": [1, 2], "label": 1}]}, rf"^{name}: only prompted models")]
        elif control.choices:
            cases += [({name: "nope"}, r"^unknown model 'nope'; choose one of: u2net, "),
                      ({name: ""}, r"^unknown model ''"), ({name: None}, rf"^{name}: must be a model name, got None"),
                      ({name: 3}, rf"^{name}: must be a model name, got 3")]
        else:  # the background
            colour = r"^background: .* is not a colour; use a name \(green\), #rrggbb or rgb\(r, g, b\)"
            for value in ("notacolour", "rgb(a,b,c)", "rgb(1,2)", "rgb(", "rgb(1,2,3", "rgb()", "rgb(1e400,0,0)",
                          "rgb(nan,0,0)", "rgb(256,0,0)", "rgb(-1,0,0)", "#12345", "#ggg", (1, 2), (1e400, 0, 0)):
                cases.append(({name: value}, colour))
            for path in ("photos/beach.jpg", "beach.PNG", "C:\\beach"):  # text is never read as a file
                cases.append(({name: path}, colour + r".*; text names a colour, never a file: pass the picture itself"))
            cases += [({name: b""}, r"^background image: empty (data|file) \(0 bytes\)"),
                      ({name: b"\x00random bytes" * 10}, r"^background image: not an image"),
                      ({name: b"<svg xmlns='http://www.w3.org/2000/svg'/>"}, r"^background image: not an image"),
                      ({name: bomb_png(13000, 13000)}, r"^background image: image is 13000x13000 = 169 MP, over the")]
    cases.append(({"alpha_matting": True, "alpha_matting_foreground_threshold": 10,
                   "alpha_matting_background_threshold": 50}, r"background threshold must be the lower one"))
    cases.append(({"colour": "red"}, r"^unknown option 'colour'; the options are: model, "))
    cases.append(({"alpha_mating": True}, r"^unknown option 'alpha_mating'; did you mean 'alpha_matting'\? the options"))
    cases.append(({"erode_size": 5}, r"^unknown option 'erode_size'; did you mean 'alpha_matting_erode_size'\?"))
    return cases
