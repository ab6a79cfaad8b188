"""segkit's output equals rembg.remove() (the spec) on real photos with real weights."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import segkit
from segkit.models.sessions import provider_settings
from helpers import alpha, u2net_cached

PHOTOS = ["astronaut", "chelsea", "coffee"]


@pytest.mark.parametrize("post_process", [False, True])
@pytest.mark.parametrize("name", PHOTOS)
def test_u2netp_matches_rembg(photos, rembg_session, name, post_process):
    import rembg

    image = Image.fromarray(photos[name])
    ours = segkit.segment(image, model="u2netp", post_process_mask=post_process)
    theirs = rembg.remove(image, session=rembg_session, post_process_mask=post_process)
    assert ours.mode == "RGBA" and ours.size == image.size
    assert np.abs(alpha(ours) - alpha(theirs)).max() <= 1
    assert np.abs(np.asarray(ours, np.int16) - np.asarray(theirs, np.int16)).max() <= 1
    # a real subject was found: neither empty nor everything
    coverage = (alpha(ours) > 127).mean()
    assert 0.02 < coverage < 0.98


@pytest.mark.slow
@pytest.mark.skipif(not u2net_cached(), reason="u2net's 176 MB file is not cached (run: python -m segkit download u2net)")
@pytest.mark.parametrize("post_process", [False, True])
def test_u2net_matches_rembg(photos, post_process):
    import rembg

    session = rembg.new_session("u2net", providers=provider_settings())  # segkit's device and settings
    for name in PHOTOS:
        image = Image.fromarray(photos[name])
        ours = segkit.segment(image, model="u2net", post_process_mask=post_process)
        theirs = rembg.remove(image, session=session, post_process_mask=post_process)
        assert np.abs(alpha(ours) - alpha(theirs)).max() <= 1, name


def test_alpha_matting_matches_rembg(photos, rembg_session):
    import rembg

    image = Image.fromarray(photos["chelsea"]).resize((200, 150))
    kwargs = dict(alpha_matting=True, alpha_matting_foreground_threshold=240,
                  alpha_matting_background_threshold=20, alpha_matting_erode_size=10)
    ours = segkit.segment(image, model="u2netp", **kwargs)
    theirs = rembg.remove(image, session=rembg_session, **kwargs)
    assert np.abs(alpha(ours) - alpha(theirs)).mean() <= 0.02 * 255
    assert np.abs(alpha(ours) - alpha(theirs)).max() <= 8


def test_mask_is_the_cutouts_alpha(photos):
    result = segkit.process([photos["coffee"]])[0]
    assert result.ok and result.mask.mode == "L"
    assert np.array_equal(np.asarray(result.mask), np.asarray(result.cutout)[:, :, 3])


def test_semi_transparent_rgba_input_matches_rembg(photos, rembg_session):
    import rembg

    rgba = np.dstack([photos["astronaut"], np.tile(np.linspace(0, 255, 512).astype(np.uint8), (512, 1))])
    image = Image.fromarray(rgba, mode="RGBA")
    ours = np.asarray(segkit.segment(image), np.int16)
    theirs = np.asarray(rembg.remove(image, session=rembg_session), np.int16)
    assert np.abs(ours - theirs).max() <= 1


def test_large_photo_matches_rembg(photos, rembg_session):
    """Above 0.4 MP the resizes and the composite run in row bands; the result must not move."""
    import rembg

    image = Image.fromarray(photos["chelsea"]).resize((1804, 1200), Image.Resampling.LANCZOS)
    ours = np.asarray(segkit.segment(image), np.int16)
    theirs = np.asarray(rembg.remove(image, session=rembg_session), np.int16)
    assert np.abs(ours - theirs).max() <= 1
