"""Parity with rembg's own sessions for every model whose weights can't be had here: each runs
a stand-in graph (the model's input and output layout, a nonlinear channel-asymmetric function
of the input, see helpers.py) saved under the registry's file name, and segkit's mask must be
within 1/255 of what rembg's session makes from the same file. silueta and u2net_human_seg run
u2net's real weights under their names. Checksums are off for these tests only."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from PIL import Image

import segkit
from segkit.models.lookup import get_model
from segkit.models.registry import MODELS
from segkit.models.weights import cache_dir, find_cached
from helpers import asymmetric_model, sam_decoder, sam_encoder

BIREFNETS = [n for n in MODELS if n.startswith("birefnet") and not n.endswith("fp16")]
REMBG_NAME = {"isnetis": "isnet-anime"}


@pytest.fixture
def rembg_cache(cache, monkeypatch):
    monkeypatch.setenv("MODEL_CHECKSUM_DISABLED", "1")
    return cache


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((160, 120), Image.Resampling.BILINEAR)


def rembg_session(name, **kwargs):
    import rembg

    return rembg.new_session(REMBG_NAME.get(name, name), providers=["CPUExecutionProvider"], **kwargs)


def assert_close(ours, theirs):
    ours, theirs = np.asarray(ours, np.int16), np.asarray(theirs, np.int16)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1
    assert ours.std() > 20  # a mask with structure, not a constant that would agree by accident


def save_stand_in(name, **kwargs):
    spec = get_model(name)
    onnx.save(asymmetric_model(spec.preprocess.size, **kwargs), cache_dir() / spec.weights.filename)


@pytest.mark.parametrize("name", BIREFNETS + ["bria-rmbg", "isnet-general-use", "isnetis"])
def test_saliency_models_match_rembg(rembg_cache, photo, name):
    save_stand_in(name, gain=4.0)  # logits beyond ±1: the sigmoid (or its absence) shows
    ours = segkit.segment(photo, model=name, only_mask=True)
    assert_close(ours, rembg_session(name).predict(photo)[0])


def test_cloth_model_matches_rembg(rembg_cache, photo):
    save_stand_in("u2net_cloth_seg", channels=4)
    ours = segkit.segment(photo, model="u2net_cloth_seg", only_mask=True, separate_masks=True)
    theirs = rembg_session("u2net_cloth_seg").predict(photo)
    for mine, rembgs in zip(ours.values(), theirs):
        assert np.abs(np.asarray(mine, np.int16) - np.asarray(rembgs, np.int16)).max() <= 1
    assert sum(int(np.asarray(m).max()) for m in ours.values()) > 0


def test_fp16_follows_rembgs_conversion_and_shares_it(rembg_cache, photo, tmp_path, monkeypatch):
    pytest.importorskip("onnxconverter_common")
    save_stand_in("birefnet-general", gain=4.0)
    theirs = rembg_session("birefnet-general-fp16").predict(photo)[0]  # rembg converts, in its layout
    rembg_file = rembg_cache / "models" / "birefnet-general-fp16" / "birefnet-general-fp16.onnx"
    assert segkit.models.weights.model_path(get_model("birefnet-general-fp16")) == rembg_file
    assert_close(segkit.segment(photo, model="birefnet-general-fp16", only_mask=True), theirs)
    own = tmp_path / "own"  # a cache where segkit converts by itself: the same bytes as rembg's
    own.mkdir()
    monkeypatch.setenv("U2NET_HOME", str(own))
    save_stand_in("birefnet-general", gain=4.0)
    segkit.POOL.clear()
    assert_close(segkit.segment(photo, model="birefnet-general-fp16", only_mask=True), theirs)
    assert (own / "birefnet-general-fp16.onnx").read_bytes() == rembg_file.read_bytes()


U2NET_REAL = find_cached(get_model("u2net"))  # looked up before any test points U2NET_HOME elsewhere


@pytest.mark.slow
@pytest.mark.skipif(U2NET_REAL is None, reason="u2net's real weights are not cached here")
@pytest.mark.parametrize("name", ["silueta", "u2net_human_seg"])
def test_u2net_weights_under_seed_names_match_rembg(rembg_cache, photo, name):
    (rembg_cache / get_model(name).weights.filename).symlink_to(U2NET_REAL)
    ours = segkit.segment(photo, model=name, only_mask=True)
    assert_close(ours, rembg_session(name).predict(photo)[0])


@pytest.mark.parametrize("family, size", [("u2net_custom", 320), ("dis_custom", 1024), ("ben_custom", 1024)])
def test_custom_files_match_rembgs_custom_sessions(rembg_cache, photo, family, size):
    path = rembg_cache / "mine" / f"{family}.onnx"
    path.parent.mkdir()
    onnx.save(asymmetric_model(size), path)
    ours = segkit.segment(photo, model=f"{family}:mine/{family}.onnx", only_mask=True)
    assert_close(ours, rembg_session(family, model_path=str(path)).predict(photo)[0])
    assert segkit.segment(photo, model=f"{family}:{path}", only_mask=True) == ours  # absolute paths too


SAM_PROMPTS = [
    None,  # rembg's default: the centre, kept
    [{"type": "point", "data": [40, 50], "label": 1}],
    [{"type": "point", "data": [40, 50], "label": 1}, {"type": "point", "data": [43, 51], "label": 0}],
    [{"type": "rectangle", "data": [20, 10, 120, 100], "label": 1}],
    [{"type": "rectangle", "data": [20, 10, 120, 100], "label": 1}, {"type": "point", "data": [150, 110], "label": 1}],
]


def test_sam_matches_rembg_for_points_and_boxes_and_encodes_each_photo_once(rembg_cache, photo):
    onnx.save(sam_encoder(), rembg_cache / "sam_vit_b_01ec64.encoder.onnx")
    onnx.save(sam_decoder(), rembg_cache / "sam_vit_b_01ec64.decoder.onnx")
    theirs = rembg_session("sam")
    masks = []
    for prompt in SAM_PROMPTS:
        ours = segkit.segment(photo, model="sam", only_mask=True, prompt=prompt)
        rembg_mask = theirs.predict(photo, **({"sam_prompt": prompt} if prompt else {}))[0]
        assert np.array_equal(np.asarray(ours), np.asarray(rembg_mask)), prompt
        masks.append(np.asarray(ours))
    assert len({m.tobytes() for m in masks}) == len(masks)  # every prompt moved the cutout
    model = segkit.POOL._live["sam"]
    assert model.encoder_runs == 1  # five prompts, one photo: one embedding
    segkit.segment(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT), model="sam", only_mask=True)
    assert model.encoder_runs == 2


@pytest.mark.parametrize("prompt, message", [
    ("[{", r"^prompt: not valid JSON"),
    ([], r"^prompt: must be a non-empty list of marks"),
    ([{"type": "circle", "data": [1, 2]}], r'^prompt: mark 1: must be a dict whose "type" is "point" or "rectangle"'),
    ([{"type": "point", "data": [1, 2], "label": 1}, {"type": "point", "data": [1], "label": 1}],
     r'^prompt: mark 2: "data" must be \[x, y\]'),
    ([{"type": "rectangle", "data": [1, 2, 3, float("nan")]}], r'^prompt: mark 1: "data" must be \[x0, y0, x1, y1\]'),
    ([{"type": "point", "data": [1, 2], "label": 2}], r'^prompt: mark 1: "label" must be 1 \(keep\) or 0 \(remove\)'),
    ([{"type": "point", "data": [1, 2]}], r'"label" must be 1'),
])
def test_bad_prompts_say_which_mark_and_what_is_wrong(prompt, message):
    with pytest.raises(segkit.InvalidInputError, match=message):
        segkit.Options.of(model="sam", prompt=prompt)


def test_prompt_outside_the_photo_and_prompt_for_other_models_are_refused(rembg_cache, photo):
    with pytest.raises(segkit.InvalidInputError, match="only prompted models"):
        segkit.Options.of(model="u2netp", prompt=[{"type": "point", "data": [1, 2], "label": 1}])
    onnx.save(sam_encoder(), rembg_cache / "sam_vit_b_01ec64.encoder.onnx")
    onnx.save(sam_decoder(), rembg_cache / "sam_vit_b_01ec64.decoder.onnx")
    with pytest.raises(segkit.InvalidInputError, match=r"mark 1 \(point at \[500.0, 2.0\]\) is outside the image "
                                                       r"\(160x120\)"):
        segkit.segment(photo, model="sam", prompt=[{"type": "point", "data": [500, 2], "label": 1}])


def test_the_apps_clicks_reuse_the_photos_embedding(rembg_cache, photo, tmp_path):
    from segkit import service

    onnx.save(sam_encoder(), rembg_cache / "sam_vit_b_01ec64.encoder.onnx")
    onnx.save(sam_decoder(), rembg_cache / "sam_vit_b_01ec64.decoder.onnx")
    path = tmp_path / "photo.png"
    photo.save(path)
    first = service.serve_prompted(str(path), [(40, 50, True)], root=tmp_path / "out")
    second = service.serve_prompted(str(path), [(40, 50, True), (43, 51, False)], (20, 10, 120, 100),
                                    root=tmp_path / "out")
    assert segkit.POOL._live["sam"].encoder_runs == 1
    assert Image.open(first.mask).tobytes() != Image.open(second.mask).tobytes()
    assert Image.open(second.cutout).mode == "RGBA"
