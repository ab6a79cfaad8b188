"""segkit.warmup: numba's cache goes to a folder segkit can write, and the warm-up
compiles every kernel signature that requests use, so no request compiles."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(code, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "SEGKIT_CACHE")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


CACHE_DIR = "import segkit, numba.core.config as c; print(c.CACHE_DIR)"


def test_cache_folder_choice(tmp_path):
    assert run(CACHE_DIR, SEGKIT_CACHE=str(tmp_path)) == str(tmp_path / "numba")
    assert run(CACHE_DIR, NUMBA_CACHE_DIR=str(tmp_path / "mine"), SEGKIT_CACHE=str(tmp_path)) == str(tmp_path / "mine")
    # a folder segkit cannot write (here: below a file) falls back to the user's cache folder
    (tmp_path / "file").write_text("")
    got = run(CACHE_DIR, SEGKIT_CACHE=str(tmp_path / "file"), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert got == str(tmp_path / "xdg" / "segkit" / "numba")


def test_numba_imported_before_segkit_still_uses_the_folder(tmp_path):
    assert run("import numba; " + CACHE_DIR, SEGKIT_CACHE=str(tmp_path)) == str(tmp_path / "numba")


@pytest.mark.slow  # compiles every kernel into an empty folder
def test_warm_up_cli_fills_the_folder(tmp_path):
    run("from segkit.cli import main; main(['warm-up'])", SEGKIT_CACHE=str(tmp_path))
    assert list((tmp_path / "numba").rglob("*.nbi"))


COVERAGE = """
import json, gc
import numpy as np
from PIL import Image
from skimage import data
import segkit
from numba.core.registry import CPUDispatcher

def signatures():
    return {o.py_func.__module__ + "." + o.py_func.__qualname__: len(o.signatures)
            for o in gc.get_objects() if type(o) is CPUDispatcher and o.py_func.__module__.startswith("segkit")}

segkit.warm_up(background=True).join()
before = signatures()
photo = Image.fromarray(data.chelsea())
# the matting band's crop in the middle of the image (the cat on a wider canvas) and reaching every
# edge (noise, where the model is unsure everywhere): kernels must not be typed by a crop's layout
centred = Image.new("RGB", (photo.width * 3, photo.height * 2), (200, 190, 180))
centred.paste(photo, (photo.width, photo.height // 2))
noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), np.uint8))
tall = photo.resize((8, 900))  # over 100 times taller than wide: Pillow's own resize path
for matting in (False, True):
    for image in (photo, np.asarray(photo), photo.convert("L"), photo.convert("RGBA"), centred, noise, tall):
        segkit.segment(image, model="u2netp", alpha_matting=matting, post_process_mask=matting)
after = signatures()
print(json.dumps({name: [before.get(name, 0), count] for name, count in after.items() if before.get(name) != count}))
"""


def test_requests_after_warm_up_compile_nothing(u2netp_path):
    assert json.loads(run(COVERAGE)) == {}


BESIDE = """
import json, threading
from skimage import data
import segkit
from segkit.pixels import matting, resize

ran = []
for module in (resize, matting):
    def recorded(original=module.warm_up, name=module.__name__.rsplit(".", 1)[-1]):
        ran.append([name, threading.current_thread().name])
        original()
    module.warm_up = recorded

def after(**options):
    segkit.segment(data.chelsea()[:80, :100], model="u2netp", **options)
    for thread in threading.enumerate():
        if thread.name == "segkit-kernels":
            thread.join()
    return list(ran)

print(json.dumps([after(), after(), after(alpha_matting=True), after(alpha_matting=True)]))
"""


def test_a_first_call_loads_the_kernels_it_needs_beside_its_session_build(u2netp_path):
    """The first call of a process loads the resize kernels in a thread while its session builds
    (bench/RESULTS.md, cold start), once; matting's only once a call asks for matting."""
    plain, again, matted, matted_again = json.loads(run(BESIDE))
    assert plain == again == [["resize", "segkit-kernels"]]
    assert matted == matted_again == plain + [["matting", "segkit-kernels"]]
