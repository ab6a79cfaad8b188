"""Helpers shared by the tests: encoded photos, alpha channels, and small ONNX stand-in
graphs with a model's input and output layout (for models whose weights can't be had here)."""

from __future__ import annotations

import io

import numpy as np
import onnx
from onnx import TensorProto, helper
from PIL import Image

from segkit.models.registry import get_model
from segkit.models.weights import find_cached


def u2net_cached() -> bool:
    return find_cached(get_model("u2net")) is not None


def png_bytes(array: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=save.pop("format", "PNG"), **save)
    return buf.getvalue()


def alpha(image) -> np.ndarray:
    return np.asarray(image)[:, :, 3].astype(np.int16)


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
