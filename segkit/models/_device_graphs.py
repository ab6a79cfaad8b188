"""The two ONNX graphs of ``on_device``: rembg's steps before and after the network, exact.

Pillow's 8-bit resize pass is ``clip((sum of pixel * tap + 2**21) >> 22, 0, 255)`` with integer
taps (``pixels._resize_kernels``): here a float64 matrix product with the dense taps, then the same
rounding. Every value on the way is an integer below 2**53, so float64 holds it exactly.
"""

from __future__ import annotations

import functools

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from ..pixels._resize_kernels import HALF, PRECISION_BITS

_OPSET = 17


class _Graph:
    """A few lines per step: ``g.op("MatMul", a, b)`` adds a node and names its output."""

    def __init__(self):
        self.nodes, self.constants, self.count = [], [], 0

    def op(self, kind: str, *inputs: str, **attributes) -> str:
        self.count += 1
        name = f"{kind.lower()}{self.count}"
        self.nodes.append(helper.make_node(kind, list(inputs), [name], **attributes))
        return name

    def const(self, value, dtype) -> str:
        name = f"const{len(self.constants)}"
        self.constants.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def rename(self, value: str, name: str) -> None:
        self.nodes.append(helper.make_node("Identity", [value], [name]))

    def resample(self, left: str, right: str) -> str:
        """One of Pillow's passes: the product, then its rounding to 8 bits."""
        total = self.op("Add", self.op("MatMul", left, right), self.const(HALF, np.float64))
        shifted = self.op("Floor", self.op("Mul", total, self.const(1.0 / (1 << PRECISION_BITS), np.float64)))
        return self.op("Clip", shifted, self.const(0, np.float64), self.const(255, np.float64))

    def channels(self, value: str, first: int, last: int, axis: int) -> str:
        return self.op("Slice", value, self.const([first], np.int64), self.const([last], np.int64),
                       self.const([axis], np.int64))

    def serialise(self, inputs: list, outputs: list) -> bytes:
        graph = helper.make_graph(self.nodes, "segkit", inputs, outputs, self.constants)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)], ir_version=8)
        return model.SerializeToString()


def _tensor(name: str, dtype, shape: list) -> object:
    return helper.make_tensor_value_info(name, dtype, shape)


@functools.lru_cache(maxsize=8)
def model_input(by_max: bool, mean: tuple, std: tuple) -> bytes:
    """pixels (H, W, C uint8), columns (W, S), rows (S, H) -> tensor (1, 3, S, S): the Lanczos resize,
    then ``(pixels / divisor - mean) / std`` in float64 as ``_tensor_kernels.normalise``."""
    g = _Graph()
    rgb = g.op("Cast", g.op("Transpose", g.channels("pixels", 0, 3, 2), perm=[2, 0, 1]), to=TensorProto.DOUBLE)
    small = g.resample("rows", g.resample(rgb, "columns"))  # (3, S, S): horizontal pass first, as Pillow
    if by_max:
        divisor = g.op("Max", g.op("ReduceMax", small, keepdims=0), g.const(1e-6, np.float64))
    else:
        divisor = g.const(255.0, np.float64)
    scaled = g.op("Sub", g.op("Div", small, divisor), g.const(np.reshape(mean, (3, 1, 1)), np.float64))
    normal = g.op("Div", scaled, g.const(np.reshape(std, (3, 1, 1)), np.float64))
    g.rename(g.op("Unsqueeze", g.op("Cast", normal, to=TensorProto.FLOAT), g.const([0], np.int64)), "tensor")
    return g.serialise([_tensor("pixels", TensorProto.UINT8, ["h", "w", "c"]),
                        _tensor("columns", TensorProto.DOUBLE, ["w", "s"]),
                        _tensor("rows", TensorProto.DOUBLE, ["s", "h"])],
                       [_tensor("tensor", TensorProto.FLOAT, [1, 3, "s", "s"])])


@functools.lru_cache(maxsize=4)
def mask_and_cutout(opaque: bool) -> bytes:
    """output (1, 1, S, S), pixels (H, W, C), columns (S, W), rows (H, S) -> alpha (H, W) and rgba
    (H, W, 4): ``_tensor_kernels.minmax_mask``, the Lanczos resize up, and Pillow's paste through the
    mask onto transparent black; ``opaque``: the 4th byte is padding (Pillow's RGB), alpha is the mask."""
    g = _Graph()
    pred = g.op("Squeeze", g.channels(g.channels("output", 0, 1, 0), 0, 1, 1), g.const([0, 1], np.int64))
    low, high = g.op("ReduceMin", pred, keepdims=0), g.op("ReduceMax", pred, keepdims=0)
    unit = g.op("Clip", g.op("Div", g.op("Sub", pred, low), g.op("Sub", high, low)),
                g.const(0, np.float32), g.const(1, np.float32))
    mask = g.op("Cast", g.op("Floor", g.op("Mul", unit, g.const(255, np.float32))), to=TensorProto.DOUBLE)
    nans = g.op("ReduceSum", g.op("Cast", g.op("IsNaN", pred), to=TensorProto.FLOAT), keepdims=0)
    usable = g.op("And", g.op("Greater", high, low), g.op("Equal", nans, g.const(0, np.float32)))
    mask = g.op("Where", usable, mask, g.const(0, np.float64))  # flat or NaN output: an empty mask, as there
    alpha = g.op("Cast", g.resample("rows", g.resample(mask, "columns")), to=TensorProto.FLOAT)  # (H, W)

    colours = g.op("Cast", g.channels("pixels", 0, 3, 2) if opaque else "pixels", to=TensorProto.FLOAT)
    scaled = g.op("Add", g.op("Mul", colours, g.op("Unsqueeze", alpha, g.const([2], np.int64))),
                  g.const(128, np.float32))  # Pillow: t = value * alpha + 128, then (t + (t >> 8)) >> 8
    per_256 = g.const(1 / 256, np.float32)
    pasted = g.op("Floor", g.op("Mul", g.op("Add", scaled, g.op("Floor", g.op("Mul", scaled, per_256))), per_256))
    if opaque:
        pasted = g.op("Concat", pasted, g.op("Unsqueeze", alpha, g.const([2], np.int64)), axis=2)
    g.rename(g.op("Cast", alpha, to=TensorProto.UINT8), "alpha")
    g.rename(g.op("Cast", pasted, to=TensorProto.UINT8), "rgba")
    return g.serialise([_tensor("output", TensorProto.FLOAT, ["n", "k", "s", "t"]),
                        _tensor("pixels", TensorProto.UINT8, ["h", "w", "c"]),
                        _tensor("columns", TensorProto.DOUBLE, ["t", "w"]),
                        _tensor("rows", TensorProto.DOUBLE, ["h", "s"])],
                       [_tensor("alpha", TensorProto.UINT8, ["h", "w"]),
                        _tensor("rgba", TensorProto.UINT8, ["h", "w", 4])])
