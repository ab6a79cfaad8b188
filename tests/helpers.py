"""Helpers shared by the tests: encoded photos, alpha channels, and small ONNX stand-in
graphs with a model's input and output layout (for models whose weights can't be had here)."""

from __future__ import annotations

import io
import os
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from segkit.models.lookup import get_model
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


def _const(name: str, array) -> onnx.TensorProto:
    array = np.asarray(array, np.float32)
    return helper.make_tensor(name, TensorProto.FLOAT, array.shape, array.ravel())


def _model(nodes, name, inputs, outputs, constants) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, constants)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def asymmetric_model(size: int, channels: int = 1, input_name: str = "input.1", gain: float = 1.0) -> onnx.ModelProto:
    """[1,3,S,S] -> [1,C,S,S]: gain * tanh(1.3 R - 0.8 G + 0.5 B + ramp), plus a different ramp per output
    channel. Nonlinear, channel-asymmetric and varying over the frame, so a wrong normalisation, channel
    order, sigmoid or resize shows in the mask. Elementwise ops only (cheap at 1024², and float16-able)."""
    ramp = np.linspace(-0.6, 0.6, size, dtype=np.float32)
    ramps = np.stack([(ramp[None, :] * (c + 1) - ramp[:, None] * (c % 2 * 2 - 1)) for c in range(channels)])[None]
    nodes = [
        helper.make_node("Mul", [input_name, "weights"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axes"], ["mixed"], keepdims=1),
        helper.make_node("Add", ["mixed", "ramps"], ["shifted"]),
        helper.make_node("Tanh", ["shifted"], ["squashed"]),
        helper.make_node("Mul", ["squashed", "gain"], ["out"]),
    ]
    constants = [_const("weights", np.array([1.3, -0.8, 0.5], np.float32).reshape(1, 3, 1, 1)), _const("ramps", ramps),
                 _const("gain", [gain]), helper.make_tensor("axes", TensorProto.INT64, [1], [1])]
    return _model(nodes, "asymmetric", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 3, size, size])],
                  [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, channels, size, size])], constants)


def sam_encoder() -> onnx.ModelProto:
    """rembg's SAM encoder layout: an HWC float image [684,1024,3] -> image_embeddings [1,256,64,64]; the
    stand-in pools the photo to 64x64 and mixes its channels differently for each of the 256 maps."""
    mix = np.random.default_rng(0).normal(size=(256, 3, 1, 1)).astype(np.float32) / 255
    nodes = [
        helper.make_node("Transpose", ["input_image"], ["chw"], perm=[2, 0, 1]),
        helper.make_node("Unsqueeze", ["chw", "zero_axis"], ["nchw"]),
        helper.make_node("Resize", ["nchw", "", "", "grid"], ["small"], mode="linear"),
        helper.make_node("Conv", ["small", "mix"], ["mixed"]),
        helper.make_node("Tanh", ["mixed"], ["image_embeddings"]),
    ]
    constants = [_const("mix", mix), helper.make_tensor("zero_axis", TensorProto.INT64, [1], [0]),
                 helper.make_tensor("grid", TensorProto.INT64, [4], [1, 3, 64, 64])]
    return _model(nodes, "sam_encoder", [helper.make_tensor_value_info("input_image", TensorProto.FLOAT, [684, 1024, 3])],
                  [helper.make_tensor_value_info("image_embeddings", TensorProto.FLOAT, [1, 256, 64, 64])], constants)


def sam_decoder() -> onnx.ModelProto:
    """rembg's SAM decoder inputs and outputs; masks [1,1,684,1024] are a bump of radius ~60 px per point
    (label 1 up, 0 down, box corners 2 and 3 up, the padding point -1 down) plus the embedding's mean
    upsampled, minus a threshold: clicks, boxes and the photo all move the mask."""
    h, w = 684, 1024
    xs = np.broadcast_to(np.arange(w, dtype=np.float32)[None, None, :], (1, h, w))
    ys = np.broadcast_to(np.arange(h, dtype=np.float32)[None, :, None], (1, h, w))
    nodes = [
        helper.make_node("Transpose", ["point_coords"], ["pc"], perm=[1, 2, 0]),  # [N,2,1]
        helper.make_node("Split", ["pc"], ["px", "py"], axis=1, num_outputs=2),  # [N,1,1] each
        helper.make_node("Sub", ["xs", "px"], ["dx"]), helper.make_node("Sub", ["ys", "py"], ["dy"]),
        helper.make_node("Mul", ["dx", "dx"], ["dx2"]), helper.make_node("Mul", ["dy", "dy"], ["dy2"]),
        helper.make_node("Add", ["dx2", "dy2"], ["d2"]),
        helper.make_node("Mul", ["d2", "inv_r2"], ["scaled"]), helper.make_node("Neg", ["scaled"], ["neg"]),
        helper.make_node("Exp", ["neg"], ["bump"]),  # [N,H,W]
        helper.make_node("Transpose", ["point_labels"], ["pl"], perm=[1, 0]),  # [N,1]
        helper.make_node("Sub", ["pl", "half"], ["weight"]),
        helper.make_node("Unsqueeze", ["weight", "last"], ["weight3"]),  # [N,1,1]
        helper.make_node("Mul", ["bump", "weight3"], ["signed"]),
        helper.make_node("ReduceSum", ["signed", "first"], ["clicks"], keepdims=1),  # [1,H,W]
        helper.make_node("ReduceMean", ["image_embeddings", "second"], ["mean"], keepdims=1),  # [1,1,64,64]
        helper.make_node("Resize", ["mean", "", "", "frame"], ["photo"], mode="linear"),  # [1,1,H,W]
        helper.make_node("Unsqueeze", ["clicks", "first"], ["clicks4"]),
        helper.make_node("Add", ["clicks4", "photo"], ["raw"]),
        helper.make_node("Sub", ["raw", "threshold"], ["masks"]),
        helper.make_node("ReduceMean", ["masks", "all"], ["iou_predictions"], keepdims=0),
        helper.make_node("Resize", ["masks", "", "", "low"], ["low_res_masks"], mode="linear"),
    ]
    constants = [_const("xs", xs), _const("ys", ys), _const("inv_r2", [1 / 3600]), _const("half", [0.5]),
                 _const("threshold", [0.2]), helper.make_tensor("last", TensorProto.INT64, [1], [2]),
                 helper.make_tensor("first", TensorProto.INT64, [1], [0]),
                 helper.make_tensor("second", TensorProto.INT64, [1], [1]),
                 helper.make_tensor("all", TensorProto.INT64, [2], [2, 3]),
                 helper.make_tensor("frame", TensorProto.INT64, [4], [1, 1, h, w]),
                 helper.make_tensor("low", TensorProto.INT64, [4], [1, 1, 256, 256])]
    f = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("image_embeddings", f, [1, 256, 64, 64]),
              helper.make_tensor_value_info("point_coords", f, [1, "n", 2]),
              helper.make_tensor_value_info("point_labels", f, [1, "n"]),
              helper.make_tensor_value_info("mask_input", f, [1, 1, 256, 256]),
              helper.make_tensor_value_info("has_mask_input", f, [1]),
              helper.make_tensor_value_info("orig_im_size", f, [2])]
    outputs = [helper.make_tensor_value_info("masks", f, [1, 1, h, w]),
               helper.make_tensor_value_info("iou_predictions", f, [1, 1]),
               helper.make_tensor_value_info("low_res_masks", f, [1, 1, 256, 256])]
    return _model(nodes, "sam_decoder", inputs, outputs, constants)


CHROMIUM = os.getenv("SEGKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
BROWSER = [  # the marks of a test module that drives Chromium
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM}: install Debian's "
                       "`chromium` (apt-get install chromium) or set SEGKIT_CHROMIUM; .ci/run installs it"),
]
