"""The real app on a localhost port, driven by gradio_client as a program would."""

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import requests
from gradio_client import handle_file
from PIL import Image

import corpus
import segkit.service
from appserver import REPO, AppServer
from helpers import png_bytes

SEED_PARAMETERS = ["alpha_matting", "alpha_matting_foreground_threshold", "alpha_matting_background_threshold",
                   "alpha_matting_erode_size", "post_process_mask"]


@pytest.fixture(scope="module")
def server(u2netp_path):
    app = AppServer()
    yield app
    app.stop()


@pytest.fixture
def files(tmp_path, photos):
    paths = {}
    for name in ("chelsea", "coffee"):
        paths[name] = tmp_path / f"{name}.png"
        paths[name].write_bytes(png_bytes(photos[name]))
    paths["broken"] = tmp_path / "broken.png"
    paths["broken"].write_bytes(png_bytes(photos["coffee"])[:700])
    return paths


def batch(client, paths, background="transparent", colour="#ffffff", post_process_mask=False):
    # the README's positional order: files, the seed's parameters, then the background controls
    return client.predict([handle_file(str(p)) for p in paths], "u2netp", False, 240, 20, 10, post_process_mask,
                          background, colour, None, api_name="/remove_background_batch")


def test_single_image_endpoint_returns_rgba_png_of_input_size(client, files):
    # the README's call, argument for argument
    out = client.predict(handle_file(str(files["chelsea"])), "u2netp", False, 240, 20, 10, False,
                         api_name="/remove_background")
    image = Image.open(out)
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (451, 300)
    alpha = np.asarray(image)[:, :, 3]
    assert 0.05 < (alpha > 127).mean() < 0.95


def test_batch_with_a_bad_file_returns_the_rest_and_names_it(client, files):
    gallery, zip_path, before_after, mask, classes, notes = batch(
        client, [files["chelsea"], files["broken"], files["coffee"]], post_process_mask=True)
    assert [Image.open(item["image"]).size for item in gallery] == [(451, 300), (600, 400)]
    assert all(Image.open(item["image"]).format == "PNG" and Image.open(item["image"]).mode == "RGBA"
               for item in gallery)
    assert [item["caption"] for item in gallery] == ["chelsea.png · 451×300", "coffee.png · 600×400"]
    assert notes.startswith("**2 cutouts in ") and " s**" in notes
    assert "broken.png" in notes and "truncated or corrupt" in notes
    with zipfile.ZipFile(zip_path) as archive:
        assert sorted(archive.namelist()) == ["chelsea.png", "coffee.png"]
    assert [Image.open(path).size for path in before_after] == [(451, 300), (451, 300)]
    assert Image.open(mask).mode == "L" and classes == []


def test_colour_background_gives_an_opaque_image(client, files):
    gallery, *_ = batch(client, [files["coffee"]], "colour", "#00ff00")
    image = np.asarray(Image.open(gallery[0]["image"]))
    assert image.shape == (400, 600, 3) and (image.reshape(-1, 3) == [0, 255, 0]).all(axis=1).mean() > 0.05


def test_endpoints_take_the_seed_parameters_by_name(client, files):
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/remove_background", "/remove_background_batch", "/segment_video",
                                           "/cancel_video"}
    for name, first in (("/remove_background", "image"), ("/remove_background_batch", "files")):
        names = [p["parameter_name"] for p in api["named_endpoints"][name]["parameters"]]
        assert names[:7] == [first, "model", *SEED_PARAMETERS]
    batch_parameters = api["named_endpoints"]["/remove_background_batch"]["parameters"]
    assert [p["parameter_name"] for p in batch_parameters][7:] == ["background", "colour", "background_image", "url",
                                                                  "prompt"]
    assert all(p["parameter_has_default"] for p in batch_parameters[1:])  # only the files are required
    out = client.predict(image=handle_file(str(files["coffee"])), post_process_mask=True, api_name="/remove_background")
    assert Image.open(out).size == (600, 400)


def test_errors_are_clear_text_without_paths(client, files, tmp_path):
    with pytest.raises(Exception) as info:
        client.predict(handle_file(str(files["broken"])), api_name="/remove_background")
    assert "broken.png: image data is truncated or corrupt" in str(info.value)
    assert "Traceback" not in str(info.value) and str(tmp_path) not in str(info.value)
    with pytest.raises(Exception, match="unknown model 'u3net'; choose one of: u2net, u2netp"):
        client.predict(handle_file(str(files["coffee"])), "u3net", api_name="/remove_background")
    with pytest.raises(Exception, match="background threshold must be the lower one"):
        client.predict(handle_file(str(files["coffee"])), "u2netp", True, 20, 240, api_name="/remove_background")
    with pytest.raises(Exception, match="no photo given: add one or more photos, or a URL, first"):
        client.predict([], background_image=None, api_name="/remove_background_batch")
    with pytest.raises(Exception, match="background is image, but no background picture is uploaded"):
        client.predict([handle_file(str(files["coffee"]))], background="image", api_name="/remove_background_batch")
    with pytest.raises(Exception, match="background is colour, but no colour is chosen"):
        client.predict([handle_file(str(files["coffee"]))], background="colour", colour="",
                       api_name="/remove_background_batch")


def test_no_file_outside_its_own_temp_folders_is_served(server):
    outputs = segkit.service.output_root()  # served (allowed_paths), so no way out of it either
    for target in ("/etc/passwd", "app.py", "../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd",
                   str(shutil.which("python3") or "/usr/bin/python3"), f"{outputs}/../../etc/passwd",
                   f"{outputs}/%2e%2e/%2e%2e/etc/passwd", f"{outputs}/..%2f..%2fetc/passwd"):
        response = requests.get(f"{server.url}gradio_api/file={target}", timeout=10)
        assert response.status_code in (403, 404), target
        assert b"root:" not in response.content


@pytest.mark.parametrize("name", list(corpus.file_cases()))
def test_corpus_through_the_app(client, name, tmp_path):
    """Every corpus upload through /remove_background: a clear error naming the file, or an RGBA PNG."""
    data, (kind, expected) = corpus.file_cases()[name]
    path = tmp_path / (name.replace(" ", "_").replace("(", "").replace(")", "") + ".png")
    path.write_bytes(data)
    if kind == "ok":
        out = Image.open(client.predict(handle_file(str(path)), api_name="/remove_background"))
        assert out.format == "PNG" and out.mode == "RGBA" and out.size == expected
        return
    with pytest.raises(Exception) as info:
        client.predict(handle_file(str(path)), api_name="/remove_background")
    message = str(info.value)
    assert message.startswith(path.name) and expected in message and "Traceback" not in message
    assert str(tmp_path) not in message


def start_that_stops(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python app.py ARGS``, expected to stop before it serves; ``-X importtime`` lists what it imported."""
    return subprocess.run([sys.executable, "-X", "importtime", str(REPO / "app.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def imported_gradio(done: subprocess.CompletedProcess) -> bool:
    return any(line.startswith("import time:") and line.rsplit("|", 1)[-1].strip() == "gradio"
               for line in done.stderr.splitlines())


def test_unknown_preload_model_stops_with_the_valid_names_before_gradio_loads(tmp_path):
    done = start_that_stops("--preload", "u3net")
    assert done.returncode == 2 and "unknown model 'u3net'; choose one of: u2net, u2netp" in done.stderr
    assert not imported_gradio(done)  # a typo is told in a second, not after Gradio's import
    (tmp_path / "gradio").mkdir()  # the check itself sees an import of a (stand-in) gradio
    (tmp_path / "gradio" / "__init__.py").write_text("")
    assert imported_gradio(subprocess.run([sys.executable, "-X", "importtime", "-c", "import gradio"], text=True,
                                          capture_output=True, env={**os.environ, "PYTHONPATH": str(tmp_path)}))


def test_a_results_folder_that_cannot_be_written_stops_the_app_before_it_serves(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    done = start_that_stops(env={"SEGKIT_OUTPUT_DIR": str(tmp_path / "file" / "results")})
    assert done.returncode == 2 and "Traceback" not in done.stderr and not imported_gradio(done)
    assert (f"the results folder {tmp_path / 'file' / 'results'} (SEGKIT_OUTPUT_DIR) can't be written: "
            "Not a directory") in done.stderr


@pytest.mark.skipif(importlib.util.find_spec("mcp") is not None, reason="Gradio's mcp extra is installed here")
def test_mcp_without_its_extra_says_how_to_install_it_before_gradio_loads():
    done = start_that_stops("--mcp")
    assert done.returncode == 2 and 'pip install "gradio[mcp]==6.31.0"' in done.stderr and not imported_gradio(done)
