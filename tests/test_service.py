"""What the app binds to, without Gradio: backgrounds, the zip, serving a batch
(bad files, garment masks), messages for web visitors and the model list."""

import zipfile

import numpy as np
import onnx
import pytest
from PIL import Image

import segkit
from segkit import catalog, service
from segkit.compose import compose
from segkit.encode import write_zip
from segkit.errors import ModelNotAvailableError
from segkit.registry import SEED_ORDER, get_model
from conftest import png_bytes
from test_model_family import cache, cloth_model  # noqa: F401 - cache is a fixture


@pytest.fixture
def cut():
    """A 40x30 photo (red left half, blue right half) and a cutout keeping its left half."""
    photo = np.zeros((30, 40, 3), np.uint8)
    photo[:, :20] = (255, 0, 0)
    photo[:, 20:] = (0, 0, 255)
    rgba = np.dstack([photo, np.zeros((30, 40), np.uint8)])
    rgba[:, :20, 3] = 255
    return Image.fromarray(rgba, "RGBA"), Image.fromarray(photo)


def test_transparent_background_keeps_the_rgba_cutout(cut):
    cutout, photo = cut
    assert compose(cutout, photo, None) is cutout and compose(cutout, photo, "transparent") is cutout


@pytest.mark.parametrize("colour", ["#00ff00", "lime", "rgba(0, 255, 0, 1)", (0, 255, 0)])
def test_colour_background_fills_behind_the_subject(cut, colour):
    out = np.asarray(compose(*cut, colour))
    assert out.shape == (30, 40, 3)
    assert (out[:, :20] == (255, 0, 0)).all() and (out[:, 20:] == (0, 255, 0)).all()


def test_blurred_original_and_image_backgrounds(cut):
    cutout, photo = cut
    blurred = np.asarray(compose(cutout, photo, "blur")).astype(int)
    assert (blurred[:, :20] == (255, 0, 0)).all() and blurred[5, 21, 0] > 0  # red bleeds into the blurred right
    backdrop = Image.new("RGB", (400, 100), (0, 0, 0))
    assert np.asarray(compose(cutout, photo, backdrop))[:, 20:].max() == 0  # fitted to the cutout's size


def test_a_bad_colour_is_named(cut):
    with pytest.raises(segkit.InvalidInputError, match="'notacolour' is not a colour"):
        compose(*cut, "notacolour")


def test_zip_holds_one_png_per_image_with_unique_names(tmp_path, cut):
    path = tmp_path / "all.zip"
    write_zip([("a.jpg", cut[0]), ("dir/a.png", cut[0]), ("", cut[1])], path)
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["a.png", "a-2.png", "image.png"]
        with archive.open("a.png") as member:
            assert Image.open(member).mode == "RGBA"


def test_batch_serves_the_good_files_and_warns_about_the_bad_one(tmp_path, photos, u2netp_path):
    broken = png_bytes(photos["coffee"])[:700]
    batch = service.serve_batch([photos["chelsea"], broken], root=tmp_path)
    assert [image.caption.split(" · ")[1] for image in batch.images] == ["451×300"]
    assert batch.warnings == ["image #2: image data is truncated or corrupt (image file is truncated)"]
    assert Image.open(batch.images[0].cutout).mode == "RGBA" and batch.images[0].class_masks == []
    with zipfile.ZipFile(batch.zip_path) as archive:
        assert len(archive.namelist()) == 1


def test_garment_model_serves_three_labelled_masks(cache, tmp_path):  # noqa: F811 - the fixture
    onnx.save(cloth_model(get_model("u2net_cloth_seg").preprocess.size), cache / "u2net_cloth_seg.onnx")
    batch = service.serve_batch([np.full((300, 300, 3), 128, np.uint8)], "u2net_cloth_seg", root=tmp_path)
    labels = [label for _, label in batch.images[0].class_masks]
    assert labels == ["upper body", "lower body", "full body"]
    assert all(Image.open(path).mode == "L" and Image.open(path).size == (300, 300)
               for path, _ in batch.images[0].class_masks)


def test_an_unreachable_model_tells_a_visitor_what_to_do(monkeypatch, tmp_path):
    def offline(spec, progress=None):
        raise ModelNotAvailableError(f"model {spec.name!r}: no source could be reached. Tried:\n  - "
                                     f"https://example.invalid/x: ConnectionError\nTo fix: download by hand")

    monkeypatch.setattr(segkit.api.weights, "fetch_weights", offline)
    with pytest.raises(ModelNotAvailableError) as info:
        service.serve_one(b"unused", "silueta", root=tmp_path)
    message = str(info.value)
    assert message.startswith("model 'silueta': no source could be reached. Its weights download from "
                              "https://github.com/danielgatis/rembg/releases/download/v0.0.0/silueta.onnx. "
                              "Choose a model marked cached")
    assert "`python -m segkit download silueta`" in message and "example.invalid" not in message


def test_model_list_names_every_seed_model_with_its_state(u2netp_path):
    segkit.preload("u2netp")
    choices = dict((name, label) for label, name in catalog.model_choices())
    assert list(choices) == list(SEED_ORDER)
    assert choices["u2netp"].startswith("u2netp: Lightweight") and choices["u2netp"].endswith("[loaded]")
    for name, label in choices.items():
        assert get_model(name).description in label
        if not segkit.is_cached(name):
            assert label.endswith(f"[download {get_model(name).weights.size_mb:.0f} MB]")
    assert catalog.status_line("u2netp") == f"Device: **{segkit.device()}** · model **u2netp**: loaded"
