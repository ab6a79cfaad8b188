"""Session memory settings side by side: onnxruntime's default (an arena per session, with a
memory pattern per input shape) against segkit's (one shared CPU arena, no patterns).
Speed interleaved in one process with bit-identical outputs checked; resident memory with
u2netp and u2net loaded and run, one fresh process per setting. Then two threads running one
model at once, free and queued as segkit's CPU sessions queue them (``OneRunAtATime``).

    python -m bench.session_arena [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

import segkit
from segkit.models import sessions
from segkit.models.lookup import get_model
from segkit.models.weights import model_path

from .run import _rss_kb

MODELS = [m for m in ("u2netp", "u2net") if segkit.is_cached(m)]


def session(model: str, shared: bool) -> ort.InferenceSession:
    options = sessions._session_options()  # segkit's
    if not shared:
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_path(get_model(model))), options, providers=sessions.CPU)


def feed(s: ort.InferenceSession) -> dict:
    return {s.get_inputs()[0].name: np.random.default_rng(0).random((1, 3, 320, 320), np.float32)}


def rss_mb() -> float:
    return _rss_kb("VmRSS:") / 1024


def speed(model: str, runs: int) -> str:
    contenders = {shared: session(model, shared) for shared in (False, True)}
    times, outputs = {False: [], True: []}, {}
    for _ in range(runs):
        for shared, s in contenders.items():
            time.sleep(0.3)  # idle intra-op threads settle (see above)
            start = time.perf_counter()
            outputs[shared] = s.run(None, feed(s))[0]
            times[shared].append(time.perf_counter() - start)
    default, ours = statistics.median(times[False]), statistics.median(times[True])
    return (f"| {model} | {default * 1000:.0f} ms | {ours * 1000:.0f} ms | {ours / default:.2f}x "
            f"| {np.array_equal(outputs[False], outputs[True])} |")


def memory(shared: bool) -> float:
    """Resident MB a fresh process gains from loading every model and running each 5 times."""
    code = (f"import bench.session_arena as b; before = b.rss_mb(); ss = [b.session(m, {shared}) for m in b.MODELS]; "
            "[s.run(None, b.feed(s)) for _ in range(5) for s in ss]; print(b.rss_mb() - before)")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


OVERLAP = """
import sys, threading, time
import bench.session_arena as b
from segkit.models import sessions
from segkit.models.lookup import get_model
from segkit.models.weights import model_path

spec = get_model(sys.argv[1])
queued = sessions.build_session(model_path(spec), spec)
s = queued if sys.argv[2] == "queued" else queued.session
s.run(None, b.feed(s))
before = b._rss_kb("VmRSS:")
start = time.perf_counter()
for _ in range(int(sys.argv[3])):
    pair = [threading.Thread(target=s.run, args=(None, b.feed(s))) for _ in range(2)]
    [t.start() for t in pair]
    [t.join() for t in pair]
hwm = b._rss_kb("VmHWM:")
print((time.perf_counter() - start) / int(sys.argv[3]), (hwm - before) / 1024)
"""


def overlap(model: str, pairs: int) -> str:
    """Two runs started together, ``pairs`` times, in a fresh process per way: seconds a pair, MB gained."""
    row = [model]
    for way in ("free", "queued"):
        out = subprocess.run([sys.executable, "-c", OVERLAP, model, way, str(pairs)], capture_output=True, text=True,
                             check=True).stdout.split()
        row += [f"{float(out[0]):.2f} s", f"{float(out[1]):.0f} MB"]
    return "| " + " | ".join(row) + " |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print("| model | default | segkit | segkit/default | same output |\n|---|---|---|---|---|")
    for model in MODELS:
        print(speed(model, args.runs), flush=True)
    print(f"\nresident MB with {' and '.join(MODELS)} loaded and run: default {memory(False):.0f}, "
          f"segkit {memory(True):.0f}")
    print("\ntwo threads, one model: | model | at once, a pair | peak gained | queued, a pair | peak gained |")
    for model in MODELS:
        print(overlap(model, 5), flush=True)


if __name__ == "__main__":
    main()
