"""Gathered network runs (the GPU batch path) against the network alone, one run per image and batched.

    .venv/bin/python -m bench.batch_bench [--photos 64] [--batch 16] [--repeat 2] [--timeline]

Photos of 0.75-1.25 MP (scikit-image's, resized). "network, one per run" is the
pooled session on prepared inputs; "network, batched" is the same model with a
free batch size, ``--batch`` inputs per run; "process(), one at a time" and
"process(), gathered" are the whole pipeline with ``SEGKIT_NETWORK_BATCH`` at 1
and at ``--batch``. On a GPU the target is gathered >= 80% of the batched
network; on the CPU gathering is off by default and this row shows why.
Contenders alternate; the best of ``--repeat`` rounds is kept. ``--timeline`` then
splits gathered passes into the wait for the first run, each run, the gaps between
runs and the tail after the last: where a batch loses time against the network's own.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from PIL import Image

import segkit
from segkit.models.batching import SessionStandIn, with_batch_axis
from segkit.models.lookup import get_model
from segkit.models.predict import model_input
from segkit.models.sessions import POOL, build_session, session_for


def photos(count: int) -> list[Image.Image]:
    from skimage import data

    sources = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    out = []
    for i in range(count):
        image = Image.fromarray(sources[i % len(sources)])
        width = int(((0.75 + 0.25 * (i % 3)) * 1e6 * image.width / image.height) ** 0.5)
        out.append(image.resize((width, width * image.height // image.width), Image.Resampling.BILINEAR))
    return out


def rate(fn, count: int) -> float:
    start = time.perf_counter()
    fn()
    return count / (time.perf_counter() - start)


class _TimedRuns(SessionStandIn):
    """The free-batch session, noting when each run starts and ends."""

    def __init__(self, session, spans: list):
        self.session, self.spans = session, spans

    def _timed(self, call, *args):
        start = time.perf_counter()
        result = call(*args)
        self.spans.append((start, time.perf_counter()))
        return result

    def run(self, *args):
        return self._timed(self.session.run, *args)

    def run_with_iobinding(self, *args):
        return self._timed(self.session.run_with_iobinding, *args)


def timeline(images: list, model: str, passes: int = 5) -> None:
    """Gathered passes on a warm session, fastest first, in ms."""
    session, spans, lines = session_for(get_model(model)), [], []
    session._free = _TimedRuns(session._free, spans)
    for _ in range(passes):
        spans.clear()
        start = time.perf_counter()
        segkit.process(images, model=model)
        total = (time.perf_counter() - start) * 1000
        marks = [(moment - start) * 1000 for span in spans for moment in span]  # each run's start and end
        runs = [marks[i + 1] - marks[i] for i in range(0, len(marks), 2)]
        gaps = [marks[i + 1] - marks[i] for i in range(1, len(marks) - 1, 2)]
        lines.append((total, f"| {len(images) / total * 1000:.0f} img/s | {marks[0]:.1f} | {_joined(runs)} "
                             f"| {_joined(gaps)} | {total - marks[-1]:.1f} |"))
    print("\n| gathered pass | to the first run | runs | gaps | after the last run |\n|---|---|---|---|---|")
    print("\n".join(line for _, line in sorted(lines)))


def _joined(values: list[float]) -> str:
    return " / ".join(f"{value:.1f}" for value in values)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--timeline", action="store_true", help="then time the parts of gathered passes")
    args = parser.parse_args(argv)
    spec, images = get_model(args.model), photos(args.photos)
    path = segkit.download(args.model)
    single = build_session(path, spec)
    free = build_session(path, spec, contents=with_batch_axis(path))
    name = single.get_inputs()[0].name
    tensors = [model_input(image, spec.preprocess) for image in images]
    chunks = [np.concatenate(tensors[i:i + args.batch]) for i in range(0, len(tensors), args.batch)]

    def pipeline(per_run: int):
        os.environ["SEGKIT_NETWORK_BATCH"] = str(per_run)
        POOL.clear()
        segkit.process(images, model=args.model)  # a server's steady state: the sessions made and run once
        return lambda: segkit.process(images, model=args.model)

    contenders = {
        "network, one per run": lambda: [single.run(None, {name: t}) for t in tensors],
        "network, batched": lambda: [free.run(None, {name: c}) for c in chunks],
    }
    best = {key: 0.0 for key in [*contenders, "process(), one at a time", "process(), gathered"]}
    for _ in range(args.repeat):
        for key, fn in contenders.items():
            fn()  # warm (first batched shapes allocate)
            best[key] = max(best[key], rate(fn, len(images)))
        best["process(), one at a time"] = max(best["process(), one at a time"], rate(pipeline(1), len(images)))
        best["process(), gathered"] = max(best["process(), gathered"], rate(pipeline(args.batch), len(images)))
    print(f"# {args.model}, {segkit.device()}, {os.cpu_count()} cores, {args.photos} photos of 0.75-1.25 MP, "
          f"{args.batch} per batched run, best of {args.repeat}")
    print("| " + " | ".join(best) + " | gathered / batched network | gathered / one at a time |")
    print("|" + "---|" * (len(best) + 2))
    print("| " + " | ".join(f"{value:.1f} img/s" for value in best.values()) +
          f" | {best['process(), gathered'] / best['network, batched']:.2f} "
          f"| {best['process(), gathered'] / best['process(), one at a time']:.2f}x |")
    if args.timeline:  # the session pipeline(args.batch) left, gathering
        timeline(images, args.model)
    os.environ.pop("SEGKIT_NETWORK_BATCH")


if __name__ == "__main__":
    main()
