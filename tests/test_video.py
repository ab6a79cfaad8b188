"""Video in, cutout video out: every frame's matte against segment() on that frame,
timing, rotation and sound kept, each format's pixel format, bad files, cancelling,
and smoothing. Clips are generated (tests/video_clips.py), a few dozen pixels wide."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import segkit
from segkit.cli import main as cli_main
from segkit.video import VideoCancelled, probe, segment_video
from segkit.video.reader import read_frames
from segkit.video.smooth import flicker
from video_clips import decoded_output, make_clip, photo_frames, write_clip

pytestmark = pytest.mark.slow


def zip_frames(path) -> list[Image.Image]:
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        return [Image.open(archive.open(name)).copy() for name in names]


@pytest.fixture(scope="module")
def clip(tmp_path_factory, u2netp_path):
    """A phone-like clip: stored turned, with a display matrix, and sound."""
    path = tmp_path_factory.mktemp("clips") / "pan.mp4"
    make_clip(path, width=64, height=96, count=12, rotation=90)
    return path


@pytest.fixture(scope="module")
def expected(clip):
    """segment()'s cutout and mask of each decoded, upright input frame: what every output must match."""
    images = [frame.image for frame in read_frames(probe(clip))]
    results = segkit.process(images)
    return images, [r.cutout for r in results], [r.mask for r in results]


def test_probe_reports_timing_rotation_and_sound(clip):
    info = probe(clip)
    assert (info.width, info.height, info.rotation) == (64, 96, 90)
    assert info.fps == 12 and info.frames == 12 and info.has_audio
    assert info.duration == pytest.approx(1.0, abs=0.01)


def test_png_sequence_equals_segment_exactly(clip, expected, tmp_path):
    images, cutouts, masks = expected
    out = segment_video(clip, tmp_path / "pan.zip")
    frames = zip_frames(out)
    assert len(frames) == len(images)
    for written, cutout in zip(frames, cutouts):
        assert written.mode == "RGBA" and np.array_equal(np.asarray(written), np.asarray(cutout))
    matte = zip_frames(segment_video(clip, tmp_path / "matte.zip", only_mask=True))
    assert all(m.mode == "L" and np.array_equal(np.asarray(m), np.asarray(e)) for m, e in zip(matte, masks))


def _kept_timing_and_sound(out, source, sound_codec):
    info, original = probe(out), probe(source)
    assert info.fps == pytest.approx(original.fps) and info.frames == original.frames
    assert info.duration == pytest.approx(original.duration, abs=1.5 / original.fps)
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == sound_codec
        samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio)])
    assert len(samples) / audio.rate == pytest.approx(original.duration, abs=0.1)
    assert 0.1 < np.sqrt(np.mean(np.square(samples[audio.rate // 10:-audio.rate // 10]))) < 0.3  # the sine


def test_webm_carries_alpha_within_codec_loss(clip, expected, tmp_path):
    out = segment_video(clip, tmp_path / "pan.webm")
    frames = decoded_output(out)
    assert {frame.format.name for frame, _ in frames} == {"yuva420p"}
    for (_, pixels), mask in zip(frames, expected[2]):
        error = np.abs(pixels[:, :, 3].astype(int) - np.asarray(mask))
        assert pixels.shape[:2] == (96, 64) and error.mean() < 3 and np.percentile(error, 99) < 40
    assert probe(out).rotation == 0  # WebM gets upright frames: its muxer writes no rotation
    _kept_timing_and_sound(out, clip, "opus")  # AAC cannot go into WebM: re-encoded


def test_mov_is_prores_4444_with_alpha_and_keeps_rotation(clip, expected, tmp_path):
    out = segment_video(clip, tmp_path / "pan.mov")
    frames = decoded_output(out)
    with av.open(str(out)) as container:
        assert container.streams.video[0].profile == "4444"
    assert {frame.format.name for frame, _ in frames} <= {"yuva444p10le", "yuva444p12le"}
    assert probe(out).rotation == 90
    for (_, pixels), mask in zip(frames, expected[2]):
        assert np.abs(pixels[:, :, 3].astype(int) - np.asarray(mask)).max() <= 2
    _kept_timing_and_sound(out, clip, "aac")  # copied as it is


def test_mp4_composes_over_a_colour(clip, expected, tmp_path):
    from segkit.io.compose import compose

    images, cutouts, _ = expected
    out = segment_video(clip, tmp_path / "pan.mp4", background="#00ff00")
    frames = decoded_output(out)
    assert {frame.format.name for frame, _ in frames} == {"yuv420p"} and probe(out).rotation == 90
    for (_, pixels), image, cutout in zip(frames, images, cutouts):
        want = np.asarray(compose(cutout, image, "#00ff00"), dtype=int)
        assert np.abs(pixels[:, :, :3].astype(int) - want).mean() < 6
    _kept_timing_and_sound(out, clip, "aac")


@pytest.mark.parametrize("suffix", ["webm", "mov", "mp4"])
def test_streams_and_frames_are_tagged_bt709_limited_range(clip, tmp_path, suffix):
    out = segment_video(clip, tmp_path / f"pan.{suffix}", background="#ff0000" if suffix == "mp4" else None)
    with av.open(str(out)) as container:
        codec = container.streams.video[0].codec_context
        frame = next(container.decode(video=0))
    bt709, limited = 1, 1
    for tagged in (codec, frame):
        assert (tagged.color_primaries, tagged.color_trc, tagged.colorspace, tagged.color_range) == \
            (bt709, bt709, bt709, limited)


def test_colours_are_converted_with_the_bt709_matrix_the_tags_name(clip, expected, tmp_path):
    out = segment_video(clip, tmp_path / "red.webm", background="#ff0000")  # upright, 8-bit yuv420p
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
    luma = np.frombuffer(frame.planes[0], np.uint8).reshape(frame.height, -1)[:, :frame.width]
    behind = np.asarray(expected[2][0]) == 0  # pure red where the subject is not
    assert behind.mean() > 0.05
    assert np.median(luma[behind]) == pytest.approx(16 + 219 * 0.2126, abs=2)  # BT.709 limited; BT.601 gives 81


def test_variable_frame_rate_keeps_each_frames_time(tmp_path):
    times = [0, 10, 15, 30, 35, 40, 60, 70]  # 1/120 s units
    source = write_clip(tmp_path / "vfr.mkv", photo_frames(48, 48, len(times)), timestamps=times, audio=False)
    out = segment_video(source, tmp_path / "vfr.mp4", background="white")
    with av.open(str(out)) as container:
        shown = [float(frame.time) for frame in container.decode(video=0)]
    assert shown == pytest.approx([t / 120 for t in times], abs=1e-3)


@pytest.mark.parametrize("suffix, sound", [("webm", "opus"), ("mov", "aac")])
def test_a_camcorder_clip_that_starts_late_starts_at_zero_with_its_sound(tmp_path, suffix, sound):
    """MPEG-TS (AVCHD's .mts) times its first frame anywhere, here 10 s in: the output starts at 0
    and lasts as long as the clip, with the sound (re-encoded or copied) where the pictures are."""
    times = [1200 + 10 * i for i in range(12)]  # 1/120 s units: 10 s on, 12 frames a second
    source = write_clip(tmp_path / "00001.mts", photo_frames(64, 48, 12), timestamps=times)
    assert probe(source).start > 9.9  # the sound's first samples (AAC's priming) a little before the pictures
    out = segment_video(source, tmp_path / f"cut.{suffix}")
    with av.open(str(out)) as container:
        shown = [float(frame.time) for frame in container.decode(video=0)]
        assert container.duration / av.time_base == pytest.approx(1.0, abs=0.15)
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == sound
        heard = list(container.decode(audio=0))
    assert shown[0] < 0.05 and abs(heard[0].time - shown[0]) < 1 / 12
    assert shown == pytest.approx([shown[0] + i / 12 for i in range(12)], abs=2e-3)
    assert sum(frame.samples for frame in heard) / heard[0].sample_rate == pytest.approx(1.0, abs=0.1)


def test_odd_size_ten_bit_source(tmp_path, u2netp_path):
    source = write_clip(tmp_path / "odd.mkv", photo_frames(641, 359, 3), codec="ffv1",
                        pixel_format="yuv420p10le", audio=False)  # x264 and VP9 take no odd 4:2:0 sizes
    assert probe(source).pixel_format == "yuv420p10le"
    images = [frame.image for frame in read_frames(probe(source))]
    masks = segkit.segment(images, only_mask=True)
    frames = decoded_output(segment_video(source, tmp_path / "odd.webm"))
    assert frames[0][1].shape[:2] == (359, 641)  # VP9 takes odd sizes
    assert all(np.abs(p[:, :, 3].astype(int) - np.asarray(m)).mean() < 3 for (_, p), m in zip(frames, masks))
    frames = decoded_output(segment_video(source, tmp_path / "odd.mov"))
    assert frames[0][1].shape[:2] == (358, 640)  # ProRes and H.264 get even sizes: one row and column cropped


def _garbage(tmp_path):
    valid = tmp_path / "valid.mp4"
    make_clip(valid, count=6)
    sound = av.open(str(tmp_path / "sound.m4a"), "w")
    stream = sound.add_stream("aac", rate=8000)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.float32), format="flt", layout="mono")
    frame.sample_rate = 8000
    sound.mux(stream.encode(frame))
    sound.mux(stream.encode(None))
    sound.close()
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    (tmp_path / "cut.mp4").write_bytes(valid.read_bytes()[:600])
    Image.fromarray(photo_frames(96, 64, 1)[0]).save(tmp_path / "photo.mp4", format="JPEG")  # a renamed photo
    return {"empty.mp4": "empty", "noise.mp4": "not a video", "sound.m4a": "no video stream",
            "cut.mp4": "", "missing.mp4": "not found", "photo.mp4": "a still image (mjpeg), not a video"}


def test_bad_files_are_named_with_their_problem(tmp_path):
    for name, problem in _garbage(tmp_path).items():
        with pytest.raises(segkit.InvalidInputError) as caught:
            segment_video(tmp_path / name, tmp_path / "out" / f"{name}.webm")
        assert name in str(caught.value) and problem in str(caught.value)
    assert not any((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_limits_are_checked_before_work(clip, tmp_path, monkeypatch):
    for variable, value, words in (("SEGKIT_MAX_VIDEO_SECONDS", "0.5", "too long"),
                                   ("SEGKIT_MAX_VIDEO_PIXELS", "1000", "too large a frame"),
                                   ("SEGKIT_MAX_VIDEO_MB", "0.001", "too large a file")):
        monkeypatch.setenv(variable, value)
        with pytest.raises(segkit.InvalidInputError, match=f"pan.mp4: video is {words}.*{variable}"):
            segment_video(clip, tmp_path / "pan.webm")
        monkeypatch.delenv(variable)
    assert list(tmp_path.iterdir()) == []


def test_a_clip_is_never_written_over_itself(clip, tmp_path):
    """segment_video("clip.mp4", "clip.mp4") used to replace the clip with its cutout once done.
    The same path, a link to it or a hard link to it is refused before any work, the clip untouched."""
    original = clip.read_bytes()
    (tmp_path / "link.mp4").symlink_to(clip)
    os.link(clip, tmp_path / "hard.mp4")
    for target in (clip, tmp_path / "link.mp4", tmp_path / "hard.mp4", tmp_path / ".." / tmp_path.name / "hard.mp4"):
        with pytest.raises(segkit.InvalidInputError, match="pan.mp4: its cutout would be written over it; "
                                                           "choose another target file"):
            segment_video(clip, target, background="blur")
    assert clip.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.mp4", "link.mp4"]


def test_a_target_that_cannot_be_written_is_named_before_any_frame(clip, tmp_path):
    """A folder under the target's name failed at the final rename, once every frame was done, with
    IsADirectoryError; a file where a folder goes failed with FileExistsError; PyAV only opens its
    file with the first frame. Each is now an InvalidInputError naming the target, before any frame."""
    (tmp_path / "out.webm").mkdir()
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    cases = {tmp_path / "out.webm": "out.webm: is a folder; name the file to write, such as ",
             tmp_path / "notes.txt" / "pan.webm": "pan.webm: cannot be written (.*notes.txt is a file, not a folder)",
             tmp_path / "pan": "pan: no format; end the name with .webm, .mov, .mp4, .zip, or pass fmt"}
    frames = []
    for target, message in cases.items():
        with pytest.raises(segkit.InvalidInputError, match=message):
            segment_video(clip, target, progress=lambda done, total: frames.append(done))
    with pytest.raises(segkit.InvalidInputError, match="pan.webm: its suffix says webm, the format asked is mov"):
        segment_video(clip, tmp_path / "pan.webm", fmt="mov")
    with pytest.raises(segkit.InvalidInputError, match=f"{tmp_path.name}: is a folder, not a video file"):
        segment_video(tmp_path, tmp_path / "pan.webm")
    with pytest.raises(segkit.InvalidInputError, match=r"^https://example.com/clip.mp4: a URL, not a file; fetch it"):
        segment_video("https://example.com/clip.mp4", tmp_path / "pan.webm")  # was "clip.mp4: file not found"
    with pytest.raises(segkit.InvalidInputError, match=r"^progress: must be a function called as progress\(done, "):
        segment_video(clip, tmp_path / "pan.webm", progress=True)  # failed after the first frame
    with pytest.raises(segkit.InvalidInputError, match=r"^cancel: must be a threading.Event"):
        segment_video(clip, tmp_path / "pan.webm", cancel=True)
    assert frames == [] and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "out.webm"]
    assert list((tmp_path / "out.webm").iterdir()) == []


def test_a_killed_jobs_partial_file_goes_with_the_next_job_to_that_target(clip, tmp_path):
    """SIGKILL (the OOM killer, kill -9) gives a job no chance to remove its hidden partial file: a
    video's can be hundreds of MB. The next job writing the same target removes it, once its process
    is gone; a live job's file and another host's (a shared disk) stay."""
    target = tmp_path / "pan.mov"
    killed = subprocess.run([sys.executable, "-c", f"""
import os, signal
from segkit.video import segment_video
segment_video({str(clip)!r}, {str(target)!r}, progress=lambda done, total: done == 3 and os.kill(os.getpid(), signal.SIGKILL))
"""], capture_output=True, text=True, timeout=300, cwd=Path(segkit.__file__).parents[1])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-500:]
    (left,) = tmp_path.glob(".pan.*.partial.mov")
    assert left.stat().st_size > 0 and not target.exists()
    live = tmp_path / f".pan.{socket.gethostname()}-{os.getpid()}-abcdef.partial.mov"
    elsewhere = tmp_path / ".pan.another-host-1-abcdef.partial.mov"
    live.write_bytes(b"a live job's")
    elsewhere.write_bytes(b"another machine's")
    segment_video(clip, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, elsewhere.name, "pan.mov"])


@pytest.mark.parametrize("how", ["event", "progress raises"])
def test_cancel_leaves_no_file(clip, tmp_path, how):
    cancel = threading.Event()

    def progress(done, total):
        if done == 3:
            cancel.set()
            if how == "progress raises":
                raise KeyboardInterrupt

    with pytest.raises((VideoCancelled, KeyboardInterrupt)):
        segment_video(clip, tmp_path / "pan.mov", progress=progress, cancel=cancel)
    assert list(tmp_path.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("segkit-video")]


def test_smoothing_reduces_flicker(tmp_path, u2netp_path):
    """A clip whose content moves a known (0, -1) pixel a frame, with sensor noise."""
    frames = photo_frames(96, 64, 12, pan=(0, 1), zoom=0, noise=6)
    source = write_clip(tmp_path / "noisy.mkv", frames, codec="ffv1", pixel_format="yuv444p", audio=False)
    motion = [(0.0, -1.0)] * len(frames)
    mattes = {}
    for smooth in (False, True):
        out = segment_video(source, tmp_path / f"{smooth}.zip", only_mask=True, smooth=smooth)
        mattes[smooth] = [np.asarray(m) for m in zip_frames(out)]
    assert np.array_equal(mattes[False][0], mattes[True][0])  # the first frame has no past
    assert flicker(mattes[True], motion) < flicker(mattes[False], motion)


def test_cli_writes_one_clip_to_the_file_named(clip, tmp_path, capsys):
    """`remove clip.mp4 -o out.mov` writes out.mov, its format from the name (it wrote out.mov/clip.webm)."""
    assert cli_main(["remove", str(clip), "-o", str(tmp_path / "out.mov"), "-q"]) == 0
    assert probe(tmp_path / "out.mov").codec == "prores" and probe(tmp_path / "out.mov").frames == 12
    for output, flags, message in (("out.webm", ["--format", "mov"], "ends in .webm but --format is mov"),
                                   ("out.mkv", [], "a video's cutout is written as .webm, .mov, .mp4, .zip")):
        assert cli_main(["remove", str(clip), "-o", str(tmp_path / output), "-q", *flags]) == 2
        assert message in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["out.mov"]


def test_cli_mixes_photos_and_clips(clip, tmp_path, photos):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(clip.read_bytes())
    Image.fromarray(photos["chelsea"]).resize((64, 48)).save(folder / "cat.png")
    assert cli_main(["remove", str(folder), "-o", str(tmp_path / "out"), "--format", "mov", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cat.png", "clip.mov"]
    assert probe(tmp_path / "out" / "clip.mov").frames == 12
