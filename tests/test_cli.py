"""The segkit command (python -m segkit): folders in, PNGs out, bad files reported while the rest finish."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import corpus
from helpers import png_bytes
from segkit import cli


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "segkit", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def test_remove_folder_with_a_bad_file(tmp_path, photos, u2netp_path):
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    (inputs / "cat.png").write_bytes(png_bytes(photos["chelsea"]))
    (inputs / "sub" / "cup.jpg").write_bytes(png_bytes(photos["coffee"], format="JPEG"))
    (inputs / "broken.png").write_bytes(png_bytes(photos["coffee"])[:500])
    out = tmp_path / "out"
    run = run_cli("remove", inputs, "-o", out, "--post-process")
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.png" in errors[0] and "truncated or corrupt" in errors[0]
    assert "Traceback" not in run.stderr
    cat = Image.open(out / "cat.png")
    assert cat.mode == "RGBA" and cat.size == (451, 300)
    assert Image.open(out / "sub" / "cup.png").size == (600, 400)
    assert "2 of 3 images written" in run.stderr


def test_remove_single_file_with_matting_succeeds(tmp_path, photos, u2netp_path):
    source = tmp_path / "cat.png"
    Image.fromarray(photos["chelsea"]).resize((150, 100)).save(source)
    run = run_cli("remove", source, "-o", tmp_path / "out", "-a", "--only-mask", "-q")
    assert run.returncode == 0, run.stderr
    mask = np.asarray(Image.open(tmp_path / "out" / "cat.png"))
    assert mask.shape == (100, 150) and 0 < mask.mean() < 255


def test_one_photo_to_a_named_file_and_names_that_cannot_be(tmp_path, photos, u2netp_path, capsys):
    """`remove cat.jpg -o cutout.png` wrote cutout.png/cat.png, a folder named like a file. With one input
    and an output named as its cutout, -o is that file; an existing folder stays a folder, and a name
    the cutout can't have (a JPEG holds no transparency) is refused before any work."""
    source = tmp_path / "cat.jpg"
    Image.fromarray(photos["chelsea"]).resize((150, 100)).save(source)
    assert cli.main(["remove", str(source), "-o", str(tmp_path / "cuts" / "cutout.png"), "-q"]) == 0
    assert Image.open(tmp_path / "cuts" / "cutout.png").size == (150, 100)
    assert "1 of 1 images written to " + str(tmp_path / "cuts" / "cutout.png") in capsys.readouterr().err
    (tmp_path / "folder.png").mkdir()
    assert cli.main(["remove", str(source), "-o", str(tmp_path / "folder.png"), "-q"]) == 0
    assert Image.open(tmp_path / "folder.png" / "cat.png").mode == "RGBA"
    capsys.readouterr()
    for output in ("cutout.jpg", "cat.jpg"):  # the second is the photo itself: refused all the same
        assert cli.main(["remove", str(source), "-o", str(tmp_path / output), "-q"]) == 2
        assert capsys.readouterr().err.strip() == (f"error: {tmp_path / output}: a photo's cutout is written as "
                                                   ".png; name the output so, or give a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.jpg", "cuts", "folder.png"]


def test_a_background_picture_that_is_not_there_is_named(tmp_path, capsys):
    """--background takes a colour or a picture's path; a path to nothing was read as a colour."""
    for value in ("beach.jpg", "pictures/beach"):
        assert cli.main(["remove", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o"), "--background", value]) == 2
        assert capsys.readouterr().err.strip() == f"error: background image {value}: file not found"
    assert not (tmp_path / "o").exists()


def test_a_failed_file_is_named_once(tmp_path, capsys):
    assert cli.main(["remove", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o"), "-q"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == f"error: {tmp_path / 'missing.png'}: file not found"


def test_bad_parameters_and_models_exit_with_one_line(tmp_path):
    run = run_cli("remove", tmp_path, "-o", tmp_path / "o", "--model", "nope")
    assert run.returncode == 2 and "unknown model 'nope'" in run.stderr and "Traceback" not in run.stderr
    (tmp_path / "x.png").write_bytes(b"x")
    run = run_cli("remove", tmp_path / "x.png", "-o", tmp_path / "o", "--erode-size", "-3")
    assert run.returncode == 2 and "alpha_matting_erode_size" in run.stderr


def test_photos_need_no_pyav(tmp_path, photos, u2netp_path):
    """Where PyAV cannot be imported (no wheel for the platform), photos and the other commands
    still work; only a video says what is missing."""
    (tmp_path / "av.py").write_text("raise ImportError('no PyAV here')\n")
    Image.fromarray(photos["chelsea"]).resize((150, 100)).save(tmp_path / "cat.png")
    (tmp_path / "clip.mp4").write_bytes(b"not read")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "segkit", *map(str, args)], capture_output=True, text=True,
                              timeout=300, env=env)

    assert run("models").returncode == 0
    done = run("remove", tmp_path / "cat.png", tmp_path / "clip.mp4", "-o", tmp_path / "out", "-q")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert Image.open(tmp_path / "out" / "cat.png").size == (150, 100)
    assert "clip.mp4: videos need PyAV (pip install av), which did not load: no PyAV here" in done.stderr


def test_models_and_download_commands(u2netp_path):
    run = run_cli("models")
    assert run.returncode == 0 and "u2netp" in run.stdout and "cached" in run.stdout
    run = run_cli("download", "u2netp")
    assert run.returncode == 0 and str(u2netp_path) in run.stdout


def test_the_installed_command_runs_from_any_folder(tmp_path, photos, u2netp_path):
    """`make setup` installs segkit in editable mode (pyproject.toml): `segkit` and `python -m segkit`
    work outside the repository, where `python -m segkit` used to say "No module named segkit"."""
    (tmp_path / "cat.png").write_bytes(png_bytes(photos["chelsea"]))
    command = os.path.join(os.path.dirname(sys.executable), "segkit")
    assert os.path.exists(command), "segkit is not installed in this environment: run `make setup`"
    env = {**os.environ, "PYTHONPATH": ""}  # nothing but the installation finds the package
    run = subprocess.run([command, "remove", "cat.png", "-o", "cut.png", "-q"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-500:]
    assert Image.open(tmp_path / "cut.png").mode == "RGBA"
    usage = subprocess.run([command, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert usage.stdout.startswith("usage: segkit ")  # as the user typed it
    run = subprocess.run([sys.executable, "-m", "segkit", "models"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0 and "u2netp" in run.stdout


def test_bad_option_values_are_named_before_any_image_is_read(tmp_path, capsys):
    """A sample of the generated corpus as command-line text: NaN, infinity, huge and fractional
    numbers, text for numbers, bad colours, an unknown model. In this process (``cli.main``, what
    ``python -m segkit`` calls): a process per case cost CI half a minute, and the tests above already
    run the command itself."""
    flags = {"alpha_matting_foreground_threshold": "--foreground-threshold", "alpha_matting_erode_size": "--erode-size",
             "background": "--background", "model": "--model"}
    wanted = {"nan", "inf", "-inf", "1e+308", "2.5", "abc", "rgb(a,b,c)", "rgb(1e400,0,0)", "rgb(", "nope"}
    cases = [(name, str(value), must) for options, must in corpus.bad_options() if len(options) == 1
             for name, value in options.items() if name in flags and str(value) in wanted]
    assert len(cases) >= 10
    for name, value, must in cases:
        try:
            code = cli.main(["remove", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o"),
                             f"{flags[name]}={value}"])
        except SystemExit as exc:  # argparse's own refusals
            code = exc.code
        stderr = capsys.readouterr().err
        assert code == 2 and re.search(must, stderr.splitlines()[-1].removeprefix("error: ")), (name, value, stderr[-300:])
        assert not (tmp_path / "o").exists(), (name, value)


def test_no_input_is_lost_to_a_shared_output_name_or_written_over(tmp_path, photos, u2netp_path):
    """photo.jpg and photo.webp would both become photo.png: each keeps its suffix in the name
    instead. What that cannot separate, and a cutout that would replace its own photo, stop the
    run before any work, naming the files."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    small = Image.fromarray(photos["chelsea"]).resize((90, 60))
    small.save(inputs / "cat.jpg")
    small.save(inputs / "CAT.webp")  # the same name where case does not count (macOS, Windows)
    small.resize((60, 90)).save(inputs / "tall.png")
    out = tmp_path / "out"
    run = run_cli("remove", inputs, "-o", out, "-q")
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["CAT.webp.png", "cat.jpg.png", "tall.png"]
    assert Image.open(out / "tall.png").size == (60, 90) and "3 of 3 images written" in run.stderr

    (tmp_path / "other").mkdir()
    small.save(tmp_path / "other" / "cat.jpg")
    run = run_cli("remove", inputs / "cat.jpg", tmp_path / "other" / "cat.jpg", "-o", tmp_path / "out2", "-q")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"{inputs / 'cat.jpg'} and {tmp_path / 'other' / 'cat.jpg'} would both be written to cat.png" in run.stderr
    assert not (tmp_path / "out2").exists()

    before = (inputs / "tall.png").read_bytes()
    run = run_cli("remove", inputs, "-o", inputs, "-q")
    assert run.returncode == 2 and "tall.png: its cutout would be written over it" in run.stderr
    assert (inputs / "tall.png").read_bytes() == before and len(list(inputs.iterdir())) == 3


def test_a_cutout_that_cannot_be_written_is_reported_and_the_rest_are_written(tmp_path, photos, u2netp_path,
                                                                               capsys):
    """An output that can't be written (here a folder already holds its name; a full disk or a
    read-only folder alike) fails that input alone, in one line, and leaves no partial file."""
    for name in ("cat", "cup"):
        Image.fromarray(photos["chelsea" if name == "cat" else "coffee"]).resize((150, 100)).save(
            tmp_path / f"{name}.png")
    out = tmp_path / "out"
    (out / "cat.png").mkdir(parents=True)
    assert cli.main(["remove", str(tmp_path / "cat.png"), str(tmp_path / "cup.png"), "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'cat.png'}: could not write {out / 'cat.png'}: Is a directory" in err
    assert "1 of 2 images written" in err and "Traceback" not in err
    assert Image.open(out / "cup.png").size == (150, 100)
    assert sorted(p.name for p in out.iterdir()) == ["cat.png", "cup.png"]  # no .part file left


def test_a_png_stopped_mid_write_leaves_nothing_under_its_name(tmp_path, monkeypatch):
    """Ctrl-C (or a full disk) while a PNG is written: no cut-off file a person or a rerun would
    take for finished, no temporary file either; an earlier file of that name stays whole."""
    from segkit.io import encode
    from segkit.io.encode import save_png

    target = tmp_path / "cut.png"
    save_png(Image.new("RGBA", (40, 30), (1, 2, 3, 4)), target)
    written = target.read_bytes()

    def stopped(image, file):  # FFmpeg's encoder or Pillow's, stopped half-way
        file.write(b"\x89PNG\r\n\x1a\n half")
        raise KeyboardInterrupt

    monkeypatch.setattr(encode, "_write_png", stopped)
    with pytest.raises(KeyboardInterrupt):
        save_png(Image.new("RGBA", (40, 30)), target)
    assert target.read_bytes() == written and [p.name for p in tmp_path.iterdir()] == ["cut.png"]


def test_a_folder_from_a_phone_or_a_mac_and_a_rerun_into_it(tmp_path, photos, u2netp_path):
    """HEIC (iPhones' photos, turned as phones store portraits), AVIF and a camcorder's .mts
    clip are read; macOS's hidden ._ files are not inputs, files of other kinds are named in one
    line, and a rerun into a folder inside the inputs does not take the first run's cutouts for
    photos. A new process each run: segkit registers the HEIC reader itself."""
    from video_clips import photo_frames, write_clip

    inputs = tmp_path / "DCIM"
    inputs.mkdir()
    photo = Image.fromarray(photos["astronaut"]).resize((120, 90))
    (inputs / "IMG_0001.HEIC").write_bytes(corpus.heic(photo, orientation=6))
    (inputs / "._IMG_0001.HEIC").write_bytes(b"\0\5\x16\7\0\2\0\0Mac OS X        ")  # AppleDouble
    (inputs / "IMG_0001.HEIC.json").write_text("{}")  # a photo export's sidecar
    photo.save(inputs / "cat.avif")
    write_clip(inputs / "00001.MTS", photo_frames(64, 48, 3), audio=False)
    out = inputs / "cutouts"
    for _ in range(2):
        run = run_cli("remove", inputs, "-o", out, "-q")
        assert run.returncode == 0, run.stderr
        assert "skipped 1 file, neither photo nor video: IMG_0001.HEIC.json" in run.stderr
        assert "3 of 3 files written" in run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["00001.webm", "IMG_0001.png", "cat.png"]
    assert Image.open(out / "IMG_0001.png").size == (90, 120) and Image.open(out / "cat.png").mode == "RGBA"


def test_skip_existing_goes_on_after_a_stopped_run(tmp_path, photos, u2netp_path, capsys, monkeypatch):
    """--skip-existing leaves what a stopped run wrote alone (outputs appear whole or not at all)
    and writes the rest; with everything there it loads no model and says so."""
    for name in ("cat", "cup"):
        Image.fromarray(photos["chelsea" if name == "cat" else "coffee"]).resize((150, 100)).save(
            tmp_path / f"{name}.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "cat.png").write_bytes(b"written by the stopped run")
    argv = ["remove", str(tmp_path / "cat.png"), str(tmp_path / "cup.png"), "-o", str(out), "-q", "--skip-existing"]
    assert cli.main(argv) == 0
    assert f"1 of 2 images written to {out}, 1 already there" in capsys.readouterr().err
    assert (out / "cat.png").read_bytes() == b"written by the stopped run"
    assert Image.open(out / "cup.png").size == (150, 100)
    loads = []
    monkeypatch.setattr(cli, "preload", loads.append)
    assert cli.main(argv) == 0
    monkeypatch.undo()
    assert f"0 of 2 images written to {out}, 2 already there" in capsys.readouterr().err and loads == []
    assert cli.main(argv[:-1]) == 0  # without the flag every output is written again
    assert Image.open(out / "cat.png").size == (150, 100)
