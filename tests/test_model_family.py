"""The registry entries whose weights cannot be downloaded here (silueta, u2net_human_seg,
u2net_cloth_seg, isnet-general-use, isnetis) run through the real loading and session
path with small ONNX graphs built by this test: same input name and shape, same output
layout. Their "prediction" is a simple function of the input (brightness, or fixed
class regions), so the test can check that preprocessing, the mask rule and the
resize back are wired as the registry says. Checksums are disabled for this test only."""

import numpy as np
import onnx
import pytest

import segkit
from segkit.models.lookup import get_model
from helpers import brightness_model, cloth_model


@pytest.mark.parametrize("name", ["silueta", "u2net_human_seg", "isnet-general-use", "isnetis"])
def test_saliency_models_load_and_follow_their_entry(cache, name):
    spec = get_model(name)
    onnx.save(brightness_model(spec.preprocess.size), cache / spec.weights.filename)
    image = np.zeros((90, 160, 3), np.uint8)
    image[:, 80:] = 200  # right half bright
    image[:, :80] = 20
    out = segkit.segment(image, model=name)
    alpha = np.asarray(out)[:, :, 3]
    assert out.size == (160, 90)
    # min-max rescaled brightness; Lanczos overshoot at the edge takes the very top values
    assert alpha[:, 100:].min() >= 200 and alpha[:, :60].max() <= 30
    session = segkit.models.sessions.session_for(spec)
    assert session.get_inputs()[0].shape[1:] == [3, spec.preprocess.size, spec.preprocess.size]  # batch: 1, or free on a GPU


def test_cloth_model_gives_three_labelled_masks(cache):
    spec = get_model("u2net_cloth_seg")
    onnx.save(cloth_model(spec.preprocess.size), cache / spec.weights.filename)
    image = np.full((300, 300, 3), 128, np.uint8)
    (masks,) = segkit.segment([image], model="u2net_cloth_seg", only_mask=True, separate_masks=True)
    assert list(masks) == ["upper body", "lower body", "full body"]
    upper, lower, full = (np.asarray(masks[k]) for k in masks)
    assert upper[:90].min() == 255 and upper[110:].max() == 0
    assert lower[-90:].min() == 255 and lower[:190].max() == 0
    assert full[150, 150] == 255 and full[:, :130].max() == 0
    combined = segkit.process([image], model="u2net_cloth_seg")[0]
    assert np.asarray(combined.mask)[150, 150] == 255 and np.asarray(combined.mask)[150, 20] == 0
    assert set(combined.cutouts) == set(masks)
