"""Cold start: a new process's first segment() against its second, plain and with matting.

Each row is a fresh process on a fresh numba cache folder (``NUMBA_CACHE_DIR``):
"empty" is a process nobody prepared (a Space right after a restart);
"warmed" first runs ``python -m segkit warm-up`` into that folder, as ``make
setup`` does. The first call includes building the model's session; "extra" is
first minus warm, the cost a first visitor pays.

    .venv/bin/python -m bench.cold_start [--model u2netp] [--megapixels 4.6]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = """
import json, sys, time
start = time.perf_counter()
import segkit
imported = time.perf_counter()
from bench.run import photo
image = photo({megapixels})
times = []
for _ in range(3):
    t = time.perf_counter()
    segkit.segment(image, model={model!r}, alpha_matting={matting})
    times.append(time.perf_counter() - t)
print(json.dumps(dict(imported=imported - start, first=times[0], warm=min(times[1:]))))
"""


def fresh_process(code: str, env: dict) -> str:
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if run.returncode:
        raise RuntimeError(run.stderr[-2000:])
    return run.stdout


def cold_start(model: str = "u2netp", megapixels: float = 4.6) -> list[dict]:
    """One row per (cache state, matting): import, first and warm call seconds."""
    rows = []
    for state in ("empty", "warmed"):
        for matting in (False, True):
            with tempfile.TemporaryDirectory(prefix="segkit-numba-") as folder:
                env = {**os.environ, "NUMBA_CACHE_DIR": folder}
                setup = float("nan")
                if state == "warmed":
                    start = time.perf_counter()
                    fresh_process("from segkit.cli import main; main(['warm-up'])", env)
                    setup = time.perf_counter() - start
                out = json.loads(fresh_process(CHILD.format(megapixels=megapixels, model=model, matting=matting),
                                               env).splitlines()[-1])
            rows.append(dict(cache=state, matting=matting, setup=setup, **out))
    return rows


def print_table(rows: list[dict], model: str, megapixels: float) -> None:
    print(f"\ncold start, {model}, {megapixels:g} MP, each row a fresh process on a fresh numba cache:")
    print("| numba cache | matting | warm-up at setup | import | first call | warm call | extra |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        setup = "-" if r["cache"] == "empty" else f"{r['setup']:.1f} s"
        print(f"| {r['cache']} | {'yes' if r['matting'] else 'no'} | {setup} | {r['imported']:.2f} s | "
              f"{r['first']:.2f} s | {r['warm']:.2f} s | {r['first'] - r['warm']:+.2f} s |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--megapixels", type=float, default=4.6)
    args = parser.parse_args()
    print_table(cold_start(args.model, args.megapixels), args.model, args.megapixels)


if __name__ == "__main__":
    main()
