"""Several images through the network in one run, for GPUs.

A GPU runs a few dozen images at once several times faster than one after
another (bench/RESULTS.md), but rembg's files fix the batch size at 1.
``with_batch_axis`` frees it, in memory, and keeps the rewrite only where a
batched run gives each image what a run of its own does; that is done when a
first batch comes, not for a lone image. ``BatchingSession`` then gathers the
``run`` calls that threads make at about the same time into one run, so
``pipeline.segment_one`` stays one image top to bottom and the batch runner
only calls it from several threads. On the CPU one image at a
time is as fast, so batching is off there unless ``SEGKIT_NETWORK_BATCH`` asks.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .. import settings

log = logging.getLogger("segkit")
LINGER_SECONDS = 0.02  # longest a gathered run waits for the images its runner still expects
_AXIS = "batch"


def network_batch(on_gpu: bool) -> int:
    """Images per network run: ``SEGKIT_NETWORK_BATCH``, else 16 on a GPU and 1 (off) on the CPU."""
    return settings.read("SEGKIT_NETWORK_BATCH") or (16 if on_gpu else 1)


def with_batch_axis(path: Path) -> bytes | None:
    """The model at ``path`` with a free batch size, serialised; None where it has no
    single batched input, or a graph that pins the batch."""
    import onnx

    model = onnx.load(str(path))
    weights = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in weights]
    if len(inputs) != 1:
        return None
    for value in (inputs[0], *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if not dims or (dims[0].HasField("dim_value") and dims[0].dim_value != 1):
            return None
        dims[0].dim_param = _AXIS
    del model.graph.value_info[:]  # inner shapes recorded with batch 1; onnxruntime infers its own
    return model.SerializeToString()


def batched_session(path: Path, build):
    """A session of the model at ``path`` with a free batch size (``build(contents)`` makes it
    from the rewritten model), or None where the graph does not batch faithfully."""
    try:
        contents = with_batch_axis(path)
        if contents is not None and batches_faithfully(free := build(contents)):
            return free
        reason = "its graph does not take a free batch size"
    except Exception as exc:  # noqa: BLE001 - e.g. a file past protobuf's 2 GB, or a batch the graph refuses
        reason = str(exc)[:200]
    log.info("%s: one image per network run (%s)", path.name, reason)
    return None


def batches_faithfully(session, tolerance: float = 1e-4) -> bool:
    """Whether a run of two different inputs on ``session`` gives each what a run of its own
    gives: a graph may fold the batch into other axes, or refuse a batch outright (then this raises)."""
    feed = session.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 64 for d in feed.shape[1:]]  # free sizes: a small image
    pair = np.random.default_rng(0).normal(size=(2, *shape)).astype(np.float32)
    together = session.run(None, {feed.name: pair})[0]  # raises where the graph pins the batch
    alone = [session.run(None, {feed.name: pair[i:i + 1]})[0] for i in range(2)]
    scale = max(float(np.abs(np.concatenate(alone)).max()), 1.0)
    return together.shape[0] == 2 and all(
        together[i:i + 1].shape == alone[i].shape and float(np.abs(together[i:i + 1] - alone[i]).max()) <= tolerance * scale
        for i in range(2))


def _padded(tensors: list[np.ndarray], size: int) -> np.ndarray:
    """The inputs as one batch, filled up with zeros to ``size`` inputs where they are fewer.

    Copied through memoryviews, which keep the GIL: numpy frees and takes it back for each input,
    and each take-back can wait a switch interval (5 ms) while the image threads run, with the
    GPU idle until this batch is made (bench/RESULTS.md, GPU)."""
    count = sum(len(tensor) for tensor in tensors)
    batch = np.empty((max(size, count), *tensors[0].shape[1:]), tensors[0].dtype)
    into, start = memoryview(batch).cast("B"), 0
    for tensor in tensors:
        part = memoryview(np.ascontiguousarray(tensor, batch.dtype)).cast("B")
        into[start:start + part.nbytes] = part
        start += part.nbytes
    into[start:] = bytes(len(into) - start)
    return batch


class _Request:
    def __init__(self, tensor: np.ndarray):
        self.tensor, self.result = tensor, Future()


class SessionStandIn:
    """Stands in for a session: what it does not define itself (get_inputs, get_providers...)
    comes from the session it wraps, ``self.session``."""

    def __getattr__(self, name):
        if name == "session":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.session, name)


class BatchingSession(SessionStandIn):
    """Stands in for a session whose batch size is free: ``run`` may be called from many
    threads, and calls waiting together run as one (at most ``max_batch`` inputs of a shape).

    The first caller to find no one gathering gathers: while more calls are still to come
    (``expecting``) it waits for them, at most ``LINGER_SECONDS``, then runs what has come;
    callers arriving meanwhile wait for its run, and those arriving during it gather the
    next. Without a runner nothing is to come, and each call runs at once.

    A lone input runs on ``session`` (the file's own), a gathered group on the free-batch one,
    one run at a time: runs at once only add up their memory. With ``fill_up`` (on a GPU) each
    group is filled up to ``max_batch``, so each session sees one batch size: a CUDA session
    whose runs change size redoes its convolutions' setup each time, several times a run's own
    cost (bench/RESULTS.md, GPU). On the CPU the zeros would cost their full share of a run."""

    def __init__(self, session, max_batch: int, batched=None, fill_up: bool = False):
        self.session, self.max_batch = session, max_batch
        self._batched = batched  # makes the free-batch session (or None) when a first batch comes
        self._free = None if batched else session  # runs the gathered groups
        self._per_run = 1 if batched else max_batch  # the file's own session takes one image a run
        self._fill_up = fill_up
        self._one_run = threading.Lock()
        self._upgrading = threading.Lock()
        self._waiting: list[_Request] = []
        self._changed = threading.Condition()
        self._gathering = False
        self._to_come = 0  # calls a runner announced that have not arrived yet
        self._runners = 0  # ``expecting`` blocks open now
        self.runs = 0  # network runs so far (tests and benches read it)

    def batches(self) -> bool:
        """Whether calls can run together. The first time, the free-batch session replaces the
        file's own: a lone call never needs it, and on a GPU it costs a second or more to make."""
        with self._upgrading:
            if self._batched is not None:
                build, self._batched = self._batched, None
                free = build()
                if free is not None:
                    self._free, self._per_run = free, self.max_batch
        return self._per_run > 1

    @contextmanager
    def expecting(self, calls: int):
        """Announce ``calls`` coming calls for the duration of the block."""
        with self._changed:
            self._to_come += calls
            self._runners += 1
        try:
            yield self
        finally:
            with self._changed:
                self._to_come = 0
                self._runners -= 1
                self._changed.notify_all()

    @property
    def gathering(self) -> bool:
        """Whether a runner is sending calls to be gathered into batches now."""
        return self._runners > 0

    def run(self, output_names, feed: dict) -> list:
        (name, tensor), = feed.items()
        request = _Request(tensor)
        with self._changed:
            self._waiting.append(request)
            self._to_come = max(0, self._to_come - 1)
            self._changed.notify_all()
            lead, self._gathering = not self._gathering, True
        while lead:
            with self._one_run:  # callers arriving meanwhile join the next run
                lead = self._gather_and_run(output_names, name)
        return request.result.result()

    def _gather_and_run(self, output_names, name: str) -> bool:
        """Run one gathered batch; True if callers were left waiting with no one gathering."""
        deadline = time.monotonic() + LINGER_SECONDS
        with self._changed:
            while (len(self._waiting) < self._per_run and self._to_come
                   and (left := deadline - time.monotonic()) > 0):
                self._changed.wait(left)
            taken, self._waiting = self._waiting[:self._per_run], self._waiting[self._per_run:]
            again = self._gathering = bool(self._waiting)  # over a run's worth came: this caller runs the rest next
        by_shape: dict[object, list[_Request]] = {}
        for request in taken:  # inputs of one image each and the same shape run together
            key = request.tensor.shape if request.tensor.shape[0] == 1 else id(request)
            by_shape.setdefault(key, []).append(request)
        try:
            for group in by_shape.values():
                self._run_group(output_names, name, group)
        except BaseException as exc:  # an interrupt in one group's run: nobody is left waiting for ever
            with self._changed:
                left, self._waiting, self._gathering = self._waiting, [], False
            for request in taken + left:
                if not request.result.done():
                    request.result.set_exception(exc)
            raise
        return again

    def _run_group(self, output_names, name: str, group: list[_Request]) -> None:
        """One run for the group; if it fails (a GPU short of memory for the whole batch, say),
        each input runs alone, so only an input that fails by itself fails."""
        try:
            if len(group) == 1:
                outputs = self.session.run(output_names, {name: group[0].tensor})
            else:
                tensor = _padded([request.tensor for request in group], self.max_batch if self._fill_up else 0)
                outputs = self._free.run(output_names, {name: tensor})
        except BaseException as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
            if not isinstance(exc, Exception):  # an interrupt: nobody waits for ever
                for request in group:
                    request.result.set_exception(exc)
                raise
            if len(group) > 1:
                log.warning("a gathered run of %d failed (%s); running them one by one", len(group), str(exc)[:200])
                for request in group:
                    self._run_group(output_names, name, [request])
            else:
                group[0].result.set_exception(exc)
            return
        with self._changed:
            self.runs += 1
        if len(group) == 1:
            group[0].result.set_result(outputs)
            return
        for i, request in enumerate(group):
            request.result.set_result([np.ascontiguousarray(out[i:i + 1]) for out in outputs])
