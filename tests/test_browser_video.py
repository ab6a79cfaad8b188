"""The Video tab in a real browser: headless Chromium uploads a clip made here, presses the
button, and plays the webm preview with its transparency. Saves artifacts/video-*.png."""

from __future__ import annotations

import pytest

from appserver import REPO, AppServer
from helpers import BROWSER, CHROMIUM
from helpers import CHROMIUM_FLAGS as FLAGS

from video_clips import make_clip

pytestmark = BROWSER

SCREENS = {"1400": (1400, 1000), "390": (390, 844)}
# the share of the playing frame that is see-through, read back from a canvas
TRANSPARENT_SHARE = """(video) => {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    const context = canvas.getContext("2d");
    context.drawImage(video, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let clear = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] < 128) clear++;
    return clear / (pixels.length / 4);
}"""


@pytest.fixture(scope="module")
def server(u2netp_path):
    app = AppServer()
    yield app
    app.stop()


@pytest.mark.slow
def test_clip_plays_back_cut_out(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    clip = tmp_path / "astronaut.mp4"
    make_clip(clip, width=320, height=240, count=24)
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Video").click()
        expect(page.get_by_text("Video (up to 60 s, 2.1 megapixels a frame, 100 MB)")).to_be_visible(timeout=30_000)
        page.locator("#video-upload input[type=file]").set_input_files(str(clip))
        expect(page.get_by_text("astronaut.mp4").first).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Cut out the video").click()
        expect(page.locator("#video-notes")).to_contain_text("24 frames in ", timeout=90_000)
        preview = page.locator("#video-preview video")
        expect(preview).to_be_visible(timeout=10_000)
        preview.evaluate("(video) => new Promise((done) => video.readyState >= 2 ? done() : "
                         "video.addEventListener('loadeddata', done, {once: true}))")
        share = preview.evaluate(TRANSPARENT_SHARE)
        expect(page.get_by_role("button", name="Cut out the video")).to_be_enabled()
        expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
        for name, (width, height) in SCREENS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(500)
            page.screenshot(path=str(artifacts / f"video-{name}.png"), full_page=True)
        browser.close()
    assert 0.05 < share < 0.95  # Chromium decoded the webm's alpha: background gone, subject kept
