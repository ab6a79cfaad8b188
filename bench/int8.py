"""int8 variants of the rembg models: onnxruntime's static quantisation, measured against fp32.

A variant ships (as ``<model>-int8`` in the registry) only if it is at least
1.5x faster than fp32 on 2 cores with mean |delta alpha| <= 3/255 and IoU of the
masks thresholded at 128 >= 0.98 on every evaluation photo. Each configuration
quantises the verified fp32 file (converted to opset 13 for per-channel
weights, onnxruntime's ``quant_pre_process``, QDQ, uint8 activations, int8
weights), calibrated on scikit-image pictures that are not evaluation photos
(plus flips and crops). Masks come from segkit's own model input and output
(what ``segment()`` returns); the speed is the network alone, interleaved,
medians, so it bounds what ``segment()`` would gain.

    .venv/bin/python -m bench.int8 [--model u2netp] [--configs minmax per-tensor ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime import quantization as q
from PIL import Image
from skimage import data, io

PHOTOS = os.path.dirname(data.__file__)
EVALUATION = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_right.png"]
CALIBRATION = ["ihc.png", "retina.jpg", "hubble_deep_field.jpg", "color.png", "logo.png", "camera.png", "moon.png",
               "coins.png", "grass.png", "brick.png", "text.png", "page.png", "horse.png", "gravel.png",
               "clock_motion.png", "microaneurysms.png", "cell.png", "phantom.png"]
# name -> (per-channel weights, calibration, keep the first conv and the 1-channel side/fuse convs in float,
#          calibrate on the evaluation photos: a diagnosis of range vs resolution, never shipped,
#          what else: "zero-dead" zeroes conv channels whose weights are all below 1/1000 of the layer's
#          largest, "encoder-only" keeps the second half of the convs in float, "no-bias-adjust" passes
#          QDQDisableWeightAdjustForInt32Bias)
CONFIGS = {
    "minmax": (True, "MinMax", True, False, ""),
    "minmax-all-layers": (True, "MinMax", False, False, ""),
    "per-tensor": (False, "MinMax", True, False, ""),
    "percentile": (True, "Percentile", True, False, ""),
    "entropy": (True, "Entropy", True, False, ""),
    "minmax-calibrated-on-evaluation": (True, "MinMax", True, True, ""),
    "minmax-zero-dead": (True, "MinMax", True, False, "zero-dead"),
    "minmax-encoder-only": (True, "MinMax", True, False, "encoder-only"),
    "minmax-no-bias-adjust": (True, "MinMax", True, False, "no-bias-adjust"),
}


def picture(name: str) -> np.ndarray:
    image = io.imread(os.path.join(PHOTOS, name))
    if image.dtype != np.uint8:
        image = (image.astype(float) * 255 / max(float(image.max()), 1)).astype(np.uint8)
    return np.dstack([image] * 3) if image.ndim == 2 else image[..., :3]


def calibration_pictures() -> list[np.ndarray]:
    out = []
    for name in CALIBRATION:
        image = picture(name)
        h, w = image.shape[:2]
        out += [image, image[:, ::-1].copy(), image[h // 4:h - h // 8, w // 8:w - w // 4].copy()]
    return out


class _Reader(q.CalibrationDataReader):
    def __init__(self, spec, images, input_name):
        from segkit.models.predict import model_input

        self.feeds = iter([{input_name: model_input(Image.fromarray(i), spec.preprocess)} for i in images])

    def get_next(self):
        return next(self.feeds, None)


def quantise(spec, source: str, target: str, config: str, folder: str) -> None:
    per_channel, method, keep_edges, on_evaluation, variant = CONFIGS[config]
    opset13, pre = os.path.join(folder, "opset13.onnx"), os.path.join(folder, "pre.onnx")
    if not os.path.exists(pre):
        onnx.save(onnx.version_converter.convert_version(onnx.load(source), 13), opset13)
        q.quant_pre_process(opset13, pre, skip_symbolic_shape=True)
    model = onnx.load(pre)
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    keep = [convs[0].name] + [n.name for n in convs if weights[n.input[1]].dims[0] == 1] if keep_edges else []
    if variant == "encoder-only":
        keep += [n.name for n in convs[len(convs) // 2:]]
    if variant == "zero-dead":
        for conv in convs:
            _zero_dead_channels(weights[conv.input[1]])
        pre = os.path.join(folder, f"{config}-source.onnx")
        onnx.save(model, pre)
    images = [picture(n) for n in EVALUATION] if on_evaluation else calibration_pictures()
    q.quantize_static(pre, target, _Reader(spec, images, graph.input[0].name), quant_format=q.QuantFormat.QDQ,
                      per_channel=per_channel, activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
                      nodes_to_exclude=keep, calibrate_method=getattr(q.CalibrationMethod, method),
                      extra_options={"QDQDisableWeightAdjustForInt32Bias": variant == "no-bias-adjust"})


def _zero_dead_channels(tensor) -> None:
    """Output channels whose weights are all below 1/1000 of the layer's largest become exactly zero."""
    from onnx import numpy_helper

    weight = numpy_helper.to_array(tensor).copy()
    largest = np.abs(weight.reshape(weight.shape[0], -1)).max(axis=1)
    weight[largest < 1e-3 * max(float(largest.max()), 1e-12)] = 0
    tensor.CopyFrom(numpy_helper.from_array(weight, tensor.name))


def session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = 2, 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def compare(spec, fp32_path: str, int8_path: str, repeat: int) -> tuple[list, float]:
    """Per evaluation photo (name, mean |delta alpha| in levels, IoU), and the fp32/int8 time ratio."""
    from segkit.models.predict import masks_from_output, model_input

    a, b = session(fp32_path), session(int8_path)
    name = a.get_inputs()[0].name
    rows = []
    for photo in EVALUATION:
        image = Image.fromarray(picture(photo))
        feed = {name: model_input(image, spec.preprocess)}
        ma, mb = (masks_from_output(s.run(None, feed)[0], spec, image.size)[0].astype(float) for s in (a, b))
        union = ((ma >= 128) | (mb >= 128)).sum()
        rows.append((photo.split(".")[0], np.abs(ma - mb).mean(), ((ma >= 128) & (mb >= 128)).sum() / max(union, 1)))
    times = {id(a): [], id(b): []}
    for _ in range(repeat):
        for s in (a, b):
            time.sleep(0.2)  # idle threads of the other session stop spinning
            start = time.perf_counter()
            s.run(None, feed)
            times[id(s)].append(time.perf_counter() - start)
    return rows, statistics.median(times[id(a)]) / statistics.median(times[id(b)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    import segkit

    spec, fp32 = segkit.get_model(args.model), str(segkit.download(args.model))
    print(f"| model | configuration | speed vs fp32 | {' | '.join(p.split('.')[0] for p in EVALUATION)} | ships? |")
    print("|---|---|---|" + "---|" * len(EVALUATION) + "---|")
    with tempfile.TemporaryDirectory() as folder:
        for config in args.configs:
            target = os.path.join(folder, f"{config}.onnx")
            quantise(spec, fp32, target, config, folder)
            rows, speed = compare(spec, fp32, target, args.repeat)
            ok = speed >= 1.5 and all(mad <= 3 and iou >= 0.98 for _, mad, iou in rows) and not CONFIGS[config][3]
            cells = " | ".join(f"{mad:.1f} / {iou:.3f}" for _, mad, iou in rows)
            print(f"| {args.model} | {config} | {speed:.2f}x | {cells} | {'yes' if ok else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
