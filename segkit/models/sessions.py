"""onnxruntime sessions: the only process-wide state segkit keeps.

Sessions are built lazily, exactly once per model even when threads race for
the first one, shared by every later call, and kept in a small LRU so cycling
through all models cannot exhaust memory: at most ``SEGKIT_MAX_SESSIONS`` models,
and, with ``SEGKIT_SESSION_MEMORY_MB`` set, no more than that many MB of weight
files together (a 1 GB BiRefNet counts for what it weighs, not as one of three). CUDA is used only after proving it
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
from typing import Callable

import onnxruntime as ort

from .. import settings
from ..errors import InvalidInputError, ModelLoadError
from .batching import BatchingSession, SessionStandIn, batched_session, network_batch
from .registry import ModelSpec
from .weights import Progress, model_path, part_path

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


_cuda_failed = False  # a session asked for CUDA and got none: every later one, and device(), says CPU


@functools.lru_cache(maxsize=1)
def providers() -> tuple[str, ...]:
    """The execution providers to use: ``SEGKIT_DEVICE=cpu|cuda`` overrides detection."""
    wanted = settings.read("SEGKIT_DEVICE")
    if wanted == "cpu" or _cuda_failed or "CUDAExecutionProvider" not in ort.get_available_providers():
        return tuple(CPU)
    if wanted == "cuda" or (_cuda_driver_has_device() and _cuda_provider_loads()):
        return tuple(CUDA)
    return tuple(CPU)


def device() -> str:
    """What sessions run on, for people: ``"CUDA"`` or ``"CPU"``."""
    return "CUDA" if providers()[0] == "CUDAExecutionProvider" else "CPU"


@functools.lru_cache(maxsize=1)
def _shared_cpu_arena() -> None:
    """One CPU memory arena for every session, grown by what is asked for (not to the next power of two)."""
    memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, 1, -1, -1))  # no cap, kSameAsRequested


def _session_options(threads: int | None = None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Each session's own arena, holding a memory pattern per input shape, keeps its largest run's
    # activations for good, so resident memory grows with every model loaded. One shared arena
    # without patterns holds what the largest run needs, at the same speed and output (bench/RESULTS.md).
    _shared_cpu_arena()
    options.add_session_config_entry("session.use_env_allocators", "1")
    options.enable_mem_pattern = False
    # Threads spin while a run lasts (waking them between its many small operators costs more) and
    # stop as it ends, so they don't take the cores the resize/cutout stages need next (bench/RESULTS.md).
    options.add_session_config_entry("session.force_spinning_stop", "1")
    if threads := _threads(threads):
        options.intra_op_num_threads = threads
    return options


def _threads(asked: int | None) -> int | None:
    """A session's CPU threads: the environment's setting, else ``asked``, else None (every core)."""
    return settings.read("SEGKIT_THREADS") or int(os.getenv("OMP_NUM_THREADS") or asked or 0) or None


_CORES_IN_USE = threading.Lock()


class OneRunAtATime(SessionStandIn):
    """A CPU session whose runs each take every core. Runs at once would only share the cores,
    and each would hold its activations in the shared arena, so they queue, across models too:
    two requests overlapping in the app finish sooner and hold one run's memory (bench/RESULTS.md;
    a queue per model let u2netp and u2net overlap, and the soak's memory rose past the old level).
    The price: a slow model's run (BiRefNet on a CPU, tens of seconds) holds up the others."""

    def __init__(self, session: ort.InferenceSession):
        self.session = session

    def run(self, *args, **kwargs):
        with _CORES_IN_USE:
            return self.session.run(*args, **kwargs)


def _with_options(provider: str):
    """CUDA without TF32 unless ``SEGKIT_TF32=1``: TF32 moves masks visibly away from the CPU's.
    cuDNN picks each convolution's algorithm by its heuristics (``SEGKIT_CUDNN_SEARCH``) instead of
    onnxruntime's default of timing every candidate: that search runs again for every new input
    shape, and gathered batches (``batching``) and free-size models bring many shapes."""
    if provider == "CUDAExecutionProvider":
        return provider, {"use_tf32": "1" if settings.read("SEGKIT_TF32") else "0",
                          "cudnn_conv_algo_search": settings.read("SEGKIT_CUDNN_SEARCH")}
    return provider


def provider_settings() -> list:
    """The providers sessions are built with, each with segkit's options (for another library's
    session on the same device and settings, as the parity tests build rembg's)."""
    return [_with_options(p) for p in providers()]


def build_session(path: Path, spec: ModelSpec, threads: int | None = None,
                  contents: bytes | None = None) -> ort.InferenceSession:
    """Create one session, falling back to CPU when CUDA was chosen but does not start;
    ``threads`` caps its CPU threads (the environment's setting wins); ``contents``, where
    given, is the model at ``path`` rewritten in memory. A CPU session on every core comes
    as ``OneRunAtATime``.
    A person's own file that does not load, or takes the wrong input, is their input error."""
    chosen, options, with_settings = list(providers()), _session_options(threads), provider_settings()
    try:  # (the settings read above: a wrong one is named as itself, not as a model that would not load)
        session = ort.InferenceSession(contents or str(path), options, providers=with_settings)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
        reason = str(exc).replace(str(path.parent), "<model cache>")  # no server paths in messages
        if spec.user_file:
            from .custom import expected

            raise InvalidInputError(f"model {spec.name}: {path.name} is not an ONNX model onnxruntime can load "
                                    f"({reason[:200]}); expected {expected(spec.name.partition(':')[0])}",
                                    subject="model") from None
        raise ModelLoadError(f"model {spec.name!r}: onnxruntime could not load {path.name}: {reason}"[:500]) from exc
    if chosen != CPU and "CUDAExecutionProvider" not in session.get_providers():
        log.warning("model %s: CUDA did not start, running on CPU from now on", spec.name)
        global _cuda_failed
        _cuda_failed = True
        providers.cache_clear()
    if spec.user_file:
        from .custom import check_input

        check_input(spec, session.get_inputs()[0].shape)
    cores = os.cpu_count() or 1
    if session.get_providers()[0] == "CPUExecutionProvider" and (_threads(threads) or cores) >= cores:
        return OneRunAtATime(session)
    return session


def _per_run(spec: ModelSpec, on_gpu: bool) -> int:
    """Images per network run for ``spec`` (``batching.network_batch``); SAM's two parts take one."""
    return 1 if spec.output == "prompted" else network_batch(on_gpu)


def open_model(spec: ModelSpec, path: Path):
    """What the pipeline runs for ``spec`` and the MB its files weigh: one session, or SAM's pair."""
    if spec.output == "prompted":
        from .sam import SamModel

        decoder = part_path(spec, 0)
        return SamModel(build_session(path, spec), build_session(decoder, spec)), _mb(path) + _mb(decoder)
    session = build_session(path, spec)
    on_gpu = "CUDAExecutionProvider" in session.get_providers()
    if (per_run := _per_run(spec, on_gpu)) > 1:  # a second copy of the weights: the free-batch session
        session = BatchingSession(session, per_run, lambda: batched_session(
            path, lambda contents: build_session(path, spec, contents=contents)), fill_up=on_gpu)
        return session, 2 * _mb(path)
    return session, _mb(path)


def _mb(path: Path) -> float:
    return path.stat().st_size / 1e6


class SessionPool:
    """Thread-safe LRU of live sessions, one per model, each built exactly once even
    when threads race for the first one; ``created`` counts the builds per model."""

    def __init__(self, max_live: int | None = None, memory_mb: float | None = None):
        self._max_live, self._memory_mb = max_live, memory_mb  # else the settings, read when used
        self._live: OrderedDict[str, ort.InferenceSession] = OrderedDict()
        self._weight_mb: dict[str, float] = {}
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self.created: Counter[str] = Counter()

    @property
    def max_live(self) -> int:
        return max(1, int(self._max_live or settings.read("SEGKIT_MAX_SESSIONS")))

    @property
    def memory_mb(self) -> float:
        return float(self._memory_mb or settings.read("SEGKIT_SESSION_MEMORY_MB") or 0) or float("inf")

    def get(self, spec: ModelSpec, locate: Callable[[ModelSpec], Path]) -> ort.InferenceSession:
        """The live session for ``spec``; ``locate(spec)`` gives its ONNX path on first use."""
        with self._lock:
            if spec.name in self._live:
                self._live.move_to_end(spec.name)
                return self._live[spec.name]
            gate = self._building.setdefault(spec.name, threading.Lock())
        with gate:  # one builder per model; the others wait here and then reuse its session
            with self._lock:
                if spec.name in self._live:
                    return self._live[spec.name]
            with self._lock:  # make room first: the new model's weights are about to be in memory too
                self._evict(self._next_mb(spec), self.max_live - 1)
            session, weight_mb = open_model(spec, locate(spec))
            with self._lock:
                self.created[spec.name] += 1
                self._live[spec.name], self._weight_mb[spec.name] = session, weight_mb
                self._evict(0.0, self.max_live)
            return session

    def _next_mb(self, spec: ModelSpec) -> float:
        copies = 2 if _per_run(spec, device() == "CUDA") > 1 else 1  # as open_model will build it
        return copies * (spec.download_mb if not spec.user_file else spec.weights.size_mb)

    def _evict(self, incoming_mb: float, keep: int) -> None:
        """Drop least recently used sessions until at most ``keep`` remain and, with the incoming
        model's MB, the weights fit the memory budget (the newest session always stays)."""
        while self._live and (len(self._live) > keep or sum(self._weight_mb.values()) + incoming_mb > self.memory_mb):
            if not incoming_mb and len(self._live) == 1:
                break
            evicted, _ = self._live.popitem(last=False)
            self._weight_mb.pop(evicted, None)
            log.info("unloaded model %s (keeping at most %d live, %.0f MB)", evicted, self.max_live, self.memory_mb)

    def loaded(self) -> list[str]:
        """Names of the models with a live session, least recently used first."""
        with self._lock:
            return list(self._live)

    def clear(self) -> None:
        with self._lock:
            self._live.clear()
            self._weight_mb.clear()
            self.created.clear()


POOL = SessionPool()


def session_for(spec: ModelSpec, progress: Progress = None) -> ort.InferenceSession:
    """The model's live session, fetching (and converting) its weights on first use."""
    return POOL.get(spec, lambda s: model_path(s, progress))


def session_side_by_side(spec: ModelSpec, runs: int, progress: Progress = None):
    """A session for ``runs`` inputs run at once from as many threads. On the CPU it is built for
    the caller (not pooled: it holds its own copy of the weights while the caller keeps it), with
    the cores split between the runs: one-thread runs side by side leave no core waiting at
    another's barrier, so the work around the network fills the gaps (bench/RESULTS.md).
    Elsewhere, and for two-part models, it is the pooled session."""
    if providers()[0] != "CPUExecutionProvider" or spec.output == "prompted":
        return session_for(spec, progress)
    return build_session(model_path(spec, progress), spec, threads=max(1, (os.cpu_count() or 2) // runs))
