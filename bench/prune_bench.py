"""Pruning the app's results folder, which every request does, on a full store.

    .venv/bin/python -m bench.prune_bench [--folders 1400]

SEGKIT_OUTPUT_MAX_MB's default (2048) at about 1.5 MB a request holds some 1400 request
folders. "summed each time" forgets every folder's size before each prune, as segkit did;
"settled sizes kept" is segkit's prune, which sums a folder again only when a file comes or goes.
Contenders alternate; medians of ``--repeat``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from segkit import service

from .run import interleaved


def full_store(folders: int) -> Path:
    base, settled = Path(tempfile.mkdtemp(prefix="segkit-prune-")), time.time() - 600
    for _ in range(folders):
        folder = base / uuid.uuid4().hex
        folder.mkdir()
        for name in ("cutout.png", "mask.png", "cutouts.zip"):
            (folder / name).write_bytes(b"x" * 500)
        os.utime(folder, (settled, settled))
    return base


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", type=int, default=1400)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    base = full_store(args.folders)
    contenders = {
        "summed each time": lambda: (service._summed.clear(), service.prune_outputs(base)),
        "settled sizes kept": lambda: service.prune_outputs(base),
    }
    try:
        median = interleaved(contenders, args.repeat, settle=0)
    finally:
        shutil.rmtree(base)
    print(f"\nprune on {args.folders} request folders, medians of {args.repeat}:")
    for name, (seconds, _) in median.items():
        print(f"| {name} | {seconds * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
