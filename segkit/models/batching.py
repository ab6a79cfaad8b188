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
from .pinned import BLOCKS

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


def _host_array(shape: tuple, dtype, locked: bool) -> np.ndarray:
    """An array for a run's inputs or outputs: page-locked where ``locked`` asks and CUDA's runtime
    lends a block, since the bus copies those directly, where ordinary memory first goes through a
    page-locked buffer of the driver's; a gathered batch's runs were faster so (bench/RESULTS.md, GPU)."""
    block = BLOCKS.array(shape, dtype) if locked else None
    return np.empty(shape, dtype) if block is None else block


class _Request:
    def __init__(self, tensor: np.ndarray):
        self.tensor, self.result = tensor, Future()


class _Batch:
    """Calls with inputs of one shape that run together. Each input is copied into its slot as its
    call arrives, while the run before is still going, so that a run starts without first copying
    the whole batch while the GPU waits (bench/RESULTS.md, GPU). The slots are made by the first call
    where the batch will fill (``filling``: a runner announced more calls, and the model takes inputs of
    one shape), else when a second call comes: a lone input runs as it is."""

    def __init__(self, key, capacity: int, locked: bool, filling: bool = False):
        self.key, self.capacity, self.locked, self.filling = key, capacity, locked, filling
        self.requests: list[_Request] = []
        self.inputs: np.ndarray | None = None

    def take(self, request: _Request) -> None:
        if self.inputs is None and self.capacity > 1 and (self.filling or self.requests):
            first = self.requests[0].tensor if self.requests else request.tensor
            self.inputs = _host_array((self.capacity, *first.shape[1:]), first.dtype, self.locked)
            if self.requests:
                self._copy(0, first)
        if self.inputs is not None:
            self._copy(len(self.requests), request.tensor)
        self.requests.append(request)

    def _copy(self, slot: int, tensor: np.ndarray) -> None:
        """Through memoryviews, which keep the GIL, where numpy's copies free it and take it back: a
        take-back can wait a switch interval (5 ms) while the image threads run, here with the batches'
        lock held."""
        source = np.ascontiguousarray(tensor[0], self.inputs.dtype)
        memoryview(self.inputs[slot]).cast("B")[:] = memoryview(source).cast("B")

    def filled_up(self) -> np.ndarray:
        """The inputs, the slots no call took set to zeros."""
        if len(self.requests) < self.capacity:
            empty = memoryview(self.inputs[len(self.requests):]).cast("B")
            empty[:] = bytes(len(empty))
        return self.inputs


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
    (``expecting``) it waits for them, at most ``LINGER_SECONDS``, then runs the first batch;
    callers arriving meanwhile wait for its run, and those arriving during it gather the
    next. Without a runner nothing is to come, and each call runs at once.

    A lone input runs on ``session`` (the file's own), a gathered batch on the free-batch one,
    one run at a time: runs at once only add up their memory. With ``fill_up`` (on a GPU) each
    batch is filled up to ``max_batch``, so each session sees one batch size: a CUDA session
    whose runs change size redoes its convolutions' setup each time, several times a run's own
    cost (bench/RESULTS.md, GPU). On the CPU the zeros would cost their full share of a run.
    On a GPU the batches' inputs and first outputs also sit in page-locked memory."""

    def __init__(self, session, max_batch: int, batched=None, fill_up: bool = False):
        self.session, self.max_batch = session, max_batch
        self._batched = batched  # makes the free-batch session (or None) when a first batch comes
        self._free = None if batched else session  # runs the gathered batches
        self._per_run = 1 if batched else max_batch  # the file's own session takes one image a run
        self._fill_up = fill_up
        self._one_shape = all(isinstance(size, int) for size in session.get_inputs()[0].shape[1:])
        self._one_run = threading.Lock()
        self._upgrading = threading.Lock()
        self._queue: list[_Batch] = []  # batches to run, oldest first
        self._open: dict[object, _Batch] = {}  # per input shape, the batch still taking calls
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
            self._join_batch(request)
            self._to_come = max(0, self._to_come - 1)
            self._changed.notify_all()
            lead, self._gathering = not self._gathering, True
        while lead:
            with self._one_run:  # callers arriving meanwhile join the next run
                lead = self._gather_and_run(output_names, name)
        return request.result.result()

    def _join_batch(self, request: _Request) -> None:
        """Into the open batch of its input's shape, or a new one; an input of several images runs alone."""
        tensor = request.tensor
        key = (tensor.shape, tensor.dtype.str) if tensor.shape[0] == 1 else id(request)
        batch = self._open.get(key)
        if batch is not None and len(batch.requests) < batch.capacity:
            batch.take(request)
            return
        batch = _Batch(key, self._per_run if tensor.shape[0] == 1 else 1, locked=self._fill_up,
                       filling=self._runners > 0 and self._one_shape)
        batch.take(request)  # before the batch is listed: a copy that fails leaves nothing behind
        self._open[key] = batch
        self._queue.append(batch)

    def _gather_and_run(self, output_names, name: str) -> bool:
        """Run the oldest batch; True if batches were left waiting with no one gathering."""
        deadline = time.monotonic() + LINGER_SECONDS
        with self._changed:
            while (sum(len(batch.requests) for batch in self._queue) < self._per_run and self._to_come
                   and (left := deadline - time.monotonic()) > 0):
                self._changed.wait(left)
            if not self._queue:  # an interrupt failed the batches this caller had come to run
                return False
            batch = self._queue.pop(0)
            if self._open.get(batch.key) is batch:
                del self._open[batch.key]
            again = self._gathering = bool(self._queue)  # more came: this caller runs them next
        try:
            self._run_batch(output_names, name, batch)
        except BaseException as exc:  # an interrupt in a run: nobody is left waiting for ever
            with self._changed:
                left = [request for queued in self._queue for request in queued.requests]
                self._queue, self._open, self._gathering = [], {}, False
            for request in batch.requests + left:
                if not request.result.done():
                    request.result.set_exception(exc)
            raise
        return again

    def _run_batch(self, output_names, name: str, batch: _Batch) -> None:
        """One run for the batch; if it fails (a GPU short of memory for the whole batch, say),
        each input runs alone, so only an input that fails by itself fails."""
        requests = batch.requests
        try:
            if len(requests) == 1:
                outputs = self.session.run(output_names, {name: requests[0].tensor})
            else:
                inputs = batch.filled_up() if self._fill_up else batch.inputs[:len(requests)]
                outputs = self._run_free(output_names, name, inputs)
        except BaseException as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
            if not isinstance(exc, Exception):  # an interrupt: nobody waits for ever
                for request in requests:
                    request.result.set_exception(exc)
                raise
            if len(requests) == 1:
                requests[0].result.set_exception(exc)
                return
            log.warning("a gathered run of %d failed (%s); running them one by one", len(requests), str(exc)[:200])
            for request in requests:
                alone = _Batch(id(request), 1, locked=False)
                alone.take(request)
                self._run_batch(output_names, name, alone)
            return
        with self._changed:
            self.runs += 1
        if len(requests) == 1:
            requests[0].result.set_result(outputs)
            return
        for i, request in enumerate(requests):  # views: the batch's outputs live while an image uses its own
            request.result.set_result([out[i:i + 1] for out in outputs])

    def _run_free(self, output_names, name: str, inputs: np.ndarray) -> list:
        """The free-batch session's run; on a GPU a lone first output comes down into page-locked memory."""
        out = self._locked_output(output_names, len(inputs))
        if out is None:
            return self._free.run(output_names, {name: inputs})
        binding = self._free.io_binding()
        binding.bind_cpu_input(name, inputs)
        binding.bind_output(output_names[0], "cpu", 0, out.dtype, out.shape, out.ctypes.data)
        self._free.run_with_iobinding(binding)
        return [out]

    def _locked_output(self, output_names, count: int) -> np.ndarray | None:
        """Where the run asks for the first output alone, a float one of a fixed size, on a GPU: the
        array it comes down into."""
        if not (self._fill_up and output_names and len(output_names) == 1):
            return None
        first = self._free.get_outputs()[0]
        shape = (count, *first.shape[1:])
        if output_names[0] != first.name or first.type != "tensor(float)" or not all(isinstance(d, int) for d in shape):
            return None
        return _host_array(shape, np.float32, locked=True)
