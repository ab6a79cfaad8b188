"""int8 variants of the rembg models: onnxruntime's static quantisation, measured against fp32.

A variant ships (as ``<model>-int8`` in the registry) only if it is at least
1.5x faster than fp32 on 2 cores with mean |delta alpha| <= 3/255 and IoU of the
masks thresholded at 128 >= 0.98 on every evaluation photo. Each configuration
quantises the verified fp32 file (converted to opset 13 for per-channel
weights, onnxruntime's ``quant_pre_process``, QDQ, uint8 activations, int8
weights), calibrated on scikit-image pictures that are not evaluation photos
(plus flips and crops). Masks come from segkit's own model input and output
(what ``segment()`` returns); the speed is the network alone, interleaved,
medians, so it bounds what ``segment()`` would gain. The configurations of
one run share one calibration per source, method and set of pictures.

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
#          what else, "+"-joined words: "zero-dead" zeroes conv channels whose weights are all below 1/1000 of
#          the layer's largest, and the words of _float_nodes (more nodes in float) and OPTIONS (options))
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
    # the last 25% / 40% of the convs in graph order in float (u2net: stage2d and stage1d / from stage4d on)
    "minmax-float-tail25": (True, "MinMax", True, False, "tail25"),
    "minmax-float-tail40": (True, "MinMax", True, False, "tail40"),
    # the output head in float: the side/fuse convs and all after them (Resize, Concat, Sigmoid)
    "minmax-float-head": (True, "MinMax", True, False, "head"),
    # and the two sparse tensors (the last conv of the two finest decoder blocks, its Relu and residual Add)
    "minmax-float-head-sparse": (True, "MinMax", True, False, "head+sparse-2+sparse-1"),
    # only the sparse tensor of the second-finest decoder block (u2net's, u2netp's stage2d: Conv_787)
    "minmax-float-head-sparse2d": (True, "MinMax", True, False, "head+sparse-2"),
    # the same with 7-bit weights / symmetric uint8 activations / ranges averaged over the calibration inputs /
    # calibrated on the evaluation photos (a diagnosis)
    "minmax-float-head-sparse-reduce-range": (True, "MinMax", True, False, "head+sparse-2+sparse-1+reduce-range"),
    "minmax-float-head-sparse-symmetric": (True, "MinMax", True, False, "head+sparse-2+sparse-1+symmetric"),
    "minmax-float-head-sparse-moving-average": (True, "MinMax", True, False, "head+sparse-2+sparse-1+moving-average"),
    "minmax-float-head-sparse-calibrated-on-evaluation": (True, "MinMax", True, True, "head+sparse-2+sparse-1"),
    # head and sparse tensors, and the whole finest decoder block (u2net's stage1d) in float
    "minmax-float-head-sparse-stage1d": (True, "MinMax", True, False, "head+sparse-2+sparse-1+block-1"),
    # and the next decoder block (stage2d) / the third encoder block (stage3) too
    "minmax-float-head-sparse-stage1d-stage2d": (True, "MinMax", True, False, "head+sparse-2+sparse-1+block-1+block-2"),
    "minmax-float-head-sparse-stage1d-stage3": (True, "MinMax", True, False, "head+sparse-2+sparse-1+block-1+block2"),
    # u2netp's closest (head and stage2d's sparse tensor in float) with the histogram calibrations
    "percentile-float-head-sparse2d": (True, "Percentile", True, False, "head+sparse-2"),
    "entropy-float-head-sparse2d": (True, "Entropy", True, False, "head+sparse-2"),
    # u2net's closest with entropy calibration
    "entropy-float-head-sparse-stage1d": (True, "Entropy", True, False, "head+sparse-2+sparse-1+block-1"),
}
# quantize_static's extra options per word
OPTIONS = {"no-bias-adjust": {"QDQDisableWeightAdjustForInt32Bias": True}, "symmetric": {"ActivationSymmetric": True},
           "moving-average": {"CalibMovingAverage": True}}


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
    """The calibration inputs; ``set_range`` lets onnxruntime calibrate a few at a time (its
    ``CalibStridedMinMax``), which the histogram methods need to fit in memory."""

    def __init__(self, spec, images, input_name):
        from segkit.models.predict import model_input

        self.feeds = [{input_name: model_input(Image.fromarray(i), spec.preprocess)} for i in images]
        self.set_range(0, len(self.feeds))

    def __len__(self):
        return len(self.feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.pending = iter(self.feeds[start_index:end_index])

    def get_next(self):
        return next(self.pending, None)


def quantise(spec, source: str, target: str, config: str, folder: str) -> None:
    per_channel, method, keep_edges, on_evaluation, variant = CONFIGS[config]
    words = variant.split("+") if variant else []
    opset13, pre = os.path.join(folder, "opset13.onnx"), os.path.join(folder, "pre.onnx")
    if not os.path.exists(pre):
        onnx.save(onnx.version_converter.convert_version(onnx.load(source), 13), opset13)
        q.quant_pre_process(opset13, pre, skip_symbolic_shape=True)
    model = onnx.load(pre)
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    keep = [convs[0].name] + [n.name for n in convs if weights[n.input[1]].dims[0] == 1] if keep_edges else []
    keep += _float_nodes(graph, words, weights)
    if "zero-dead" in words:
        for conv in convs:
            _zero_dead_channels(weights[conv.input[1]])
        pre = os.path.join(folder, f"{config}-source.onnx")
        onnx.save(model, pre)
    # one calibration per source, method, photos and averaging, shared by the configurations of a run
    cache = os.path.join(folder, f"{method}-{on_evaluation}-{'zero-dead' in words}-{'moving-average' in words}.json")
    images = [picture(n) for n in EVALUATION] if on_evaluation else calibration_pictures()
    reader = None if os.path.exists(cache) else _Reader(spec, images, graph.input[0].name)
    q.quantize_static(pre, target, reader, quant_format=q.QuantFormat.QDQ, per_channel=per_channel,
                      reduce_range="reduce-range" in words, activation_type=q.QuantType.QUInt8,
                      weight_type=q.QuantType.QInt8, nodes_to_exclude=sorted(set(keep)),
                      calibrate_method=getattr(q.CalibrationMethod, method), calibration_cache_path=cache,
                      extra_options={k: v for w in words for k, v in OPTIONS.get(w, {}).items()}
                      | ({} if method == "MinMax" else {"CalibStridedMinMax": _stride(len(images))}))


def _stride(count: int, most: int = 6) -> int:
    """Inputs per histogram update: all of a run's activations at once do not fit in 24 GB."""
    return max(d for d in range(1, most + 1) if count % d == 0)


def _float_nodes(graph, words: list[str], weights: dict) -> list[str]:
    """Nodes that the words keep in float: "encoder-only" (the second half of the convs), "tailNN" (the last NN%
    of the convs), "head" (the 1-channel side/fuse convs and every node after them), "blockI" (the nodes after
    residual Add I-1 up to Add I, Python's indexing: block-1 is the finest decoder block), "sparseI" (of block I's
    Add, the later conv of its two inputs, that conv's Relu and the Add: in the two finest decoder blocks, the
    sparse, heavy-tailed tensor that the debugger finds, kept unquantised up to the residual Add)."""
    nodes, convs = list(graph.node), [n.name for n in graph.node if n.op_type == "Conv"]
    producer = {o: n for n in nodes for o in n.output}
    consumers: dict[str, list] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    adds = [i for i, n in enumerate(nodes) if n.op_type == "Add"]
    keep = convs[len(convs) // 2:] if "encoder-only" in words else []
    for word in words:
        if word.startswith("tail"):
            keep += convs[len(convs) - round(len(convs) * int(word[4:]) / 100):]
        if word.startswith("block"):
            i = int(word[5:]) % len(adds)
            keep += [n.name for n in nodes[adds[i - 1] + 1 if i else 0:adds[i] + 1]]
        if word.startswith("sparse"):
            add = nodes[adds[int(word[6:])]]
            relu = max((producer[i] for i in add.input if producer[i].op_type == "Relu"), key=nodes.index)
            keep += [producer[relu.input[0]].name, relu.name, add.name]
    if "head" in words:
        todo = [n for n in nodes if n.op_type == "Conv" and weights[n.input[1]].dims[0] == 1]
        while todo:
            node = todo.pop()
            keep.append(node.name)
            todo += [c for o in node.output for c in consumers.get(o, []) if c.name not in keep]
    return keep


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
