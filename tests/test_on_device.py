"""Issue 16: a lone image's resizes and cutout beside the network on its GPU (``models.on_device``).

The graphs run on any onnxruntime provider, so here they run on the CPU against the host path,
with the real u2netp weights: the same integers are the spec, not a tolerance. Where a GPU is,
the last two tests run the pipeline on it."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from PIL import Image

import segkit
from segkit.models import on_device, pinned
from segkit.models.batching import BatchingSession
from segkit.models.lookup import get_model
from segkit.models.predict import predict
from segkit.models.sessions import build_session, session_for
from segkit.options import Options
from segkit.pixels.resize import cutout

from helpers import asymmetric_model


def _both_ways(net, spec, image):
    mask = predict(net, spec, image)[0]
    want = mask, np.asarray(cutout(image, mask))
    got = on_device.cutout(net, spec, image, device="cpu")
    return want, got


def _shapes(photos) -> dict:
    astronaut = Image.fromarray(photos["astronaut"])
    see_through = astronaut.convert("RGBA")
    see_through.putalpha(Image.fromarray((np.indices((512, 512)).sum(0) % 256).astype(np.uint8)))
    return {"RGB": astronaut, "cat 641x359": Image.fromarray(photos["chelsea"]).resize((641, 359)),
            "RGBA, alpha ramps": see_through, "the network's own size": astronaut.resize((320, 320)),
            "tall and narrow": astronaut.resize((50, 900)), "wide": Image.fromarray(photos["coffee"]).resize((1500, 97)),
            "4.6 MP": astronaut.resize((2560, 1800), Image.Resampling.BICUBIC)}


def test_the_graphs_give_the_host_paths_mask_and_cutout_bit_for_bit(photos, u2netp_path):
    spec = get_model("u2netp")
    net = on_device.network(build_session(u2netp_path, spec))
    for name, image in _shapes(photos).items():
        (mask, cut), (alpha, rgba) = _both_ways(net, spec, image)
        assert alpha.shape == mask.shape and np.array_equal(alpha, mask), name
        assert rgba.shape == cut.shape and np.array_equal(rgba, cut), name
        assert 0 < mask.mean() < 255, name  # a real mask, not an empty or full one


@pytest.mark.parametrize("model", ["isnet-general-use", "isnetis", "silueta"])
def test_other_preprocessings_give_the_host_paths_bytes_too(photos, model):
    """IS-Net's 1024 input and its own mean and std, silueta's u2net rule: through a small stand-in
    graph with the same input and output layout (their weights are not downloadable here), nonlinear
    and channel-asymmetric, so a wrong normalisation or channel order would show."""
    spec = get_model(model)
    net = ort.InferenceSession(asymmetric_model(spec.preprocess.size).SerializeToString(),
                               providers=["CPUExecutionProvider"])
    image = Image.fromarray(photos["astronaut"]).resize((700, 500))
    (mask, cut), (alpha, rgba) = _both_ways(net, spec, image)
    assert np.array_equal(alpha, mask) and np.array_equal(rgba, cut) and 0 < mask.mean() < 255


def _constant_network(value: float) -> bytes:
    """[1,3,320,320] -> [1,1,320,320] filled with ``value``: a flat (or NaN) output."""
    nodes = [helper.make_node("ReduceMean", ["input.1"], ["mean"], axes=[1], keepdims=1),
             helper.make_node("Mul", ["mean", "zero"], ["none"]), helper.make_node("Add", ["none", "value"], ["out"])]
    constants = [helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
                 helper.make_tensor("value", TensorProto.FLOAT, [1], [value])]
    graph = helper.make_graph(nodes, "flat", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 320, 320])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, 320, 320])], constants)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


@pytest.mark.parametrize("value", [0.25, float("nan")])
def test_a_flat_or_nan_output_gives_the_host_paths_empty_mask(photos, value):
    """Min-max of a flat map divides by zero: rembg's numpy gives NaNs, segkit an empty mask; the graph too."""
    net = ort.InferenceSession(_constant_network(value), providers=["CPUExecutionProvider"])
    image = Image.fromarray(photos["coffee"])
    (mask, cut), (alpha, rgba) = _both_ways(net, get_model("u2netp"), image)
    assert not mask.any() and np.array_equal(alpha, mask) and np.array_equal(rgba, cut)


def test_only_a_lone_plain_cutout_on_a_gpu_takes_the_device_path(u2netp_path, monkeypatch):
    """Post-processing, matting, other resize or output rules, and a gathered batch keep the host path;
    so does a CPU session, and SEGKIT_GPU_PIXELS=0 anywhere."""
    spec, image = get_model("u2netp"), Image.new("RGB", (64, 48))
    plain = Options(model="u2netp")
    assert on_device.suits(spec, plain, image)
    assert not on_device.suits(spec, Options(model="u2netp", post_process_mask=True), image)
    assert not on_device.suits(spec, Options(model="u2netp", alpha_matting=True), image)
    assert not on_device.suits(get_model("modnet-p"), Options(model="modnet-p"), image)
    assert not on_device.suits(get_model("birefnet-general"), Options(model="birefnet-general"), image)
    assert not on_device.suits(get_model("u2net_cloth_seg"), Options(model="u2net_cloth_seg"), image)
    assert not on_device.suits(spec, plain, Image.new("L", (64, 48)))
    assert not on_device.suits(spec, plain, Image.new("RGB", (2, 201)))  # Pillow resizes it vertical pass first

    session = build_session(u2netp_path, spec)
    if segkit.device() == "CUDA":
        assert on_device.prepare(spec, "cuda", on_device._Device.of(on_device.network(session), "cuda").providers).wait(60)
    assert on_device.takes(session, spec, plain, image) == (segkit.device() == "CUDA")
    monkeypatch.setenv("SEGKIT_GPU_PIXELS", "0")
    assert not on_device.takes(session, spec, plain, image)

    runner = BatchingSession(session, 4)
    assert not runner.gathering
    with runner.expecting(3):
        assert runner.gathering
    assert not runner.gathering


def test_the_graphs_are_built_and_run_once_in_a_thread_and_a_failure_keeps_the_host_path(caplog):
    """``prepare``: one build per preprocessing and device, however many callers ask; where the graphs
    cannot run (here: a provider list onnxruntime refuses), the event stays unset and says why."""
    spec = get_model("isnet-general-use")  # a preprocessing no other test here prepares
    ready = [on_device.prepare(spec, "cpu", ["CPUExecutionProvider"]) for _ in range(3)]
    assert ready[0] is ready[1] is ready[2] and ready[0].wait(60)
    refused = on_device.prepare(get_model("silueta"), "nowhere", ["NoSuchExecutionProvider"])
    for _ in range(600):
        if "pixel work stays on the host" in caplog.text:
            break
        time.sleep(0.05)
    assert not refused.is_set() and "nowhere" in caplog.text


class _LockedMemory:
    """cudaHostAlloc and cudaFreeHost for a CPU host: ordinary memory that it hands out and counts
    (the lending rules are under test here, not CUDA)."""

    def __init__(self):
        self.blocks, self.allocations = {}, 0

    def cudaHostAlloc(self, pointer, size, flags):
        block = ctypes.create_string_buffer(size.value)
        self.blocks[ctypes.addressof(block)] = block
        pointer._obj.value = ctypes.addressof(block)
        self.allocations += 1
        return 0


def test_locked_blocks_are_lent_again_once_their_arrays_are_gone_and_stay_within_budget(monkeypatch):
    memory = _LockedMemory()
    monkeypatch.setattr(pinned, "cuda_runtime", lambda: memory)
    blocks = pinned.Blocks(budget=3000)
    first = blocks.array((10, 100))
    first[:] = 7
    assert first.shape == (10, 100) and memory.allocations == 1
    second = blocks.array((20, 100))  # 1000 + 2000 bytes: just within the budget
    assert second is not None and memory.allocations == 2
    del second  # its block comes back
    held = Image.fromarray(blocks.array((10, 100)))  # a smaller one reuses the freed 2000-byte block
    assert memory.allocations == 2 and blocks.locked == 3000
    assert blocks.array((10, 100)) is None  # both blocks lent: past the budget, ordinary memory instead
    del first
    again = blocks.array((5, 100))
    assert again is not None and memory.allocations == 2 and np.asarray(held).shape == (10, 100)
    del again
    floats = blocks.array((2, 100), np.float32)  # 800 bytes: the freed 1000-byte block, read as floats
    assert floats.dtype == np.float32 and floats.shape == (2, 100) and memory.allocations == 2
    monkeypatch.setattr(pinned, "cuda_runtime", lambda: None)
    assert pinned.Blocks().array((4, 4)) is None  # without CUDA's runtime


@pytest.mark.skipif(segkit.device() != "CUDA", reason="needs a GPU that onnxruntime's CUDA provider runs on")
def test_on_a_gpu_the_pipeline_gives_the_same_cutout_either_way(photos, monkeypatch):
    from segkit.pipeline import segment_one

    session, options = session_for(get_model("u2netp")), Options(model="u2netp")
    net = on_device.network(session)
    assert on_device.prepare(options.spec, "cuda", on_device._Device.of(net, "cuda").providers).wait(60)
    for name, image in _shapes(photos).items():
        assert on_device.takes(session, options.spec, options, image), name
        got = segment_one(image, options, session)
        monkeypatch.setenv("SEGKIT_GPU_PIXELS", "0")
        want = segment_one(image, options, session)
        monkeypatch.delenv("SEGKIT_GPU_PIXELS")
        assert np.array_equal(np.asarray(got.mask), np.asarray(want.mask)), name
        assert np.array_equal(np.asarray(got.cutout), np.asarray(want.cutout)), name


@pytest.mark.skipif(segkit.device() != "CUDA", reason="needs a GPU that onnxruntime's CUDA provider runs on")
def test_a_first_call_has_nothing_beside_it_and_the_second_builds_the_graphs():
    """In a fresh process: the first call's network sets up cuDNN alone (the graphs built beside it
    slowed it, bench/RESULTS.md); the second call starts them; the process then exits cleanly."""
    code = ("import numpy, segkit; from segkit.models import on_device\n"
            "image = numpy.zeros((64, 48, 3), numpy.uint8)\n"
            "for _ in range(2):\n"
            "    segkit.segment(image, model='u2netp'); print(len(on_device._ready))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.split() == ["0", "1"], run.stderr[-2000:]
