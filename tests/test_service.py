"""What the app binds to, without Gradio: backgrounds, the zip, serving a batch
(bad files, garment masks), messages for web visitors and the model list."""

import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

import segkit
from segkit import service
from segkit.models import catalog
from segkit.io.compose import compose
from segkit.io.encode import save_png, unique_names, write_zip
from segkit.errors import ModelNotAvailableError
from segkit.models.lookup import get_model
from helpers import cloth_model, png_bytes


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
    assert compose(cutout, photo, None) is cutout


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


def test_result_names_are_unique_stems_and_the_zip_uses_the_same_names(tmp_path, cut):
    stems = unique_names(["a.jpg", "dir/a.png", "", "b.png"])
    assert stems == ["a", "a-2", "image", "b"]
    files = []
    for stem in stems:
        files.append(tmp_path / f"{stem}.png")
        save_png(cut[0], files[-1])
    write_zip(files, tmp_path / "all.zip")
    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        assert archive.namelist() == ["a.png", "a-2.png", "image.png", "b.png"]
        with archive.open("a.png") as member:
            assert Image.open(member).mode == "RGBA"


def test_batch_serves_the_good_files_and_warns_about_the_bad_one(tmp_path, photos, u2netp_path):
    broken = png_bytes(photos["coffee"])[:700]
    batch = service.serve_batch([photos["chelsea"], broken], root=tmp_path)
    assert [image.caption for image in batch.images] == ["image-1.png · 451×300"]
    assert batch.warnings == ["image #2: image data is truncated or corrupt (image file is truncated)"]
    assert Image.open(batch.images[0].cutout).mode == "RGBA" and batch.images[0].class_masks == []
    with zipfile.ZipFile(batch.zip_path) as archive:
        assert archive.namelist() == [Path(batch.images[0].cutout).name]


def test_the_before_picture_is_a_jpeg_with_the_photos_profile_unless_it_has_alpha(tmp_path, photos, u2netp_path):
    """The photo shown beside its cutout is fetched by the browser: a JPEG (quality 95) carries a
    4.6 MP camera photo in about 2 MB where a PNG takes 8; it keeps the photo's colour profile.
    A photo with transparency stays a PNG, pixel for pixel."""
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(photos["chelsea"]).save(tmp_path / "cat.png", icc_profile=profile)
    rgba = np.dstack([photos["coffee"], np.full(photos["coffee"].shape[:2], 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cup.png")
    cat, cup = service.serve_batch([tmp_path / "cat.png", tmp_path / "cup.png"], root=tmp_path / "out").images
    assert cat.original.endswith("cat-original.jpg") and cup.original.endswith("cup-original.png")
    before = Image.open(cat.original)
    assert before.format == "JPEG" and before.info["icc_profile"] == profile
    assert np.abs(np.asarray(before, np.int16) - photos["chelsea"]).mean() < 1.5
    assert np.array_equal(np.asarray(Image.open(cup.original)), rgba)
    assert not list((tmp_path / "out").rglob(".*.part"))


def test_a_large_cutout_gets_a_small_preview_for_the_gallery(tmp_path, photos, u2netp_path):
    """The app's gallery shows previews at most PREVIEW_SIDE long, not cutouts of many megabytes each:
    the cutout shrunk as Pillow's resize does it (colours weighted by alpha); a cutout that small is its
    own preview."""
    big = Image.fromarray(photos["astronaut"]).resize((1200, 900))
    large, small = service.serve_batch([big, photos["chelsea"]], root=tmp_path).images
    preview = Image.open(large.preview)
    assert large.preview.endswith("-preview.png") and preview.mode == "RGBA"
    assert preview.size == (service.PREVIEW_SIDE, service.PREVIEW_SIDE * 3 // 4)
    cutout = Image.open(large.cutout)
    assert cutout.size == (1200, 900)
    shrunk = np.asarray(cutout.resize(preview.size, Image.Resampling.LANCZOS), np.int16)
    assert np.abs(np.asarray(preview, np.int16) - shrunk).mean(axis=(0, 1)).max() < 2
    assert small.preview == small.cutout


def test_garment_model_serves_three_labelled_masks(cache, tmp_path):  # noqa: F811 - the fixture
    onnx.save(cloth_model(get_model("u2net_cloth_seg").preprocess.size), cache / "u2net_cloth_seg.onnx")
    batch = service.serve_batch([np.full((300, 300, 3), 128, np.uint8)], model="u2net_cloth_seg", root=tmp_path)
    labels = [label for _, label in batch.images[0].class_masks]
    assert labels == ["upper body", "lower body", "full body"]
    assert all(Image.open(path).mode == "L" and Image.open(path).size == (300, 300)
               for path, _ in batch.images[0].class_masks)


def test_an_unreachable_model_tells_a_visitor_what_to_do(monkeypatch, tmp_path, caplog):
    def offline(spec, progress=None):
        raise ModelNotAvailableError(spec.name, "no source could be reached",
                                     [("https://example.invalid/x", "ConnectionError")], "download by hand")

    monkeypatch.setattr(segkit.models.weights, "fetch_weights", offline)
    monkeypatch.setattr(catalog, "_UNAVAILABLE", {})  # this test's mark goes with it
    with pytest.raises(ModelNotAvailableError) as info:
        service.serve_one(b"unused", model="silueta", root=tmp_path)
    message = str(info.value)
    assert message == ("model 'silueta': its weights can't be downloaded on this server (no source could be "
                       "reached). Choose a model marked cached (u2netp works offline), or ask whoever runs this "
                       "server to install it.")
    assert info.value.model == "silueta" and info.value.tried == []
    assert "example.invalid" in caplog.text and "download by hand" in caplog.text  # the operator's detail
    labels = {name: label for label, name in catalog.model_choices()}
    assert labels["silueta"] == "silueta · unavailable: no source could be reached"
    assert "unavailable: no source could be reached" in catalog.status_line("silueta")


def test_model_list_names_every_seed_model_with_its_state(u2netp_path):
    segkit.preload("u2netp")
    choices = dict((name, label) for label, name in catalog.model_choices())
    assert list(choices) == catalog.by_group()  # grouped by purpose: general first, then people...
    assert set(choices) == set(segkit.list_models())
    assert choices["u2netp"] == "u2netp · loaded"
    for name, label in choices.items():
        if not segkit.is_cached(name):
            nc = " · non-commercial" if get_model(name).non_commercial else ""
            assert label == f"{name} · download {get_model(name).download_mb:.0f} MB{nc}"
    assert catalog.status_line("u2netp") == (f"Device: **{segkit.device()}** · model **u2netp**: loaded · "
                                             + get_model("u2netp").description)


def test_output_storage_is_bounded_by_age_and_by_size(tmp_path):
    """Old request folders go after OUTPUT_TTL; beyond the size cap the oldest go first."""
    import os
    import time

    for age, name in ((7200, "old"), (300, "older"), (200, "middle"), (100, "newest")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "cutout.png").write_bytes(b"x" * 400_000)
        os.utime(folder, (time.time() - age, time.time() - age))
    service.prune_outputs(tmp_path, max_age=3600, max_bytes=900_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["middle", "newest"]
    files = list(tmp_path.rglob("*"))
    assert sum(f.stat().st_size for f in files if f.is_file()) == 800_000


def test_pruning_sums_a_settled_folder_once_and_again_when_a_file_comes(tmp_path, monkeypatch):
    """Every request prunes, and a full store holds a thousand folders or more: a folder's bytes
    are summed once its files have settled, and again when a file comes or goes."""
    import os
    import shutil
    import time

    settled = time.time() - 600
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "cutout.png").write_bytes(b"x" * 400_000)
        os.utime(tmp_path / name, (settled - (name == "a"), settled))
    service.prune_outputs(tmp_path, max_age=3600, max_bytes=900_000)
    listed, scandir = [], os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: listed.append(str(path)) or scandir(path))
    service.prune_outputs(tmp_path, max_age=3600, max_bytes=900_000)
    assert listed == [str(tmp_path)]  # the two folders' sizes were known
    (tmp_path / "b" / "mask.png").write_bytes(b"x" * 200_000)  # 1.0 MB in all now: the oldest goes
    service.prune_outputs(tmp_path, max_age=3600, max_bytes=900_000)
    assert [p.name for p in tmp_path.iterdir()] == ["b"] and str(tmp_path / "a") not in service._summed
    shutil.rmtree(tmp_path / "b")  # another process's pruning
    service.prune_outputs(tmp_path, max_age=3600, max_bytes=900_000)
    assert not any(key.startswith(str(tmp_path)) for key in service._summed)


def test_results_that_cannot_be_stored_get_a_message_for_the_visitor_and_one_for_the_operator(
        tmp_path, photos, u2netp_path, caplog):
    """A full disk or a results folder that can't be written (here a file stands where it should
    be) is the server's fault: the visitor reads that, the server's log has the details, and
    ``check_output_root`` (which the app runs before serving) names the folder and its variable."""
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")
    photo = png_bytes(photos["chelsea"][:60, :80])
    for serve in (service.serve_batch, service.serve_one):
        with pytest.raises(segkit.SegkitError, match=r"^the server could not store the results \(its disk is full"):
            serve([photo] if serve is service.serve_batch else photo, root=blocked / "results")
    assert "could not write results" in caplog.text and "Not a directory" in caplog.text
    with pytest.raises(segkit.SegkitError, match=rf"^the results folder {blocked / 'results'} \(SEGKIT_OUTPUT_DIR\) "
                                                  "can't be written: Not a directory"):
        service.check_output_root(blocked / "results")
    service.check_output_root(tmp_path / "results")  # a folder that can be made is fine
    assert service.serve_one(photo, root=tmp_path / "results").endswith(".png")


def test_pngs_come_back_pixel_for_pixel_with_their_colour_profile(tmp_path, monkeypatch):
    """save_png writes its own PNGs (rows filtered "Up", deflated by ISA-L): the same pixels come back
    in each mode through Pillow and through FFmpeg, every chunk's CRC checks, a photo's ICC profile goes
    into the file, and data over one chunk's limit is split over several IDAT chunks. A palette image
    with a transparent colour goes through Pillow and keeps both."""
    import io

    import av
    from PIL import ImageCms

    from segkit.io import encode
    from segkit.video.writer import AV_PIXELS

    rng = np.random.default_rng(7)
    for mode, shape in (("RGBA", (359, 641, 4)), ("RGB", (1, 1, 3)), ("L", (900, 50)), ("LA", (31, 17, 2))):
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        save_png(Image.fromarray(pixels, mode), tmp_path / f"{mode}.png")
        back = Image.open(tmp_path / f"{mode}.png")
        assert back.mode == mode and np.array_equal(np.asarray(back), pixels), mode
        Image.open(tmp_path / f"{mode}.png").verify()
        if mode != "LA":  # FFmpeg reads it as Pillow does
            with av.open(str(tmp_path / f"{mode}.png")) as container:
                frame = next(container.decode(video=0))
                assert np.array_equal(frame.to_ndarray(format=AV_PIXELS[mode]), pixels), mode
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    photo.info["icc_profile"] = profile
    written = io.BytesIO()
    save_png(photo, written)
    back = Image.open(written)
    assert back.info["icc_profile"] == profile
    assert np.array_equal(np.asarray(back), np.asarray(photo))
    Image.open(written).verify()  # every chunk's CRC

    monkeypatch.setattr(encode, "IDAT_LIMIT", 1000)
    noise = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)  # about 16 KB deflated: 17 chunks
    split = encode.png_bytes(Image.fromarray(noise, "RGBA"))
    assert split.count(b"IDAT") > 10
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(split))), noise)
    Image.open(io.BytesIO(split)).verify()

    palette = Image.fromarray(rng.integers(0, 4, (10, 12), dtype=np.uint8), "P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    palette.info["transparency"] = 2
    save_png(palette, tmp_path / "palette.png")
    back = Image.open(tmp_path / "palette.png")
    assert back.mode == "P" and back.info["transparency"] == 2
    assert np.array_equal(np.asarray(back), np.asarray(palette))
