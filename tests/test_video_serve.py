"""The app's video and live backends (segkit.video.serve, segkit.video.live) with the real
u2netp, on clips made here (tests/video_clips.py)."""

from __future__ import annotations

import numpy as np
import pytest

import segkit
from segkit.video import live
from segkit.video.serve import Jobs, VideoCancelled, limits_in_words, serve_video, time_left

from video_clips import make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory, u2netp_path):
    path = tmp_path_factory.mktemp("clips") / "walk.mp4"
    make_clip(path, count=12)
    return path


def test_time_left_extrapolates_the_rate_so_far():
    assert time_left(0, 300, 0.0) == ""
    assert time_left(120, 300, 8.0) == "about 12 s left"
    assert time_left(10, 300, 10.0) == "about 5 min left"
    assert time_left(300, 300, 20.0) == ""


def test_limits_in_words_follow_the_environment(monkeypatch):
    monkeypatch.setenv("SEGKIT_MAX_VIDEO_SECONDS", "30")
    monkeypatch.setenv("SEGKIT_MAX_VIDEO_PIXELS", str(1920 * 1080))
    monkeypatch.setenv("SEGKIT_MAX_VIDEO_MB", "100")
    assert limits_in_words() == "up to 30 s, 2.1 megapixels a frame, 100 MB"


def test_each_format_is_written_and_progress_counts_every_pass(clip, tmp_path):
    seen = []
    served = serve_video(clip, formats=("zip",), root=tmp_path, progress=lambda f, text: seen.append((f, text)))
    assert [p.rsplit(".", 1)[1] for p in [served.preview, *served.files]] == ["webm", "zip"]
    assert served.frames == 12
    assert seen[-1] == (1.0, "frame 12 of 12 · zip, 2 of 2")
    assert any(text.startswith("frame 6 of 12 · webm, 1 of 2 · about ") for _, text in seen)


def test_over_a_limit_nothing_is_started(clip, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_MAX_VIDEO_SECONDS", "0.5")
    with pytest.raises(segkit.InvalidInputError, match=r"walk.mp4: video is too long \(1.0 s; the limit is 0.5"):
        serve_video(clip, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cancel_removes_the_request_folder(clip, tmp_path):
    jobs = Jobs()
    with jobs.running("visitor") as flag:
        def cancel_at_third_frame(fraction, text):
            if text.startswith("frame 3 of"):
                assert jobs.cancel("visitor")
        with pytest.raises(VideoCancelled):
            serve_video(clip, formats=("webm", "mov"), root=tmp_path, progress=cancel_at_third_frame, cancel=flag)
    assert list(tmp_path.iterdir()) == []
    assert not jobs.cancel("visitor")  # the job is over: this one stops the next before it starts


def test_a_job_cancelled_while_queued_does_nothing_and_a_new_request_is_not_cancelled(clip, tmp_path):
    jobs = Jobs()
    jobs.expect("visitor")  # the button pressed: the job waits in the queue
    assert jobs.cancel("visitor")
    with jobs.running("visitor") as flag, pytest.raises(VideoCancelled, match="before it started"):
        serve_video(clip, root=tmp_path, cancel=flag)
    assert list(tmp_path.iterdir()) == []
    jobs.cancel("visitor")  # too late: the job is over
    jobs.expect("visitor")  # the button pressed again
    with jobs.running("visitor") as flag:
        assert not flag.is_set()


def test_no_video_bad_format_and_bad_option_are_named(tmp_path):
    with pytest.raises(segkit.InvalidInputError, match="no video given"):
        serve_video(None, "", root=tmp_path)
    with pytest.raises(segkit.InvalidInputError, match="formats: 'gif' is not one of webm, mov, mp4, zip"):
        serve_video(None, "", formats=("gif",), root=tmp_path)
    with pytest.raises(segkit.InvalidInputError, match="alpha_matting_erode_size: must be a whole number"):
        serve_video(None, "https://example.com/clip.mp4", root=tmp_path, alpha_matting_erode_size=-1)
    assert list(tmp_path.iterdir()) == []


def test_live_model_prefers_modnet_where_cached(monkeypatch):
    monkeypatch.setattr(live, "is_cached", lambda spec: spec.name == "modnet-w")
    assert live.live_model() == "modnet-w"
    monkeypatch.setattr(live, "is_cached", lambda spec: False)
    assert live.live_model() == "u2netp"


def test_frame_rate_is_a_running_average():
    rate = live.FrameRate(window=4)
    assert rate.tick(0.0) == 0.0
    assert [rate.tick(t) for t in (0.5, 1.0)] == [2.0, 2.0]
    for t in (1.1, 1.2, 1.3, 1.4):  # the slow start leaves the window
        last = rate.tick(t)
    assert last == pytest.approx(10.0)


def test_cut_frame_gives_the_cutout_and_the_rate_line(photos, u2netp_path):
    rate = live.FrameRate()
    frame = photos["astronaut"][::4, ::4]
    cutout, line = live.cut_frame(frame, rate, model="u2netp")
    assert cutout.mode == "RGBA" and cutout.size == (128, 128) and line.startswith("measuring frames/s")
    cutout, line = live.cut_frame(frame, rate, model="u2netp", background="#00ff00")
    assert cutout.mode == "RGB" and " frames/s · u2netp · 128×128" in line
    assert (np.asarray(cutout).reshape(-1, 3) == [0, 255, 0]).all(axis=1).mean() > 0.05


def test_big_live_frames_are_shrunk_first(u2netp_path):
    frame = np.zeros((1440, 1920, 3), np.uint8)
    cutout, line = live.cut_frame(frame, model="u2netp")
    assert cutout.size == (live.LONG_SIDE, live.LONG_SIDE * 3 // 4) and line.endswith("640×480")


def test_a_full_disk_mid_video_gets_the_storage_message_and_leaves_no_folder(clip, tmp_path, monkeypatch):
    """ENOSPC from the encoder (injected: a disk can't be filled here) is the server's fault: the
    visitor reads that, as for photos, not Gradio's generic error; the request's folder goes."""
    import errno

    from segkit.video import writer

    def full(self, pts, image):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer.VideoWriter, "write", full)
    with pytest.raises(segkit.SegkitError, match=r"^the server could not store the results \(its disk is full"):
        serve_video(clip, root=tmp_path)
    assert list(tmp_path.iterdir()) == []
