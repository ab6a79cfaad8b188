"""segkit on a GPU, against issue 16's targets, side by side in one process.

    python -m bench.gpu [--models u2netp u2net] [--repeat 15] [--options] [--host]

Prints which device the sessions run on, then per model:
- each photo's alpha from the GPU session against a CPU session of the same
  file, through the same ``segment_one`` (default options, and with TF32 on);
- a 4.6 MP ``segment()`` against the network alone, its pixel work on the GPU
  (``models.on_device``, the default there) and on the host, with the stages of
  each timed one by one, and the two paths' bytes compared;
- with ``--options``, the network alone under each CUDA setting (TF32, cuDNN's search), and
  runs of one batch size against runs whose size changes each time;
- with ``--host``, the host's work alone (an instant stand-in for the network) from 1, 16
  and 32 threads, the ceiling of a gathered batch, and the gathered runner against a stand-in
  network that takes its time off the CPU, as a GPU's does (this runs on any machine).
Batches: ``python -m bench.batch_bench``.
Contenders alternate; medians are reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time

import numpy as np
import onnxruntime as ort

import segkit
from segkit.models.batching import with_batch_axis
from segkit.models import on_device
from segkit.models.lookup import get_model
from segkit.models.predict import masks_from_output, model_input
from segkit.models.sessions import _session_options, build_session, session_for
from segkit.options import Options
from segkit.pipeline import segment_one
from segkit.pixels.resize import cutout, row_reader

from .run import interleaved, photo


def gpu_name() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "no nvidia-smi"


def photos() -> dict:
    from skimage import data

    return {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee(),
            "rocket": data.rocket(), "astronaut 4.6 MP": np.asarray(photo(4.6))}


def compare(model: str) -> None:
    """The GPU's alpha against the CPU's, per photo, through the same pipeline."""
    spec, path = get_model(model), segkit.download(model)
    options = Options(model=model)
    gpu = session_for(spec)
    cpu = ort.InferenceSession(str(path), _session_options(), providers=["CPUExecutionProvider"])
    tf32 = ort.InferenceSession(str(path), _session_options(),
                                providers=[("CUDAExecutionProvider", {"use_tf32": "1"}), "CPUExecutionProvider"])
    print(f"\n{model}: alpha on the GPU against the CPU (levels of 255)")
    print("| photo | default: max | default: pixels > 1 level | TF32: max | TF32: pixels > 1 level |")
    print("|---|---|---|---|---|")
    for name, image in photos().items():
        alphas = [np.asarray(segment_one(image, options, s).mask, np.int16) for s in (cpu, gpu, tf32)]
        row = [name]
        for other in alphas[1:]:
            diff = np.abs(other - alphas[0])
            row += [f"{int(diff.max())}", f"{float((diff > 1).mean()):.4%}"]
        print("| " + " | ".join(row) + " |", flush=True)


def _host_pixels(call):
    """``call()`` with the pixel work on the host (``SEGKIT_GPU_PIXELS=0``)."""
    os.environ["SEGKIT_GPU_PIXELS"] = "0"
    try:
        return call()
    finally:
        del os.environ["SEGKIT_GPU_PIXELS"]


def single(model: str, repeat: int) -> None:
    """A 4.6 MP segment() against the network alone, with its pixel work beside the network on the
    GPU (``models.on_device``) and on the host, and the stages of each one by one."""
    spec, path = get_model(model), segkit.download(model)
    image = photo(4.6)
    session = build_session(path, spec)  # segkit's session options, without the batching wrapper
    bare = ort.InferenceSession(str(path), providers=list(session.get_providers()))  # onnxruntime's defaults
    name = session.get_inputs()[0].name
    tensor = model_input(image, spec.preprocess)
    output = session.run(None, {name: tensor})[0]
    mask = masks_from_output(output, spec, image.size)[0]
    net, kind = on_device.network(session), "cuda" if segkit.device() == "CUDA" else "cpu"
    read = row_reader(image)[4]
    pixels = read(0, image.height)
    contenders = {
        "network (segkit's session)": lambda: session.run(None, {name: tensor}),
        "network (onnxruntime defaults)": lambda: bare.run(None, {name: tensor}),
        "model input": lambda: model_input(image, spec.preprocess),
        "masks back up": lambda: masks_from_output(output, spec, image.size),
        "cutout": lambda: cutout(image, mask),
        "pixels read (device path)": lambda: read(0, image.height),
        "pixels up (device path)": lambda: ort.OrtValue.ortvalue_from_numpy(pixels, kind, 0),
        "`on_device.cutout`: read, up, graphs, network, down": lambda: on_device.cutout(net, spec, image, kind),
        "segment()": lambda: segkit.segment(image, model=model),
        "segment(), pixels on the host": lambda: _host_pixels(lambda: segkit.segment(image, model=model)),
    }
    median = {key: seconds * 1000 for key, (seconds, _) in interleaved(contenders, repeat, settle=0).items()}
    network = median["network (segkit's session)"]
    print(f"\n{model}, {image.width}x{image.height} ({image.width * image.height / 1e6:.1f} MP), "
          f"medians of {repeat}, {session.get_providers()[0]}")
    print("| step | ms | / network |")
    print("|---|---|---|")
    for key, ms in median.items():
        print(f"| {key} | {ms:.1f} | {ms / network:.2f}x |", flush=True)
    options = Options(model=model)
    on_gpu, on_host = segment_one(image, options, session), _host_pixels(lambda: segment_one(image, options, session))
    print("device path against host path, same session: alpha max difference "
          f"{int(np.abs(np.asarray(on_gpu.mask, np.int16) - np.asarray(on_host.mask)).max())}, cutout "
          f"{int(np.abs(np.asarray(on_gpu.cutout, np.int16) - np.asarray(on_host.cutout)).max())} levels", flush=True)


def network_options(model: str) -> None:
    """The network alone under each CUDA setting segkit could choose, one image and 16 at a time, all
    outputs fetched or only the first: "first" is a shape's first run (cuDNN's algorithm choice, memory)."""
    path = segkit.download(model)
    one = np.random.default_rng(0).normal(size=(1, 3, 320, 320)).astype(np.float32)
    sixteen = np.random.default_rng(1).normal(size=(16, 3, 320, 320)).astype(np.float32)
    cpu = ort.InferenceSession(str(path), _session_options(), providers=["CPUExecutionProvider"])
    want = cpu.run(None, {cpu.get_inputs()[0].name: one})[0]
    free = with_batch_axis(path)
    print(f"\n{model}: the network alone, ms (median; 'first' is a shape's first run)")
    print("| TF32 | cuDNN search | first, 1 image | 1 image | 1 image, first output | first, 16 | 16 | 16, first output "
          "| max difference from the CPU (levels) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for tf32 in ("0", "1"):
        for search in ("HEURISTIC", "EXHAUSTIVE", "DEFAULT"):
            settings = {"use_tf32": tf32, "cudnn_conv_algo_search": search}
            session = ort.InferenceSession(free, _session_options(),
                                           providers=[("CUDAExecutionProvider", settings), "CPUExecutionProvider"])
            name, first_output = session.get_inputs()[0].name, [session.get_outputs()[0].name]
            row = []
            for tensor, repeat in ((one, 10), (sixteen, 5)):
                start = time.perf_counter()
                got = session.run(None, {name: tensor})[0]
                row.append((time.perf_counter() - start) * 1000)
                row += [median_ms(lambda: session.run(None, {name: tensor}), repeat),
                        median_ms(lambda: session.run(first_output, {name: tensor}), repeat)]
                if tensor is one:
                    levels = float(np.abs(got - want).max()) * 255 / max(float(want.max() - want.min()), 1e-6)
            print(f"| {tf32} | {search} | " + " | ".join(f"{ms:.1f}" for ms in row) + f" | {levels:.3f} |", flush=True)


def batch_sizes(model: str, repeat: int = 8) -> None:
    """Why ``BatchingSession`` fills every gathered run up to one size: the free-batch network run
    after run at 16 images, against the same session given 5, 8, 11 and 16 in turn (all seen before)."""
    path = segkit.download(model)
    session = build_session(path, get_model(model), contents=with_batch_axis(path))
    name = session.get_inputs()[0].name
    rng = np.random.default_rng(2)
    tensors = {n: rng.normal(size=(n, 3, 320, 320)).astype(np.float32) for n in (5, 8, 11, 16)}
    same = median_ms(lambda: session.run(None, {name: tensors[16]}), repeat)
    in_turn = interleaved({n: lambda t=t: session.run(None, {name: t}) for n, t in tensors.items()}, repeat, settle=0)
    print(f"\n{model}, free batch size, ms a run (median): 16 every run {same:.1f}; 5, 8, 11, 16 in turn "
          + ", ".join(f"{seconds * 1000:.1f}" for seconds, _ in in_turn.values()), flush=True)


def median_ms(fn, repeat: int) -> float:
    return interleaved({"": fn}, repeat, settle=0)[""][0] * 1000


class _StandInNetwork:
    """Stands in for the network with its own output after ``seconds`` an image off the CPU (a sleep,
    as a GPU's run is for the host): with 0, what is left is the host's work alone."""

    def __init__(self, session, output, seconds: float = 0.0):
        self.session, self.output, self.seconds = session, output, seconds

    def get_inputs(self):
        return self.session.get_inputs()

    def get_outputs(self):
        return self.session.get_outputs()

    def run(self, names, feed):
        images = next(iter(feed.values())).shape[0]
        if self.seconds:
            time.sleep(self.seconds * images)
        return [np.repeat(self.output, images, axis=0)]


def host_capacity(model: str, count: int = 64, network_ms: float = 5.0) -> None:
    """Images per second of everything around the network (decode, resizes, masks, cutout) from 1, 16
    and 32 threads: the ceiling a GPU batch can reach. Then the gathered batch runner against a network
    that takes ``network_ms`` an image off the CPU, as a GPU's does: how well the two overlap."""
    from contextlib import nullcontext
    from concurrent.futures import ThreadPoolExecutor

    from segkit.batch import _Clock, _gathered  # the runner process() uses, given the stand-in
    from segkit.models.batching import BatchingSession

    from .batch_bench import photos as batch_photos

    spec, images = get_model(model), batch_photos(count)
    session = build_session(segkit.download(model), spec)
    tensor = model_input(images[0], spec.preprocess)
    output = session.run([session.get_outputs()[0].name], {session.get_inputs()[0].name: tensor})[0]
    instant, options = _StandInNetwork(session, output), Options(model=model)

    def rate(threads: int) -> float:
        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda i: segment_one(images[i], options, instant, i, in_flight=nullcontext()), range(count)))
        return count / (time.perf_counter() - start)

    def gathered() -> float:
        runner = BatchingSession(_StandInNetwork(session, output, network_ms / 1000), 16)
        start = time.perf_counter()
        _gathered(images, options, runner, _Clock(count, None))
        return count / (time.perf_counter() - start)

    rate(4)
    print(f"\n{model}: host work alone, {count} photos of about 1 MP: " +
          "; ".join(f"{threads} threads {max(rate(threads) for _ in range(2)):.0f} img/s" for threads in (1, 16, 32)) +
          f"; gathered, 16 a run, with a network of {network_ms:g} ms an image off the CPU "
          f"({1000 / network_ms:.0f} img/s alone): {max(gathered() for _ in range(2)):.0f} img/s")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["u2netp"])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--options", action="store_true", help="also time the network under each CUDA setting")
    parser.add_argument("--host", action="store_true", help="also time the host's work alone from 1, 16 and 32 threads")
    args = parser.parse_args(argv)
    print(f"# segkit {segkit.__version__}, device {segkit.device()}, GPU {gpu_name()}, onnxruntime "
          f"{ort.__version__}, {os.cpu_count()} cores, python {platform.python_version()}")
    for model in args.models:
        print(f"{model}: session providers {session_for(get_model(model)).get_providers()}")
        compare(model)
        single(model, args.repeat)
        if args.options:
            network_options(model)
            batch_sizes(model)
        if args.host:
            host_capacity(model)


if __name__ == "__main__":
    main()
