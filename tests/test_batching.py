"""Gathered network runs (segkit.models.batching), the GPU's batch path, exercised on the CPU
with the real u2netp weights: ``SEGKIT_NETWORK_BATCH`` turns it on here, where it is off by
default. No GPU is needed to check that a gathered run gives every image what its own run
gives, that a graph which mixes the images of a batch is refused, and that ``process()``
keeps order and per-image errors while it gathers."""

from __future__ import annotations

import threading
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import segkit
from segkit.models import batching
from segkit.models.batching import BatchingSession, batched_session, batches_faithfully, with_batch_axis
from segkit.models.lookup import get_model
from segkit.models.sessions import POOL, session_for

from helpers import _const, _model, asymmetric_model, png_bytes

CPU = ["CPUExecutionProvider"]


@pytest.fixture
def batched(monkeypatch):
    """Batching on, on the CPU, for one test; the pool's sessions rebuilt before and after."""
    monkeypatch.setenv("SEGKIT_NETWORK_BATCH", "4")
    POOL.clear()
    yield
    POOL.clear()


def _inputs(count: int, size: int = 320) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.normal(size=(1, 3, size, size)).astype(np.float32) for _ in range(count)]


def test_u2netp_takes_a_free_batch_size_and_batched_runs_equal_single_ones(u2netp_path):
    single = ort.InferenceSession(str(u2netp_path), providers=CPU)
    free = ort.InferenceSession(with_batch_axis(u2netp_path), providers=CPU)
    assert free.get_inputs()[0].shape[0] == "batch" and single.get_inputs()[0].shape[0] == 1
    assert batches_faithfully(free)  # and against the file's own session, image by image, below
    inputs = _inputs(3)
    together = free.run(None, {free.get_inputs()[0].name: np.concatenate(inputs)})
    for i, tensor in enumerate(inputs):
        alone = single.run(None, {single.get_inputs()[0].name: tensor})
        assert len(alone) == len(together)
        for a, b in zip(alone, together):
            np.testing.assert_allclose(b[i:i + 1], a, atol=1e-5)


def test_a_graph_that_mixes_the_batch_is_refused(tmp_path):
    """[1,3,8,8] times the mean over every axis, the batch's included: a batch of two would give each
    image a mean of both, so ``batching`` must keep the plain session."""
    nodes = [helper.make_node("ReduceMean", ["image", "axes"], ["mean"], keepdims=1),
             helper.make_node("Tanh", ["image"], ["squashed"]),
             helper.make_node("Mul", ["squashed", "mean"], ["mask"])]
    model = _model(nodes, "mixes", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
                   [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 3, 8, 8])],
                   [helper.make_tensor("axes", TensorProto.INT64, [4], [0, 1, 2, 3])])
    path = tmp_path / "mixes.onnx"
    onnx.save(model, str(path))
    assert with_batch_axis(path) is not None  # the rewrite itself goes through...
    assert batched_session(path, lambda contents: ort.InferenceSession(contents, providers=CPU)) is None  # ...but the check catches it
    session = BatchingSession(ort.InferenceSession(str(path), providers=CPU), 4, lambda: None)
    assert not session.batches() and session.get_inputs()[0].shape == [1, 3, 8, 8]  # one image a run, on the file's session


def test_the_free_batch_session_is_made_when_a_first_batch_comes(batched, photos):
    """A lone image runs on the file's own session; the rewrite and its check (a second or more on a GPU)
    wait for a first batch, which then runs gathered on the free-batch session."""
    session = session_for(get_model("u2netp"))
    segkit.segment(photos["coffee"], model="u2netp")
    assert session.get_inputs()[0].shape[0] == 1 and session.runs == 1
    segkit.process([photos["coffee"], photos["chelsea"], photos["astronaut"]], model="u2netp")
    assert session._free.get_inputs()[0].shape[0] == "batch" and session.runs < 1 + 3


class _RecordsRuns:
    """A session with a free batch size that notes each run's batch size and how many ran at once."""

    running = 0  # across every instance: both sessions of one BatchingSession
    most_at_once = 0

    def __init__(self):
        self.sizes: list[int] = []

    def get_inputs(self):
        return [type("Input", (), {"name": "image", "shape": ["batch", 1, 4, 4]})()]

    def run(self, names, feed):
        _RecordsRuns.running += 1
        _RecordsRuns.most_at_once = max(_RecordsRuns.most_at_once, _RecordsRuns.running)
        self.sizes.append(len(feed["image"]))
        time.sleep(0.01)
        _RecordsRuns.running -= 1
        return [feed["image"] * 2]


@pytest.mark.parametrize("fill_up", [True, False])
def test_each_session_runs_one_batch_size_and_one_run_at_a_time(fill_up, monkeypatch):
    """A GPU session redoes its setup whenever a run's batch size changes (bench/RESULTS.md, GPU):
    lone inputs run on the file's own session, gathered ones on the free-batch session, filled up
    to the full batch on a GPU (``fill_up``); one run at a time (runs at once add up their memory);
    each caller still gets its own output."""
    monkeypatch.setattr(batching, "LINGER_SECONDS", 10)  # a loaded machine starts a thread late; all come
    single, free = _RecordsRuns(), _RecordsRuns()
    _RecordsRuns.most_at_once = 0
    session = BatchingSession(single, max_batch=4, batched=lambda: free, fill_up=fill_up)
    assert session.batches()
    inputs = [np.full((1, 1, 4, 4), i, np.float32) for i in range(11)]
    outputs: dict[int, np.ndarray] = {}
    with session.expecting(len(inputs)):
        threads = [threading.Thread(target=lambda i=i: outputs.update({i: session.run(None, {"image": inputs[i]})[0]}))
                   for i in range(len(inputs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    session.run(None, {"image": inputs[0]})  # nobody expected: alone, on the file's own session
    assert len(free.sizes) == 3  # 4, 4 and 3 inputs: no run failed and fell back to one input a run
    if fill_up:
        assert set(free.sizes) == {4}
    else:  # only the inputs themselves, no zeros
        assert sum(free.sizes) + sum(single.sizes) == len(inputs) + 1
    assert free.sizes and set(single.sizes) == {1} and _RecordsRuns.most_at_once == 1
    assert all(np.array_equal(outputs[i], inputs[i] * 2) for i in range(len(inputs)))


def test_gathered_images_each_keep_to_their_thread(batched, photos, monkeypatch):
    """The gathered runner's threads make their own image's resizes and cutout whole, handing
    no band to the band pool (bench/RESULTS.md, GPU: that took GIL handoffs, not cores)."""
    from segkit.pixels import resize

    handed = []
    monkeypatch.setattr(resize._BANDS, "map", lambda *args: handed.append(args) or [])
    segkit.process([photos["coffee"], photos["chelsea"]] * 2, model="u2netp")
    assert handed == []
    segkit.segment(photos["coffee"], model="u2netp")  # one image alone: its passes still split
    assert handed


def test_gathered_progress_only_moves_forward(batched, photos):
    seen = []
    images = [photos["coffee"], photos["chelsea"]] * 3
    segkit.process(images, model="u2netp", progress=lambda fraction, text: seen.append(fraction))
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 3 * len(images)


def test_a_model_with_two_inputs_is_left_alone(tmp_path):
    nodes = [helper.make_node("Add", ["a", "b"], ["out"])]
    value = [1, 3, 4, 4]
    model = _model(nodes, "two", [helper.make_tensor_value_info(n, TensorProto.FLOAT, value) for n in "ab"],
                   [helper.make_tensor_value_info("out", TensorProto.FLOAT, value)], [_const("unused", [0])])
    path = tmp_path / "two.onnx"
    onnx.save(model, str(path))
    assert with_batch_axis(path) is None


def test_calls_from_threads_gather_into_one_run(u2netp_path):
    free = ort.InferenceSession(with_batch_axis(u2netp_path), providers=CPU)
    single = ort.InferenceSession(str(u2netp_path), providers=CPU)
    session = BatchingSession(free, max_batch=4)
    name = session.get_inputs()[0].name
    inputs = _inputs(6)
    outputs: dict[int, list] = {}

    def call(i):
        outputs[i] = session.run(None, {name: inputs[i]})

    with session.expecting(len(inputs)):
        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(inputs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert session.runs < len(inputs)  # gathered: at most 4 a run, so 2 or 3 runs for 6 calls
    for i, tensor in enumerate(inputs):
        alone = single.run(None, {name: tensor})[0]
        assert outputs[i][0].shape == alone.shape
        np.testing.assert_allclose(outputs[i][0], alone, atol=1e-5)
    before = session.runs
    session.run(None, {name: inputs[0]})  # no runner expecting more: runs at once, alone
    assert session.runs == before + 1


def test_process_gathers_keeps_order_and_loses_no_image_to_a_bad_one(batched, photos):
    images = [photos["astronaut"], photos["chelsea"], b"not an image", photos["coffee"],
              png_bytes(photos["chelsea"][::2, ::2]), photos["astronaut"][100:400, 50:300]]
    session = session_for(get_model("u2netp"))
    assert isinstance(session, BatchingSession) and session.max_batch == 4
    gathered = segkit.process(images, model="u2netp")
    assert session.runs < len(images) - 1  # five good images in fewer runs
    assert [r.ok for r in gathered] == [True, True, False, True, True, True]
    POOL.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGKIT_NETWORK_BATCH", "1")
        plain_session = session_for(get_model("u2netp"))
        assert not isinstance(plain_session, BatchingSession)
        plain = segkit.process(images, model="u2netp")
    for got, want in zip(gathered, plain):
        assert got.label == want.label and got.ok == want.ok
        if want.ok:
            difference = np.abs(np.asarray(got.cutout, np.int16) - np.asarray(want.cutout, np.int16))
            assert difference.max() <= 1  # the same model and photo: within 1/255 (equal here, in fact)


def test_batching_stays_off_on_the_cpu_by_default(monkeypatch):
    monkeypatch.delenv("SEGKIT_NETWORK_BATCH", raising=False)
    POOL.clear()
    try:
        assert segkit.device() != "CPU" or not isinstance(session_for(get_model("u2netp")), BatchingSession)
    finally:
        POOL.clear()


def test_a_failed_gathered_run_falls_back_to_one_run_per_image(u2netp_path, caplog, monkeypatch):
    """The original file (batch pinned at 1) behind the gatherer: the run of three fails, as a batch
    too large for a GPU's memory would, and each image then runs alone and still gets its mask."""
    monkeypatch.setattr(batching, "LINGER_SECONDS", 10)  # a loaded machine starts a thread late; all three come
    single = ort.InferenceSession(str(u2netp_path), providers=CPU)
    session = BatchingSession(single, max_batch=4)
    name = session.get_inputs()[0].name
    inputs = _inputs(3)
    outputs: dict[int, list] = {}
    with session.expecting(len(inputs)):
        threads = [threading.Thread(target=lambda i=i: outputs.update({i: session.run(None, {name: inputs[i]})}))
                   for i in range(len(inputs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(outputs) == [0, 1, 2] and session.runs == 3
    assert "a gathered run of 3 failed" in caplog.text  # they were gathered, and the run of three failed
    for i, tensor in enumerate(inputs):
        np.testing.assert_array_equal(outputs[i][0], single.run(None, {name: tensor})[0])


@pytest.mark.parametrize("value", ["0", "-2", "sixteen", "1.5"])
def test_a_bad_network_batch_setting_is_named(monkeypatch, value):
    from segkit.models.batching import network_batch

    monkeypatch.setenv("SEGKIT_NETWORK_BATCH", value)
    with pytest.raises(ValueError, match="SEGKIT_NETWORK_BATCH must be a whole number"):
        network_batch(on_gpu=True)


def test_many_threads_each_get_their_own_output_and_nobody_hangs(tmp_path):
    """Sixty calls from sixteen threads, at most five per run, on a small elementwise graph (a stand-in
    for speed: the point is the gathering, not the model): every caller gets its own input's output."""
    path = tmp_path / "asymmetric.onnx"
    onnx.save(asymmetric_model(16, channels=2), str(path))
    single = ort.InferenceSession(str(path), providers=CPU)
    session = BatchingSession(ort.InferenceSession(with_batch_axis(path), providers=CPU), max_batch=5)
    inputs = _inputs(60, size=16)
    outputs: dict[int, np.ndarray] = {}
    queue = list(range(len(inputs)))
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                i = queue.pop()
            outputs[i] = session.run(None, {"input.1": inputs[i]})[0]

    with session.expecting(len(inputs)):
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(outputs) == list(range(len(inputs))) and len(inputs) / 5 <= session.runs < len(inputs)
    for i, tensor in enumerate(inputs):
        np.testing.assert_allclose(outputs[i], single.run(None, {"input.1": tensor})[0], atol=1e-6)


def test_a_filled_up_run_brings_its_first_output_down_into_memory_it_lends(tmp_path, monkeypatch):
    """On a GPU (``fill_up``) a gathered run's first output comes down through I/O binding into a lent
    block, and each caller gets a view of its own row: the values of a run of its own (CPU provider here,
    where the block is ordinary memory), and no run fell back to one input at a time."""
    monkeypatch.setattr(batching, "LINGER_SECONDS", 10)  # a loaded machine starts a thread late; all come
    path = tmp_path / "asymmetric.onnx"
    onnx.save(asymmetric_model(16, channels=2), str(path))
    single = ort.InferenceSession(str(path), providers=CPU)
    session = BatchingSession(ort.InferenceSession(with_batch_axis(path), providers=CPU), max_batch=4, fill_up=True)
    first = [session.get_outputs()[0].name]
    inputs = _inputs(7, size=16)
    outputs: dict[int, list] = {}
    with session.expecting(len(inputs)):
        threads = [threading.Thread(target=lambda i=i: outputs.update({i: session.run(first, {"input.1": inputs[i]})}))
                   for i in range(len(inputs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert sorted(outputs) == list(range(len(inputs))) and session.runs == 2  # 4 and 3 (filled up to 4)
    for i, tensor in enumerate(inputs):
        (got,) = outputs[i]
        assert got.shape == (1, 2, 16, 16) and isinstance(got.base, np.ndarray)  # a row of the run's output
        np.testing.assert_allclose(got, single.run(first, {"input.1": tensor})[0], atol=1e-6)


class _Interrupted(BaseException):
    """Stands for a KeyboardInterrupt or SystemExit inside a run (not an onnxruntime error)."""


class _StopsOnSmallImages:
    """A session with a free input size that is interrupted while running 8x8 inputs."""

    def get_inputs(self):
        return [type("Input", (), {"name": "image", "shape": ["batch", 1, "h", "w"]})()]

    def run(self, names, feed):
        tensor = feed["image"]
        if tensor.shape[-1] == 8:
            raise _Interrupted()
        return [tensor * 2]


def test_an_interrupted_run_leaves_no_caller_waiting():
    """Two shapes gathered together run as two groups; an interrupt in the first must fail the second
    group's callers and the late ones too, not leave them blocked, and the next call must run."""
    session = BatchingSession(_StopsOnSmallImages(), max_batch=8)
    inputs = [np.ones((1, 1, 8, 8), np.float32), np.ones((1, 1, 16, 16), np.float32)] * 3
    outcomes: dict[int, str] = {}

    def call(i):
        try:
            session.run(None, {"image": inputs[i]})
            outcomes[i] = "result"
        except _Interrupted:
            outcomes[i] = "interrupted"

    with session.expecting(len(inputs)):
        threads = [threading.Thread(target=call, args=(i,), daemon=True) for i in range(len(inputs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads) and len(outcomes) == len(inputs)
    assert all(outcomes[i] == "interrupted" for i in range(0, len(inputs), 2))  # every 8x8 caller
    np.testing.assert_array_equal(session.run(None, {"image": inputs[1]})[0], inputs[1] * 2)  # not stuck


def test_a_gathered_batch_is_its_inputs_in_order_then_zeros():
    """Each call's input is copied into its slot as it comes, through memoryviews (bench/RESULTS.md,
    GPU): the batch is the array numpy's concatenate gives, strided inputs too, and the slots no call
    took are zeros even where the batch's memory held an earlier batch (blocks are lent again)."""
    inputs = _inputs(3)
    inputs[1] = np.asfortranarray(inputs[1])  # not C-contiguous
    batch = batching._Batch("key", 5, locked=False)
    batch.take(batching._Request(inputs[0]))
    assert batch.inputs is None  # a lone input runs on its own: nothing copied
    announced = batching._Batch("key", 5, locked=False, filling=True)
    announced.take(batching._Request(inputs[1]))  # more calls are announced: each copies its own
    assert np.array_equal(announced.inputs[0], inputs[1][0])
    batch.take(batching._Request(inputs[1]))
    batch.inputs[2:] = 7  # what a block lent again may hold
    batch.take(batching._Request(inputs[2]))
    filled = batch.filled_up()
    assert filled.shape == (5, *inputs[0].shape[1:]) and filled.dtype == inputs[0].dtype
    assert np.array_equal(filled[:3], np.concatenate(inputs)) and not filled[3:].any()
    assert all(request.tensor is tensor for request, tensor in zip(batch.requests, inputs))
    for tensor in inputs[:2]:  # a full batch has no slot left to fill
        batch.take(batching._Request(tensor))
    assert np.array_equal(batch.filled_up(), np.concatenate(inputs + inputs[:2]))
    # a runner's batches fill where the model takes one input shape; images of many sizes may each run alone
    assert BatchingSession(_RecordsRuns(), 4)._one_shape
    assert not BatchingSession(_StopsOnSmallImages(), 4)._one_shape
