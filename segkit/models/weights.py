"""The weight store: find, fetch, verify and cache model files.

Files live where rembg keeps them (``$U2NET_HOME``, default ``~/.u2net``) so the
two tools share one cache; rembg's newer ``models/<name>/`` folders are read
too. Every file is checked against the registry's checksum, every download is
written to a temporary name and renamed only once verified, and a per-file lock
makes concurrent processes end with one good copy. A download cut mid-way keeps
its hidden ``.part`` file and the next try resumes it (``segkit.models.download``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Optional

from filelock import FileLock

from ..errors import ModelNotAvailableError
from .download import FETCHERS, Progress
from .registry import ModelSpec, Source, WeightFile

log = logging.getLogger("segkit")
_verified: dict[tuple[str, int, int], bool] = {}
_verified_lock = threading.Lock()
_SETTLED_SECONDS = 2  # longer than a filesystem's timestamp step, so a stamped file can't change unseen


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
    """True when ``path`` holds the expected bytes; remembered per (path, size, mtime) in this
    process, and across processes by a stamp file beside it (see :func:`_stamp`)."""
    if not checksum_checking_enabled() or not weights.checksum:
        return path.is_file()
    try:
        st = path.stat()
    except OSError:
        return False
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _verified_lock:
        if key in _verified:
            return _verified[key]
    stamp, stamp_file = _stamp(st, weights.checksum), stamp_path(path)
    try:
        ok = stamp_file.read_text() == stamp
    except (OSError, UnicodeDecodeError):
        ok = False
    if not ok:
        algorithm, expected = weights.checksum.split(":", 1)
        ok = file_digest(path, algorithm) == expected
        if ok and time.time() - st.st_ctime > _SETTLED_SECONDS:
            try:
                stamp_file.write_text(stamp)
            except OSError:
                pass  # a read-only cache: hashed again by the next process, as before
    with _verified_lock:
        _verified[key] = ok
    return ok


def stamp_path(path: Path) -> Path:
    """The stamp beside a verified weight file (bench/verify_stamp.py deletes it to measure a hash)."""
    return path.with_name(f".{path.name}.verified")


def _stamp(st: os.stat_result, checksum: str) -> str:
    """What a verified file looked like: a new process trusts the file while it still looks so
    rather than hashing it again (a 1 GB model at every start). Any write changes its ctime, which
    no one can set; a file is stamped only once it has been still for a while (git's racy-clean
    rule), since a write within the same timestamp step would not show."""
    return f"{checksum} size={st.st_size} mtime={st.st_mtime_ns} ctime={st.st_ctime_ns} inode={st.st_ino}\n"


def candidate_paths(spec: ModelSpec, weights: Optional[WeightFile] = None) -> list[Path]:
    """Where one of a model's files may already be: our cache first, then rembg's newer layout."""
    if spec.user_file:
        return [Path(spec.user_file)]
    w = weights or spec.weights
    return [cache_dir() / w.filename, _rembg_model_dir(w.folder or Path(w.filename).stem) / w.filename]


def find_cached(spec: ModelSpec, weights: Optional[WeightFile] = None) -> Optional[Path]:
    """A verified copy of one of the model's files (its main one by default), or None."""
    for path in candidate_paths(spec, weights):
        if path.is_file() and verify(path, weights or spec.weights):
            return path
    return None


def is_cached(spec: ModelSpec) -> bool:
    """Every file the model runs is here (for a converted model, the conversion or its source)."""
    if spec.converter in _SHARED_CONVERSIONS and _find_conversion(spec):
        return True
    return all(find_cached(spec, w) is not None for w in spec.files)


_FETCHERS = FETCHERS  # by source kind (tests swap entries)


def sources(weights: WeightFile) -> tuple[Source, ...]:
    """Where a file is fetched from: the registry's sources, or only ``$SEGKIT_WEIGHTS_MIRROR/<filename>``
    when that is set, for a server that may not reach GitHub or Hugging Face (the mirror can be a copy
    of a weight cache folder served over HTTP(S)). A person's own file has no source either way."""
    mirror = os.getenv("SEGKIT_WEIGHTS_MIRROR", "").strip()
    if mirror and weights.sources:
        return (Source("url", f"{mirror.rstrip('/')}/{weights.filename}"),)
    return weights.sources


def _fetch_one(source: Source, weights: WeightFile, final: Path, progress: Progress) -> None:
    """One source into ``.<name>.part`` (kept after a cut HTTPS download, to resume), then verified and renamed."""
    part = final.parent / f".{final.name}.part"
    try:
        _FETCHERS[source.kind](source, part, progress)
    except BaseException:
        if source.kind != "url":  # only a plain download can be resumed from its bytes
            part.unlink(missing_ok=True)
        raise
    if not verify(part, weights):
        part.unlink(missing_ok=True)  # whole but wrong (or a stale partial): the next try starts over
        raise OSError(f"checksum mismatch (expected {weights.checksum})")
    part.chmod(0o644)  # the cache is shared (rembg, other users)
    os.replace(part, final)


def manual_install_hint(spec: ModelSpec, weights: Optional[WeightFile] = None) -> str:
    w = weights or spec.weights
    if not sources(w):
        return f"put the file back under {cache_dir()}"
    return (f"download {sources(w)[0].describe()} by hand and save it as {cache_dir() / w.filename} "
            f"({w.checksum}), or run `python -m segkit download {spec.name}` where the network allows")


def licence_notice(spec: ModelSpec) -> str:
    """What a person must know before fetching a model whose licence forbids commercial use ("" otherwise)."""
    if not spec.non_commercial:
        return ""
    return f"{spec.name} is licensed {spec.licence}: non-commercial use only"


def fetch_weights(spec: ModelSpec, progress: Progress = None) -> Path:
    """Return a verified local copy of the model's main file, downloading every file it needs.

    Sources are tried in registry order; a corrupt cached file is replaced. When
    every source fails the error names the model, each source with its reason,
    and how to install the file by hand.
    """
    paths = [_fetch_file(spec, w, progress) for w in spec.files]
    return paths[0]


def _fetch_file(spec: ModelSpec, weights: WeightFile, progress: Progress) -> Path:
    found = find_cached(spec, weights)
    if found:
        return found
    if licence_notice(spec):
        log.warning("%s; downloading %.0f MB", licence_notice(spec), weights.size_mb)
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / weights.filename
    with FileLock(str(folder / f".{final.name}.lock"), timeout=3600):
        found = find_cached(spec, weights)  # another process may have finished meanwhile
        if found:
            return found
        failures = []
        for source in sources(weights):
            try:
                _fetch_one(source, weights, final, progress)
                return final
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                failures.append((source.describe(), f"{type(exc).__name__}: {exc}"[:300]))
                log.warning("model %s: %s failed, trying the next source", spec.name, source.describe())
    if final.exists() and not verify(final, weights):
        reason = "the cached file is corrupt and could not be replaced"
    elif spec.user_file:
        reason = f"your file {spec.user_file} is gone"
    else:
        reason = "no source could be reached"
    raise ModelNotAvailableError(spec.name, reason, failures, manual_install_hint(spec, weights))


def _modnet_to_onnx(checkpoint: Path, target: Path) -> None:
    try:
        from .modnet.convert import checkpoint_to_onnx  # torch is only needed for this step
    except ImportError as exc:  # a library install without the [modnet] extra
        raise ModelNotAvailableError(target.stem, f"converting MODNet's checkpoint to ONNX needs torch ({exc})",
                                     hint='pip install "segkit[modnet]", or any recent torch') from exc
    checkpoint_to_onnx(checkpoint, target)


def _to_fp16(source: Path, target: Path) -> None:
    """rembg's own conversion (birefnet-general-fp16), so both tools make the same file."""
    try:
        import onnx
        from onnxconverter_common import float16
    except ImportError as exc:
        raise ModelNotAvailableError(target.stem, "converting to float16 needs onnx and onnxconverter-common",
                                     hint="pip install onnxconverter-common") from exc
    model = float16.convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    part = target.parent / f".{target.name}.part"
    onnx.save(model, str(part))
    os.replace(part, target)


_CONVERTERS = {"modnet": _modnet_to_onnx, "fp16": _to_fp16}
# Conversions rembg also makes: saved under rembg's name ("<model>.onnx") so either tool reuses the other's.
_SHARED_CONVERSIONS = {"fp16"}


def _find_conversion(spec: ModelSpec) -> Optional[Path]:
    name = f"{spec.name}.onnx"
    return next((p for p in (cache_dir() / name, _rembg_model_dir(spec.name) / name) if p.is_file()), None)


def converted_onnx(spec: ModelSpec, checkpoint: Path, progress: Progress = None) -> Path:
    """The ONNX file built once from a downloaded file.

    A private conversion (MODNet) is named after its checkpoint's digest, tying it
    to the exact bytes it came from, so a replaced or tampered checkpoint can never
    reuse an old conversion. A shared one (float16) keeps rembg's name instead.
    """
    if spec.converter in _SHARED_CONVERSIONS:
        target = cache_dir() / f"{spec.name}.onnx"
    else:
        digest = file_digest(checkpoint, "sha256")[:16]
        target = checkpoint.parent / f"{Path(spec.weights.filename).stem}.{digest}.onnx"
    if target.is_file():
        return target
    with FileLock(str(target.parent / f".{target.name}.lock"), timeout=3600):
        if not target.is_file():
            if progress:
                progress(0.0, f"converting {spec.name} (once)")
            _CONVERTERS[spec.converter](checkpoint, target)
    return target


def part_path(spec: ModelSpec, index: int) -> Path:
    """A further file of the model (SAM's decoder), fetched with the main one by ``model_path``."""
    return _fetch_file(spec, spec.parts[index], None)


def model_path(spec: ModelSpec, progress: Progress = None) -> Path:
    """The ONNX file for a model, fetched (and converted, where the download is not what runs) if needed."""
    if spec.converter in _SHARED_CONVERSIONS and _find_conversion(spec):
        return _find_conversion(spec)
    path = fetch_weights(spec, progress)
    if spec.converter:
        path = converted_onnx(spec, path, progress)
    return path
