"""A real browser: headless Chromium (Debian's) opens the page, uploads a photo,
presses the button and sees the cutout in the gallery. Saves artifacts/browser.png."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

import segkit

from appserver import REPO, AppServer
from helpers import png_bytes

CHROMIUM = os.getenv("SEGKIT_CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM}: install Debian's "
                       "`chromium` (apt-get install chromium) or set SEGKIT_CHROMIUM; .ci/run installs it"),
]
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def server(u2netp_path):
    app = AppServer()
    yield app
    app.stop()


def test_upload_photo_and_see_cutout(server, photos, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    photo = tmp_path / "cat.png"
    photo.write_bytes(png_bytes(photos["chelsea"]))
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url, wait_until="domcontentloaded")
        expect(page.get_by_text(f"Device: {segkit.device()}")).to_be_visible(timeout=30_000)
        page.locator("input[type=file]").first.set_input_files(str(photo))
        expect(page.get_by_text("cat.png").first).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Remove background").click()
        cutout = page.locator("img[src$='/cat.png']").first
        expect(cutout).to_be_visible(timeout=120_000)
        expect(page.get_by_text("cat.png · 451×300").first).to_be_visible(timeout=10_000)
        expect(page.get_by_role("button", name="Download all (zip)")).to_be_visible(timeout=10_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(artifacts / "browser.png"), full_page=True)
        src = cutout.get_attribute("src")
        browser.close()
    served = tmp_path / "served.png"
    served.write_bytes(requests.get(src if src.startswith("http") else server.url + src.lstrip("/"), timeout=30).content)
    image = Image.open(served)
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (451, 300)
    assert 0.05 < (np.asarray(image)[:, :, 3] > 127).mean() < 0.95
