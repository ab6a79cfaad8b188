"""The Video tab's endpoints through the real app server, driven by gradio_client: a clip
made here comes back as a webm with alpha, a clip over the limit gets its own message, and
a cancelled job keeps nothing in the output folder, running or still queued."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from appserver import AppServer
from video_clips import decoded_output, make_clip

pytestmark = pytest.mark.slow
LIMIT_SECONDS = 2


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    return tmp_path_factory.mktemp("outputs")


@pytest.fixture(scope="module")
def server(u2netp_path, outputs):
    app = AppServer(env={"SEGKIT_MAX_VIDEO_SECONDS": str(LIMIT_SECONDS), "SEGKIT_OUTPUT_DIR": str(outputs)})
    yield app
    app.stop()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    make_clip(folder / "short.mp4", count=12)  # one second at 12 frames a second
    make_clip(folder / "long.mp4", count=12 * (LIMIT_SECONDS + 1), audio=False)
    make_clip(folder / "full.mp4", count=12 * LIMIT_SECONDS, audio=False)
    return folder


def files_in(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def test_clip_comes_back_as_webm_with_alpha(client, clips):
    preview, downloads, notes = client.predict(handle_file(str(clips / "short.mp4")), formats=["webm", "zip"],
                                               api_name="/segment_video")
    assert preview.endswith("short-cutout.webm")
    assert [d.rsplit("/", 1)[1] for d in downloads] == ["short-cutout.webm", "short-cutout.zip"]
    assert notes.startswith("**12 frames in ")
    frames = decoded_output(Path(preview))
    assert len(frames) == 12 and frames[0][1].shape == (64, 96, 4)
    alpha = frames[6][1][:, :, 3]
    assert 0.05 < (alpha > 127).mean() < 0.95  # a subject, and background around it


@pytest.mark.parametrize("name", ["00001.MTS", "clip.3gp"])
def test_a_camcorders_or_an_old_phones_clip_is_taken(client, clips, name):
    """Python knows no video type for .mts (AVCHD camcorders) and calls .3gp audio: the upload
    goes by suffix too, and the clip comes back cut out."""
    make_clip(clips / name, count=6, audio=False)
    preview, _, notes = client.predict(handle_file(str(clips / name)), api_name="/segment_video")
    assert preview.endswith(f"{Path(name).stem}-cutout.webm") and notes.startswith("**6 frames in ")


def test_too_long_a_clip_is_refused_with_the_limit(client, clips, outputs):
    before = files_in(outputs)
    with pytest.raises(Exception, match=rf"long.mp4: video is too long \(3.0 s; the limit is {LIMIT_SECONDS} "
                                        r"seconds, set SEGKIT_MAX_VIDEO_SECONDS to raise it\)"):
        client.predict(handle_file(str(clips / "long.mp4")), api_name="/segment_video")
    assert files_in(outputs) == before


def test_limits_are_in_the_upload_label(client):
    labels = [c["props"].get("label") or "" for c in client.config["components"]]
    assert f"Video (up to {LIMIT_SECONDS} s, 2.1 megapixels a frame, 100 MB)" in labels


def test_cancel_keeps_nothing(client, clips, outputs):
    before = files_in(outputs)
    job = client.submit(handle_file(str(clips / "full.mp4")), formats=["webm", "mov", "mp4", "zip"],
                        api_name="/segment_video")
    deadline = time.time() + 60
    while not (job.status().progress_data or job.done()) and time.time() < deadline:
        time.sleep(0.1)
    assert not job.done(), "the job ended before it could be cancelled"
    client.predict(api_name="/cancel_video")
    preview, downloads, notes = job.result(timeout=60)
    assert preview is None and downloads == []
    assert notes.startswith("Cancelled at frame ") and notes.endswith("; nothing was kept.")
    assert files_in(outputs) == before
    assert not any(p.name.endswith(".partial.webm") for p in outputs.rglob("*"))


def test_cancel_while_queued_stops_the_job_before_it_starts(client, server, clips, outputs):
    before = files_in(outputs)
    other = Client(server.url, verbose=False)  # another visitor's job holds the queue's one worker
    blocker = other.submit(handle_file(str(clips / "full.mp4")), formats=["webm", "mov", "mp4", "zip"],
                           api_name="/segment_video")
    deadline = time.time() + 60
    while not blocker.status().progress_data and time.time() < deadline:
        time.sleep(0.1)
    job = client.submit(handle_file(str(clips / "short.mp4")), api_name="/segment_video")
    while job.status().code.name != "IN_QUEUE" and time.time() < deadline:
        time.sleep(0.1)
    assert not blocker.done() and job.status().code.name == "IN_QUEUE"
    client.predict(api_name="/cancel_video")
    other.predict(api_name="/cancel_video")
    assert job.result(timeout=60) == (None, [], "Cancelled; nothing was kept.")
    assert blocker.result(timeout=60)[2].startswith("Cancelled at frame ")
    assert files_in(outputs) == before
