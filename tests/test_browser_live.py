"""The Live tab in a real browser: headless Chromium with its fake camera streams to the app,
and cut-out frames come back with the frame rate. Saves artifacts/live-*.png, wide and narrow."""

from __future__ import annotations

import re
import time
from io import BytesIO

import pytest
import requests
from PIL import Image

from appserver import REPO, AppServer
from helpers import BROWSER, CHROMIUM
from helpers import CHROMIUM_FLAGS as FLAGS

pytestmark = BROWSER

FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
SCREENS = {"1400": (1400, 1000), "390": (390, 844)}


@pytest.fixture(scope="module")
def server(u2netp_path):
    app = AppServer()
    yield app
    app.stop()


def frame_sources(page, count: int, timeout: float = 45) -> list[str]:
    """The live cutout's image address, each time it changes, until ``count`` are seen."""
    seen: list[str] = []
    deadline = time.time() + timeout
    cutout = page.locator("#live-cutout img")
    while len(seen) < count and time.time() < deadline:
        src = cutout.first.get_attribute("src") if cutout.count() else None
        if src and (not seen or src != seen[-1]):
            seen.append(src)
        page.wait_for_timeout(100)
    return seen


@pytest.mark.slow
def test_webcam_stream_comes_back_cut_out(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS + FAKE_CAMERA)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Live").click()
        page.get_by_title("grant webcam access").click()
        page.get_by_role("button", name="capture photo").click()  # the webcam's Record button
        sources = frame_sources(page, 3)
        assert len(sources) == 3, f"only {len(sources)} cut-out frames came back"
        rate = page.locator("#live-rate")
        expect(rate).to_have_text(re.compile(r"\d+\.\d frames/s · u2netp · \d+×\d+"), timeout=20_000)
        size = tuple(map(int, re.search(r"(\d+)×(\d+)", rate.inner_text()).groups()))
        for name, (width, height) in SCREENS.items():
            page.set_viewport_size({"width": width, "height": height})
            frame_sources(page, 2, timeout=10)  # a fresh frame at this size
            page.screenshot(path=str(artifacts / f"live-{name}.png"), full_page=True)
        browser.close()
    address = sources[-1] if sources[-1].startswith(("http", "data:")) else server.url + sources[-1].lstrip("/")
    image = Image.open(BytesIO(requests.get(address, timeout=30).content))
    assert image.mode == "RGBA" and image.size == size  # transparent: the cutout itself, at the camera's size
