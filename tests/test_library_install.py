"""`pip install <this repository>` brings requirements-library.txt's packages only: no Gradio, no torch, no
rembg. These run the library and its command in a process where the packages it does not bring cannot be
imported, so a library user, a Ray worker or ComfyUI (whose own torch stays as it is) gets a working segkit."""

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from segkit.models.lookup import get_model
from helpers import png_bytes
from video_clips import make_clip

ROOT = Path(__file__).resolve().parents[1]
NOT_IN_THE_LIBRARY = ("gradio", "gradio_client", "skimage", "torch", "rembg", "pooch")

# Run in a new process: any import of the packages above fails, as where they are not installed.
PREAMBLE = f"""
import sys
class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {NOT_IN_THE_LIBRARY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NotInstalled())
"""


def run_without_the_app(code: str, folder: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PREAMBLE + code], cwd=folder, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_the_library_and_its_command_run_without_gradio_torch_or_rembg(tmp_path, photos, u2netp_path):
    (tmp_path / "cat.png").write_bytes(png_bytes(photos["chelsea"]))
    make_clip(tmp_path / "clip.mp4")
    run = run_without_the_app("""
import json, segkit
from segkit import cli
matted = segkit.segment("cat.png", alpha_matting=True)
codes = [cli.main(["remove", "cat.png", "-o", "cut.png", "-q"]),
         cli.main(["remove", "clip.mp4", "-o", "out", "--format", "webm", "-q"])]
print(json.dumps({"codes": codes, "matted": matted.mode}))
""", tmp_path)
    assert run.returncode == 0, run.stderr[-1500:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == {"codes": [0, 0], "matted": "RGBA"}
    assert Image.open(tmp_path / "cut.png").mode == "RGBA"
    assert (tmp_path / "out" / "clip.webm").stat().st_size > 0

    # the blocker does block: the app needs Gradio
    app = run_without_the_app("import app", tmp_path)
    assert app.returncode != 0 and "No module named 'gradio'" in app.stderr


def test_modnet_without_torch_says_how_to_get_it(tmp_path, photos):
    """MODNet's checkpoint is converted to ONNX once, with torch: the `[modnet]` extra."""
    checkpoint = tmp_path / get_model("modnet-p").weights.filename
    checkpoint.write_bytes(b"a checkpoint")  # found in the cache (checksums skipped): conversion is next
    (tmp_path / "cat.png").write_bytes(png_bytes(photos["chelsea"]))
    run = run_without_the_app("""
import segkit
try:
    segkit.segment("cat.png", model="modnet-p")
except segkit.ModelNotAvailableError as exc:
    print(exc)
""", tmp_path, U2NET_HOME=str(tmp_path), SEGKIT_SKIP_CHECKSUM="1")
    assert run.returncode == 0, run.stderr[-1500:]
    assert "needs torch" in run.stdout and 'pip install "segkit[modnet]"' in run.stdout, run.stdout


def test_the_requirement_files_fit_together():
    """requirements.txt (the app, Spaces, CI) is the library's list plus MODNet's and the app's;
    pyproject.toml installs the library's list, with MODNet's as an extra."""
    app = (ROOT / "requirements.txt").read_text().splitlines()
    assert "-r requirements-library.txt" in app and "-r requirements-modnet.txt" in app
    project = (ROOT / "pyproject.toml").read_text()
    assert 'dependencies = { file = ["requirements-library.txt"] }' in project
    assert 'modnet = { file = ["requirements-modnet.txt"] }' in project
    library = {line.split("==")[0].strip().lower() for line in
               (ROOT / "requirements-library.txt").read_text().splitlines() if line and not line.startswith("#")}
    assert "numpy" in library and library.isdisjoint({"gradio", "gradio_client", "scikit-image", "torch", "rembg"})
