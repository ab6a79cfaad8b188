"""One image's model input, mask and cutout on the network's GPU, around the network's own run.

On a GPU host a 4.6 MP photo spent most of its ``segment()`` in the host's resizes and cutout while
the GPU waited (bench/RESULTS.md, GPU). Here the photo crosses the bus once each way: its pixels go
up, two small ONNX graphs beside the network do rembg's steps, and the cutout and its alpha come
down. The steps are the host path's, so the results are equal bit for bit
(``tests/test_on_device.py`` runs the same graphs on the CPU):

- Pillow's 8-bit Lanczos resizes are integer sums of 22-bit taps. As float64 matrix products of
  the whole image with dense tap matrices every product and sum stays an integer below 2**53, so
  any summation order gives Pillow's sums; then its rounding and clipping;
- the input tensor and the mask take rembg's float steps (``_tensor_kernels``) in the same
  precision; the paste through the mask is Pillow's rounding of ``value * alpha / 255``.

Only for a plain cutout (no post-processing, no matting) with a square model input and a min-max
mask, one image at a time: a gathered batch keeps the host path, its runs already keep the GPU busy.
``SEGKIT_GPU_PIXELS=0`` keeps everything on the host.
"""

from __future__ import annotations

import functools
import logging
import threading

import numpy as np
import onnxruntime as ort

from .. import settings
from ..pixels import _resize_kernels as taps_of
from ..pixels.resize import _coefficients, full_size, in_bands, row_reader
from .pinned import BLOCKS
from .registry import ModelSpec

log = logging.getLogger("segkit")


def takes(session, spec: ModelSpec, options, image) -> bool:
    """Whether this call's pixel work runs beside the network on its GPU: a lone image, where the
    graphs below reproduce the model's and the options' steps, once their sessions are ready. Until
    then calls keep the host path, which gives the same bytes, so that no call waits for them; they
    are built from the second call on, since beside a first call they slowed its network's own setup."""
    if not (suits(spec, options, image) and wanted() and not getattr(session, "gathering", False)):
        return False
    net = network(session)
    output, size = net.get_outputs()[0].shape, spec.preprocess.size
    if (net.get_providers()[0] != "CUDAExecutionProvider" or net.get_inputs()[0].type != "tensor(float)"
            or len(output) != 4 or list(output[2:]) != [size, size]):  # a person's own file may differ
        return False
    if _first_call((spec.preprocess, "cuda")):
        return False
    return prepare(spec, "cuda", _Device.of(net, "cuda").providers).is_set()


def suits(spec: ModelSpec, options, image) -> bool:
    return (_graphs_fit(spec) and not options.post_process_mask and not options.alpha_matting
            and image.mode in ("RGB", "RGBA") and image.height <= 100 * image.width)  # else Pillow goes vertical first


def network(session):
    """The file's own one-image session behind a ``BatchingSession`` (or the session itself)."""
    return getattr(session, "session", session)


def cutout(net: ort.InferenceSession, spec: ModelSpec, image, device: str = "cuda") -> tuple[np.ndarray, np.ndarray]:
    """(alpha (H, W), RGBA cutout (H, W, 4)) for an image ``suits`` takes, as ``predict`` then
    ``pixels.resize.cutout`` give them; ``device`` is where the graphs and tensors live."""
    height, width, _, _, read = row_reader(image)
    pre, size = spec.preprocess, spec.preprocess.size
    graphs, on = _graphs(pre), _Device.of(net, device)
    staged = _host_array((height, width, 4), device)
    # Pillow's own 4-byte layout (RGB too: no repacking), pasted in row bands on every core
    in_bands(height, height * width, lambda y0, y1: read(y0, y1, into=staged[y0:y1]))
    image_value = ort.OrtValue.ortvalue_from_numpy(staged, on.kind, 0)
    del staged  # a CPU OrtValue keeps its own reference; a GPU's has copied it

    tensor = on.run(graphs[0], {"pixels": image_value, "columns": on.taps(width, size),
                                "rows": on.taps(height, size, rows=True)})["tensor"]
    binding = net.io_binding()
    binding.bind_ortvalue_input(net.get_inputs()[0].name, tensor)
    binding.bind_output(net.get_outputs()[0].name, on.kind, 0)
    net.run_with_iobinding(binding)

    alpha, rgba = _host_array((height, width), device), _host_array((height, width, 4), device)
    mask_and_cutout = graphs[2 if image.mode == "RGB" else 1]
    on.run(mask_and_cutout, {"output": binding.get_outputs()[0], "pixels": image_value,
                             "columns": on.taps(size, width), "rows": on.taps(size, height, rows=True)},
           into={"alpha": alpha, "rgba": rgba})
    return alpha, rgba


def _graphs_fit(spec: ModelSpec) -> bool:
    """Whether the graphs reproduce this model's steps: a square input, one min-max mask."""
    return spec.preprocess.resize == "square" and spec.output == "minmax" and len(spec.mask_labels) == 1


_ready: dict[tuple, threading.Event] = {}
_asked: set[tuple] = set()
_ready_lock = threading.Lock()


def _first_call(key: tuple) -> bool:
    with _ready_lock:
        first = key not in _asked and key not in _ready
        _asked.add(key)
        return first


def prepare(spec: ModelSpec, kind: str, providers: list) -> threading.Event:
    """The graphs' sessions for ``spec``'s preprocessing on ``kind``, built and run once in a thread
    (a device's first matrix product sets up its math library): the event is set when they are
    ready, and never where they fail (that is logged, and calls keep the host path)."""
    key = spec.preprocess, kind
    with _ready_lock:
        if key in _ready:
            return _ready[key]
        ready = _ready[key] = threading.Event()

    def build() -> None:
        try:
            _first_runs(_Device(kind, providers), spec.preprocess)
            ready.set()
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
            log.warning("pixel work stays on the host: its graphs do not run on %s (%s)", kind, str(exc)[:300])

    # not a daemon: one still inside onnxruntime's CUDA setup as the interpreter exits aborts the process
    threading.Thread(target=build, name="segkit-pixel-graphs").start()
    return ready


def _first_runs(on: "_Device", pre) -> None:
    """Each graph once, on a small image, as ``cutout`` runs them."""
    graphs, size, pixels = _graphs(pre), pre.size, np.zeros((8, 8, 4), np.uint8)
    image_value = ort.OrtValue.ortvalue_from_numpy(pixels, on.kind, 0)
    on.run(graphs[0], {"pixels": image_value, "columns": on.taps(8, size), "rows": on.taps(8, size, rows=True)})
    output = ort.OrtValue.ortvalue_from_numpy(np.ones((1, 1, size, size), np.float32), on.kind, 0)
    for graph in graphs[1:]:
        on.run(graph, {"output": output, "pixels": image_value, "columns": on.taps(size, 8),
                       "rows": on.taps(size, 8, rows=True)})


def wanted() -> bool:
    return settings.read("SEGKIT_GPU_PIXELS")


def _graphs(pre) -> tuple[bytes, bytes, bytes]:
    """(model input, mask and cutout of an RGBA image, of an RGB one) for this preprocessing."""
    from ._device_graphs import mask_and_cutout, model_input  # onnx: imported where a GPU is only

    return model_input(pre.scale == "max", pre.mean, pre.std), mask_and_cutout(False), mask_and_cutout(True)


def _host_array(shape: tuple, device: str) -> np.ndarray:
    """Where a transfer starts or ends: page-locked memory for a GPU where it can be had."""
    locked = BLOCKS.array(shape) if device == "cuda" else None
    return locked if locked is not None else full_size(shape)


class _Device:
    """The graphs' sessions and the tap matrices on one device, with the network session's settings."""

    def __init__(self, kind: str, providers: list):
        self.kind, self.providers = kind, providers

    @classmethod
    def of(cls, net, kind: str) -> "_Device":
        settings = net.get_provider_options()
        return cls(kind, [(name, settings.get(name, {})) for name in net.get_providers()])

    def taps(self, in_size: int, out_size: int, rows: bool = False) -> ort.OrtValue:
        return _taps(in_size, out_size, rows, self.kind)

    def run(self, graph: bytes, inputs: dict, into: dict | None = None) -> dict:
        """Run ``graph`` on inputs already on the device; outputs stay there but for ``into``'s arrays."""
        session = _session(graph, self.kind, self.providers)
        binding = session.io_binding()
        for name, value in inputs.items():
            binding.bind_ortvalue_input(name, value)
        names = [out.name for out in session.get_outputs()]
        for name in names:
            if into and name in into:
                array = into[name]
                binding.bind_output(name, "cpu", 0, array.dtype, array.shape, array.ctypes.data)
            else:
                binding.bind_output(name, self.kind, 0)
        session.run_with_iobinding(binding)
        return dict(zip(names, binding.get_outputs()))


_sessions: dict[tuple[bytes, str], ort.InferenceSession] = {}
_building: dict[tuple[bytes, str], threading.Lock] = {}
_sessions_lock = threading.Lock()


def _session(graph: bytes, kind: str, providers: list) -> ort.InferenceSession:
    """One session per graph and device, built once even when a first call races ``prepare``."""
    key = graph, kind
    with _sessions_lock:
        if key in _sessions:
            return _sessions[key]
        gate = _building.setdefault(key, threading.Lock())
    with gate:
        if key not in _sessions:
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # no fusions: the exact steps
            options.intra_op_num_threads = 1  # the work is on the device: no host threads spinning beside others
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            names, settings = _split(providers)
            session = ort.InferenceSession(graph, options, providers=names, provider_options=settings)
            with _sessions_lock:
                _sessions[key] = session
    return _sessions[key]


def _split(providers: list) -> tuple[list, list]:
    """onnxruntime's provider list (names, or (name, options) pairs) as names and options."""
    return ([p if isinstance(p, str) else p[0] for p in providers],
            [{} if isinstance(p, str) else dict(p[1]) for p in providers])


@functools.lru_cache(maxsize=16)
def _taps(in_size: int, out_size: int, rows: bool, kind: str) -> ort.OrtValue:
    """Pillow's Lanczos taps as a dense float64 matrix, (in, out); transposed for a vertical pass."""
    bounds, taps = _coefficients(in_size, out_size, taps_of.LANCZOS)
    dense = np.zeros((in_size, out_size))
    for out, (first, count) in enumerate(bounds):
        dense[first:first + count, out] = taps[out, :count]
    return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(dense.T if rows else dense), kind, 0)
