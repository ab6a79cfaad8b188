"""onnxruntime sessions: the only process-wide state segkit keeps.

Sessions are built lazily, exactly once per model even when threads race for
the first one, shared by every later call, and kept in a small LRU so cycling
through all models cannot exhaust memory. CUDA is used only after proving it
works on this host: onnxruntime-gpu advertises CUDA even when its libraries are
missing, then logs red errors and silently runs on CPU.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import logging
import os
import threading
from collections import Counter, OrderedDict
from pathlib import Path

import onnxruntime as ort

from .errors import ModelLoadError
from .registry import ModelSpec

log = logging.getLogger("segkit")
CPU = ["CPUExecutionProvider"]
CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]


def _cuda_driver_has_device() -> bool:
    """Ask the CUDA driver directly whether a GPU is present (no onnxruntime noise)."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        return cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    except (OSError, AttributeError):
        return False


def _cuda_provider_loads() -> bool:
    """Load onnxruntime's CUDA provider library: fails quietly when CUDA/cuDNN are missing."""
    if hasattr(ort, "preload_dlls"):
        try:  # picks up CUDA/cuDNN shipped in pip wheels (torch's nvidia-* packages)
            ort.preload_dlls(directory="")
        except Exception:  # noqa: BLE001 - absence is the common case on CPU hosts
            pass
    capi = Path(ort.__file__).parent / "capi"
    libs = glob.glob(str(capi / "libonnxruntime_providers_cuda.so")) + glob.glob(
        str(capi / "onnxruntime_providers_cuda.dll"))
    if not libs:
        return False
    try:
        ctypes.CDLL(str(Path(libs[0]).parent / "libonnxruntime_providers_shared.so"), mode=ctypes.RTLD_GLOBAL)
    except OSError:
        pass
    try:
        ctypes.CDLL(libs[0])
        return True
    except OSError as exc:
        log.info("CUDA provider unavailable, using CPU: %s", exc)
        return False


@functools.lru_cache(maxsize=1)
def providers() -> tuple[str, ...]:
    """The execution providers to use: ``SEGKIT_DEVICE=cpu|cuda`` overrides detection."""
    wanted = os.getenv("SEGKIT_DEVICE", "auto").lower()
    if wanted == "cpu" or "CUDAExecutionProvider" not in ort.get_available_providers():
        return tuple(CPU)
    if wanted == "cuda" or (_cuda_driver_has_device() and _cuda_provider_loads()):
        return tuple(CUDA)
    return tuple(CPU)


def device() -> str:
    """What sessions run on, for people: ``"CUDA"`` or ``"CPU"``."""
    return "CUDA" if providers()[0] == "CUDAExecutionProvider" else "CPU"


def _session_options(threads: int | None = None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Idle intra-op threads otherwise spin after each run and steal the cores the
    # resize/compose stages need right then (measured: about 5% per 4.6 MP image).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    threads = threads or os.getenv("SEGKIT_THREADS") or os.getenv("OMP_NUM_THREADS")
    if threads:
        options.intra_op_num_threads = int(threads)
    return options


def build_session(path: Path, name: str, threads: int | None = None) -> ort.InferenceSession:
    """Create one session, falling back to CPU when CUDA was chosen but does not start."""
    chosen = list(providers())
    try:
        session = ort.InferenceSession(str(path), _session_options(threads), providers=chosen)
        if chosen != CPU and "CUDAExecutionProvider" not in session.get_providers():
            log.warning("model %s: CUDA did not start, running on CPU", name)
        return session
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
        reason = str(exc).replace(str(path.parent), "<model cache>")  # no server paths in messages
        raise ModelLoadError(f"model {name!r}: onnxruntime could not load {path.name}: {reason}"[:500]) from exc


def batch_threads() -> int | None:
    """Threads per network run when a CPU batch runs two images at once, or None
    where batches should run one image at a time (GPU, or threads set by the user).

    On 2 cores, two single-threaded runs side by side get through u2netp images
    12% faster than one two-threaded run after another (measured here, outputs
    bit for bit equal): a network this size does not keep two threads busy.
    """
    cores = os.cpu_count() or 1
    if cores < 2 or device() != "CPU" or os.getenv("SEGKIT_THREADS") or os.getenv("OMP_NUM_THREADS"):
        return None
    return cores // 2


class SessionPool:
    """Thread-safe LRU of live sessions, each built exactly once. A model may have
    two: the default one and a thread-limited one for batches; they live and are
    evicted together, and ``created`` counts them under ``name`` and
    ``name:N threads``."""

    def __init__(self, max_live: int | None = None):
        self.max_live = max(1, int(max_live or os.getenv("SEGKIT_MAX_SESSIONS", 3)))  # models, not sessions
        self._live: OrderedDict[tuple[str, int | None], ort.InferenceSession] = OrderedDict()  # (model, threads)
        self._lock = threading.Lock()
        self._building: dict[tuple[str, int | None], threading.Lock] = {}
        self.created: Counter[str] = Counter()

    def _keys_of(self, model: str) -> list[tuple[str, int | None]]:
        return [key for key in self._live if key[0] == model]  # lock held

    def _take_live(self, key: tuple[str, int | None]) -> ort.InferenceSession | None:
        """The live session under ``key``, marking its model recently used (lock held)."""
        if key not in self._live:
            return None
        for other in self._keys_of(key[0]):
            self._live.move_to_end(other)
        return self._live[key]

    def get(self, spec: ModelSpec, locate, threads: int | None = None) -> ort.InferenceSession:
        """The live session for ``spec`` (with ``threads`` intra-op threads, if given);
        ``locate(spec)`` gives its ONNX path on first use."""
        key = (spec.name, threads)
        with self._lock:
            session = self._take_live(key)
            if session is not None:
                return session
            gate = self._building.setdefault(key, threading.Lock())
        with gate:  # one builder per session; the others wait here and then reuse it
            with self._lock:
                session = self._take_live(key)
                if session is not None:
                    return session
            session = build_session(locate(spec), spec.name, threads)
            with self._lock:
                self.created[spec.name if threads is None else f"{spec.name}:{threads} threads"] += 1
                self._live[key] = session
                self._take_live(key)
                while len(self._models()) > self.max_live:
                    evicted = next(iter(self._live))[0]
                    for other in self._keys_of(evicted):
                        del self._live[other]
                    log.info("unloaded model %s (keeping %d live)", evicted, self.max_live)
            return session

    def _models(self) -> list[str]:
        return list(dict.fromkeys(model for model, _ in self._live))  # lock held

    def loaded(self) -> list[str]:
        """Names of the models with a live session, least recently used first."""
        with self._lock:
            return self._models()

    def clear(self) -> None:
        with self._lock:
            self._live.clear()
            self.created.clear()


POOL = SessionPool()
