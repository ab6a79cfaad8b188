"""Bulk jobs on a local Ray (this machine's cores): the same pixels as the plain CLI, bad files
listed in errors.jsonl while the rest finish, and a rerun that skips what is already written."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import png_bytes
from segkit import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (run() joins it instead of starting its own), shut down after."""
    ray = pytest.importorskip("ray", reason="pip install -r requirements-ray.txt")
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture
def photo_folder(tmp_path, photos):
    """Real photos in nested folders, a truncated PNG and a file that is not an image."""
    root = tmp_path / "in"
    (root / "people" / "crew").mkdir(parents=True)
    (root / "cat.png").write_bytes(png_bytes(photos["chelsea"]))
    (root / "people" / "crew" / "astronaut.jpg").write_bytes(png_bytes(photos["astronaut"], format="JPEG"))
    (root / "people" / "cup.webp").write_bytes(png_bytes(photos["coffee"], format="WEBP", lossless=True))
    (root / "broken.png").write_bytes(png_bytes(photos["coffee"])[:500])
    (root / "notes.txt").write_text("not an image")
    return root


def pngs(folder: Path) -> dict[str, np.ndarray]:
    return {p.relative_to(folder).as_posix(): np.asarray(Image.open(p)) for p in sorted(folder.rglob("*.png"))}


def test_ray_writes_the_plain_clis_pixels_and_lists_the_bad_file(local_ray, photo_folder, tmp_path, capsys,
                                                                 u2netp_path):
    assert cli.main(["remove", str(photo_folder), "-o", str(tmp_path / "plain"), "-p", "-q"]) == 1
    assert cli.main(["remove", str(photo_folder), "-o", str(tmp_path / "ray"), "-p", "-q",
                     "--ray", "--workers", "2"]) == 1
    plain, on_ray = pngs(tmp_path / "plain"), pngs(tmp_path / "ray")
    assert sorted(on_ray) == ["cat.png", "people/crew/astronaut.png", "people/cup.png"] == sorted(plain)
    for name in plain:
        assert on_ray[name].shape[2] == 4 and np.array_equal(on_ray[name], plain[name]), name
    errors = [json.loads(line) for line in (tmp_path / "ray" / "errors.jsonl").read_text().splitlines()]
    assert errors == [{"input": str(photo_folder / "broken.png"),
                       "reason": "image data is truncated or corrupt (image file is truncated)"}]
    stderr = capsys.readouterr().err
    assert f"error: {photo_folder / 'broken.png'}: image data is truncated" in stderr
    assert "3 written" in stderr and "0 skipped" in stderr and "1 failed" in stderr
    assert not list((tmp_path / "ray").rglob("*.part"))


def test_a_rerun_skips_what_is_written_and_redoes_what_is_missing(local_ray, photo_folder, tmp_path, u2netp_path):
    from segkit.scale import ray_job

    out = tmp_path / "out"
    first = ray_job.run([str(photo_folder)], str(out), write_masks=True, progress=False)
    assert (first.written, first.skipped, [name for name, _ in first.failed]) == (3, 0, [str(photo_folder / "broken.png")])
    cutout, mask = Image.open(out / "people" / "cup.png"), Image.open(out / "people" / "cup.mask.png")
    assert mask.mode == "L" and np.array_equal(np.asarray(cutout)[:, :, 3], np.asarray(mask))

    (out / "people" / "crew" / "astronaut.mask.png").unlink()  # half of one image's outputs gone
    before = (out / "cat.png").stat().st_mtime_ns
    second = ray_job.run([str(photo_folder)], str(out), write_masks=True, progress=False)
    assert (second.written, second.skipped, len(second.failed)) == (1, 2, 1)
    assert (out / "people" / "crew" / "astronaut.mask.png").is_file()
    assert (out / "cat.png").stat().st_mtime_ns == before

    (photo_folder / "broken.png").unlink()  # nothing fails now: the stale errors list goes
    third = ray_job.run([str(photo_folder)], str(out), write_masks=True, progress=False)
    assert (third.written, third.skipped, third.failed, third.errors_file) == (0, 3, [], None)
    assert not (out / "errors.jsonl").exists()


def test_segkit_imports_without_ray_and_ray_flag_says_how_to_install(tmp_path):
    script = (
        "import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
        "import segkit, segkit.cli\n"
        "segkit.cli.build_parser()\n"
        f"sys.exit(segkit.cli.main(['remove', {str(tmp_path)!r}, '-o', {str(tmp_path / 'o')!r}, '--ray']))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "pip install -r requirements-ray.txt" in run.stderr and "Traceback" not in run.stderr


def test_ray_names_outputs_as_the_plain_cli_does_and_never_over_an_input(photo_folder):
    """The same inputs and distinct names as ``python -m segkit remove`` (photo.jpg and photo.webp
    keep their suffixes; hidden files and a last run's cutouts in a folder inside are not inputs),
    and a job writing into the folder it reads stops before Ray starts."""
    from segkit.errors import InvalidInputError
    from segkit.scale import ray_job

    pytest.importorskip("ray", reason="pip install -r requirements-ray.txt")
    (photo_folder / "people" / "cup.jpg").write_bytes((photo_folder / "cat.png").read_bytes())
    (photo_folder / "people" / "._cup.jpg").write_bytes(b"\0\5\x16\7")  # macOS's AppleDouble file
    (photo_folder / "out").mkdir()
    (photo_folder / "out" / "cat.png").write_bytes((photo_folder / "cat.png").read_bytes())  # a last run's
    (photo_folder / "people" / "walk.mp4").write_bytes(b"\0\0\0\x18ftypmp42")  # the Ray job cuts out photos only
    _, pairs, not_done = ray_job.list_inputs([str(photo_folder)], str(photo_folder / "out"))
    assert not_done == [(str(photo_folder / "people" / "walk.mp4"), ray_job.VIDEO_NOT_DONE)]
    listed, others = cli.collect_inputs([str(photo_folder)], output=photo_folder / "out")
    plain = {path.as_posix(): name.as_posix() for path, name in listed if path.suffix != ".mp4"}
    assert {path: name for path, name in pairs} == plain and [p.name for p in others] == ["notes.txt"]
    assert {"people/cup.jpg.png", "people/cup.webp.png", "cat.png"} <= set(plain.values())
    assert not any("out/" in name or "._" in name for name in plain.values())
    with pytest.raises(InvalidInputError, match="broken.png: its cutout would be written over it"):
        ray_job.run([str(photo_folder)], str(photo_folder))


def test_bad_worker_counts_are_named_before_ray_starts(photo_folder, tmp_path):
    """Ray refused these only once it had started, seconds later, in its own words
    ("('size must be >= 1', -2)"); workers=0 quietly meant the default."""
    from segkit.errors import InvalidInputError
    from segkit.scale import ray_job

    pytest.importorskip("ray", reason="pip install -r requirements-ray.txt")
    for sizes, message in ((dict(workers=0), "workers: must be a whole number of actors, 1 or more, got 0"),
                           (dict(workers=2.5), "workers: .* got 2.5"), (dict(workers="2"), "workers: .* got '2'"),
                           (dict(gpus_per_worker=-1), "gpus_per_worker: must be 0 .* got -1"),
                           (dict(gpus_per_worker=1.5), "gpus_per_worker: .* or a whole number of GPUs, got 1.5")):
        with pytest.raises(InvalidInputError, match=message):
            ray_job.run([str(photo_folder)], str(tmp_path / "out"), **sizes)
    assert not (tmp_path / "out").exists()
