"""segment()/process(): every input kind, mixed sizes, EXIF, tensors, masks, batches."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

import segkit
from segkit.models import predict
from segkit.models.lookup import get_model
from segkit.models.sessions import POOL
from helpers import alpha, png_bytes


def test_every_input_kind_gives_the_same_cutout(photos, tmp_path):
    array = photos["chelsea"]
    path = tmp_path / "cat.png"
    path.write_bytes(png_bytes(array))
    inputs = [Image.fromarray(array), array, png_bytes(array), str(path), path]
    outputs = segkit.segment(inputs)
    assert len(outputs) == 5
    for out in outputs:
        assert out.mode == "RGBA" and out.size == (array.shape[1], array.shape[0])
        assert np.array_equal(np.asarray(out), np.asarray(outputs[0]))


def test_single_image_in_single_image_out(photos):
    assert isinstance(segkit.segment(photos["coffee"]), Image.Image)


def test_mixed_sizes_in_one_batch(photos):
    images = [photos["astronaut"], photos["chelsea"][:200, :333], photos["coffee"][::2, ::3]]
    outputs = segkit.segment(images)
    assert [o.size for o in outputs] == [(i.shape[1], i.shape[0]) for i in images]


def test_exif_orientation_is_applied(photos):
    image = Image.fromarray(photos["chelsea"])  # 451x300, landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    out = segkit.segment(buf.getvalue())
    assert out.size == (300, 451)
    upright = segkit.segment(image.transpose(Image.Transpose.ROTATE_270))
    assert np.abs(alpha(out) - alpha(upright)).mean() < 3  # same subject, JPEG noise aside


def test_cutouts_keep_the_photos_colour_profile(photos, tmp_path):
    """A phone's photo is in its own colours (Display P3): the cutout's pixels are too, so it carries
    the photo's profile, over a background as well and into its PNG; a greyscale mask does not."""
    from PIL import ImageCms

    from segkit.io.encode import save_png

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # any profile's bytes
    Image.fromarray(photos["chelsea"]).save(tmp_path / "cat.jpg", icc_profile=profile, quality=90)
    for background in (None, "#00ff00", "blur"):
        cut = segkit.segment(tmp_path / "cat.jpg", background=background)
        save_png(cut, tmp_path / "cat.png")
        assert Image.open(tmp_path / "cat.png").info.get("icc_profile") == profile, background
    assert "icc_profile" not in segkit.segment(tmp_path / "cat.jpg", only_mask=True).info
    assert "icc_profile" not in segkit.segment(photos["chelsea"]).info
    # a CMYK or grey photo's profile describes pixels it no longer has once turned into RGB
    cmyk = profile[:16] + b"CMYK" + profile[20:]
    Image.fromarray(photos["chelsea"]).convert("CMYK").save(tmp_path / "print.jpg", icc_profile=cmyk)
    assert Image.open(tmp_path / "print.jpg").info["icc_profile"] == cmyk
    assert "icc_profile" not in segkit.segment(tmp_path / "print.jpg").info


def test_comfy_tensor_in_tensor_out(photos):
    batch = torch.from_numpy(np.stack([photos["astronaut"], photos["astronaut"][:, ::-1]]).astype(np.float32) / 255)
    out = segkit.segment(batch)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 512, 512, 4) and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1
    first = segkit.segment(photos["astronaut"])
    assert np.abs(np.round(out[0].numpy() * 255) - np.asarray(first)).max() <= 1
    masks = segkit.segment(batch, only_mask=True)
    assert masks.shape == (2, 512, 512)


def test_rgba_input_keeps_its_transparency(photos):
    rgba = np.dstack([photos["coffee"], np.full(photos["coffee"].shape[:2], 255, np.uint8)])
    rgba[:, :100, 3] = 0
    out = np.asarray(segkit.segment(rgba))
    assert (out[:, :100, 3] == 0).all()


def test_batch_with_a_bad_file_keeps_the_others(photos):
    results = segkit.process([photos["coffee"], b"GIF89a broken", photos["chelsea"]])
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, segkit.InvalidInputError)
    assert "image #2" in str(results[1].error) and results[1].label == "image #2"
    assert results[0].cutout.size == (600, 400) and results[0].seconds > 0
    with pytest.raises(segkit.InvalidInputError, match="image #2"):
        segkit.segment([photos["coffee"], b"GIF89a broken"])


def test_cloth_classes_become_three_labelled_masks():
    """u2net_cloth_seg's weights cannot be fetched here: feed the mask stage a synthetic
    4-class logit map (the model's output layout) and check labels land where they should."""
    spec = get_model("u2net_cloth_seg")
    logits = np.zeros((1, 4, 8, 8), np.float32)
    logits[0, 0] = 1
    logits[0, 1, :2] = 5  # upper rows: upper body
    logits[0, 2, 6:] = 5  # lower rows: lower body
    logits[0, 3, 3:5, 3:5] = 5  # centre: full body
    masks = predict.masks_from_output(logits, spec, (8, 8))
    assert len(masks) == 3
    assert masks[0][:2].min() == 255 and masks[0][2:].max() == 0
    assert masks[1][6:].min() == 255 and masks[1][:6].max() == 0
    assert masks[2][3:5, 3:5].min() == 255 and masks[2].sum() == 4 * 255


def test_progress_reports_every_image(photos, monkeypatch):
    """One image after another (a GPU's side-by-side runs: tests/test_batching.py)."""
    monkeypatch.setenv("SEGKIT_NETWORK_BATCH", "1")
    POOL.clear()
    seen = []
    segkit.segment([photos["coffee"]] * 3, progress=lambda f, msg: seen.append((round(f, 2), msg)))
    assert seen[0] == (0.0, "image 1 of 3: decoding") and seen[-1] == (1.0, "done")
    assert any(msg.startswith("image 2 of 3: network · about ") and msg.endswith(" s left") for _, msg in seen)
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)  # it only moves forward


def test_a_progress_callback_that_raises_stops_the_batch_with_its_own_error(photos, caplog):
    """A caller stops a batch by raising from ``progress``: the error comes back as raised,
    the images after it are not started, and no image is logged as failed."""
    class Stop(Exception):
        pass

    stop, heard = Stop("enough"), []

    def progress(fraction, message):
        heard.append(message)
        if message.startswith("image 2 of 3: network"):
            raise stop

    with pytest.raises(Stop) as raised:
        segkit.process([photos["coffee"][::4, ::4]] * 3, progress=progress)
    assert raised.value is stop and not any(m.startswith("image 3") for m in heard)
    assert "failed unexpectedly" not in caplog.text


def test_a_batch_gives_each_image_its_single_image_result(photos):
    """The batch runner returns exactly what each image gets on its own; a bad file
    in the middle costs only itself."""
    images = [photos["astronaut"], photos["chelsea"], b"not an image", photos["coffee"][::2, ::3]]
    results = segkit.process(images, post_process_mask=True)
    assert [r.ok for r in results] == [True, True, False, True]
    for image, result in zip(images, results):
        if result.ok:
            alone = segkit.process(image, post_process_mask=True)[0]
            assert np.array_equal(np.asarray(result.cutout), np.asarray(alone.cutout))
            assert np.array_equal(np.asarray(result.mask), np.asarray(alone.mask))


def test_any_iterable_is_a_batch_and_an_empty_one_loads_nothing(photos, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("an empty batch must not load a model")

    monkeypatch.setattr(segkit.batch, "session_for", no_model)
    assert segkit.segment([]) == [] and segkit.process(iter(())) == []
    assert segkit.segment(x for x in []) == []
    with pytest.raises(segkit.InvalidInputError, match=r"^images: a dict is not a batch of images"):
        segkit.process({"coffee.jpg": photos["coffee"]})  # refused before any model loads, keys never read as files
    monkeypatch.undo()
    from_generator = segkit.segment(photo for photo in [photos["coffee"], photos["chelsea"]])
    from_tuple = segkit.segment((photos["coffee"], photos["chelsea"]))
    assert isinstance(from_generator, list) and len(from_generator) == 2
    for a, b in zip(from_generator, from_tuple):
        assert np.array_equal(np.asarray(a), np.asarray(b))
