"""SEGKIT_* settings: one declaration each (segkit/settings.py), a wrong value named with its variable
wherever it is read, before the command line or the app does any work."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import segkit
from segkit import cli, settings

BAD = {"count": ["0", "-1", "1.5", "x", "nan"], "amount": ["0", "-3", "abc", "inf"],
       "choice": ["gpu", "fastest"], "switch": ["maybe", "2"]}


@pytest.mark.parametrize("name", list(settings.SETTINGS))
def test_every_setting_names_itself_when_wrong_and_the_cli_stops_before_work(name, monkeypatch, tmp_path, capsys):
    """Before, SEGKIT_MAX_PIXELS=abc made each image fail as "processing failed (ValueError)",
    SEGKIT_THREADS=x was blamed on the model file, SEGKIT_DEVICE=gpu and SEGKIT_TF32=maybe were
    quietly ignored, and SEGKIT_SAM_EMBEDDINGS=x stopped `import segkit` with a bare int() error."""
    kind = settings.SETTINGS[name].kind
    for value in BAD[kind]:
        monkeypatch.setenv(name, value)
        with pytest.raises(segkit.InvalidInputError, match=rf"^{name} must be .* \(got '{value}'\)$"):
            settings.read(name)
        assert cli.main(["remove", str(tmp_path / "missing.png"), "-o", str(tmp_path / "out")]) == 2
        assert capsys.readouterr().err.strip().startswith(f"error: {name} must be ")
    assert not (tmp_path / "out").exists()


def test_values_are_read_as_declared(monkeypatch):
    for name, raw, value in (("SEGKIT_DEVICE", " CPU ", "cpu"), ("SEGKIT_CUDNN_SEARCH", "exhaustive", "EXHAUSTIVE"),
                             ("SEGKIT_TF32", "yes", True), ("SEGKIT_GPU_PIXELS", "off", False),
                             ("SEGKIT_MAX_BATCH", "4", 4), ("SEGKIT_MAX_BATCH", "4.0", 4),
                             ("SEGKIT_MAX_VIDEO_MB", "0.5", 0.5), ("SEGKIT_PROBE_MODELS", "", True)):
        monkeypatch.setenv(name, raw)
        assert settings.read(name) == value, (name, raw)
    monkeypatch.delenv("SEGKIT_THREADS", raising=False)
    assert settings.read("SEGKIT_THREADS") is None  # unset: onnxruntime's own choice


def test_the_library_names_a_wrong_setting_where_it_is_read(monkeypatch):
    monkeypatch.setenv("SEGKIT_MAX_PIXELS", "abc")
    with pytest.raises(segkit.InvalidInputError, match=r"^SEGKIT_MAX_PIXELS must be a whole number of pixels"):
        segkit.segment(np.zeros((8, 8, 3), np.uint8))


@pytest.mark.skipif(importlib.util.find_spec("gradio") is None, reason="the app needs Gradio")
def test_the_app_stops_at_start_with_one_line():
    """The app read SEGKIT_MAX_BATCH as its page was built: a bare int() error and a traceback.
    Now it stops before it imports Gradio, at once."""
    run = subprocess.run([sys.executable, "app.py", "--port", "0"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "SEGKIT_MAX_BATCH": "x"}, cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-500:]
    assert run.stderr.strip().splitlines()[-1] == "error: SEGKIT_MAX_BATCH must be a whole number of photos, 1 or more " \
                                                  "(got 'x')"
