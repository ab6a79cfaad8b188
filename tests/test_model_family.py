"""The registry entries whose weights cannot be downloaded here (silueta, u2net_human_seg,
u2net_cloth_seg, isnet-general-use, isnetis) run through the real loading and session
path with small ONNX graphs built by this test: same input name and shape, same output
layout. Their "prediction" is a simple function of the input (brightness, or fixed
class regions), so the test can check that preprocessing, the mask rule and the
resize back are wired as the registry says. Checksums are disabled for this test only."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import segkit
from segkit.registry import get_model
from segkit.sessions import POOL


def brightness_model(size: int) -> onnx.ModelProto:
    """[1,3,S,S] -> [1,1,S,S] channel mean: a saliency map that is the image's brightness."""
    node = helper.make_node("ReduceMean", ["input.1", "axes"], ["d0"], keepdims=1)
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(
        [node], "brightness", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("d0", TensorProto.FLOAT, [1, 1, size, size])], [axes])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def cloth_model(size: int) -> onnx.ModelProto:
    """[1,3,S,S] -> [1,4,S,S] logits with fixed class regions: top third upper body, bottom third
    lower body, a centre square full body, the rest background."""
    logits = np.zeros((1, 4, size, size), np.float32)
    logits[0, 0] = 1
    logits[0, 1, : size // 3] = 5
    logits[0, 2, -size // 3:] = 5
    logits[0, 3, size // 2 - 8: size // 2 + 8, size // 2 - 8: size // 2 + 8] = 9
    bias = helper.make_tensor("bias", TensorProto.FLOAT, logits.shape, logits.ravel())
    zero = helper.make_node("Mul", ["input.1", "zero"], ["z"])
    zero_t = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    pick = helper.make_node("ReduceSum", ["z", "axes"], ["s"], keepdims=1)
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    add = helper.make_node("Add", ["s", "bias"], ["out"])
    graph = helper.make_graph(
        [zero, pick, add], "cloth", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, size, size])], [bias, zero_t, axes])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    monkeypatch.setenv("SEGKIT_SKIP_CHECKSUM", "1")
    POOL.clear()
    yield tmp_path
    POOL.clear()


@pytest.mark.parametrize("name", ["silueta", "u2net_human_seg", "isnet-general-use", "isnetis"])
def test_saliency_models_load_and_follow_their_entry(cache, name):
    spec = get_model(name)
    onnx.save(brightness_model(spec.preprocess.size), cache / spec.weights.filename)
    image = np.zeros((90, 160, 3), np.uint8)
    image[:, 80:] = 200  # right half bright
    image[:, :80] = 20
    out = segkit.segment(image, model=name)
    alpha = np.asarray(out)[:, :, 3]
    assert out.size == (160, 90)
    # min-max rescaled brightness; Lanczos overshoot at the edge takes the very top values
    assert alpha[:, 100:].min() >= 200 and alpha[:, :60].max() <= 30
    session = segkit.api.session_for(spec)
    assert session.get_inputs()[0].shape == [1, 3, spec.preprocess.size, spec.preprocess.size]


def test_cloth_model_gives_three_labelled_masks(cache):
    spec = get_model("u2net_cloth_seg")
    onnx.save(cloth_model(spec.preprocess.size), cache / spec.weights.filename)
    image = np.full((300, 300, 3), 128, np.uint8)
    (masks,) = segkit.segment([image], model="u2net_cloth_seg", only_mask=True, separate_masks=True)
    assert list(masks) == ["upper body", "lower body", "full body"]
    upper, lower, full = (np.asarray(masks[k]) for k in masks)
    assert upper[:90].min() == 255 and upper[110:].max() == 0
    assert lower[-90:].min() == 255 and lower[:190].max() == 0
    assert full[150, 150] == 255 and full[:, :130].max() == 0
    combined = segkit.process([image], model="u2net_cloth_seg")[0]
    assert np.asarray(combined.mask)[150, 150] == 255 and np.asarray(combined.mask)[150, 20] == 0
    assert set(combined.cutouts) == set(masks)
