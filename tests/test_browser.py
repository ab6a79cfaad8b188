"""A real browser: headless Chromium (Debian's) drives the real app as a first-time visitor
would, at 1400x1000 and at phone size (390x844). Each test names the visitor's problem it
guards against. Screenshots go to artifacts/."""

import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

import segkit
from appserver import REPO, AppServer, free_port
from helpers import BROWSER, CHROMIUM, CHROMIUM_FLAGS, png_bytes

pytestmark = BROWSER
FLAGS = CHROMIUM_FLAGS
DESKTOP, PHONE = {"width": 1400, "height": 1000}, {"width": 390, "height": 844}
ARTIFACTS = REPO / "artifacts"


def offline_app(u2netp_path, home, **env: str) -> AppServer:
    """The app with a model cache holding only u2netp and every download source a closed port on the
    loopback: every other model is "not cached" and unreachable, and no test traffic leaves the machine."""
    shutil.copy(u2netp_path, home / "u2netp.onnx")
    return AppServer(env={"U2NET_HOME": str(home), "SEGKIT_WEIGHTS_MIRROR": f"http://127.0.0.1:{free_port()}", **env})


@pytest.fixture(scope="module")
def server(u2netp_path, tmp_path_factory):
    app = offline_app(u2netp_path, tmp_path_factory.mktemp("home"))
    yield app
    app.stop()


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


def open_page(chromium, server, viewport=DESKTOP):
    from playwright.sync_api import expect

    page = chromium.new_page(viewport=viewport)
    page.goto(server.url, wait_until="domcontentloaded")
    expect(page.get_by_text(f"Device: {segkit.device()}")).to_be_visible(timeout=30_000)
    return page


@pytest.fixture
def page(chromium, server):
    page = open_page(chromium, server)
    yield page
    page.close()


@pytest.fixture
def cat(tmp_path, photos):
    path = tmp_path / "cat.png"
    path.write_bytes(png_bytes(photos["chelsea"]))
    return path


def upload(page, *paths):
    page.locator("input[type=file]").first.set_input_files([str(p) for p in paths])


def press_and_wait(page, cutouts=1):
    from playwright.sync_api import expect

    page.get_by_role("button", name="Remove background").click()
    expect(page.get_by_role("button", name="Remove background")).to_be_enabled(timeout=120_000)
    if cutouts:
        expect(page.locator("#notes").get_by_text(f"{cutouts} cutout")).to_be_visible(timeout=10_000)


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_upload_photo_and_see_cutout(page, cat, server):
    from playwright.sync_api import expect

    upload(page, cat)
    page.wait_for_function("() => document.querySelectorAll('.file-preview .filename').length == 1", timeout=30_000)
    assert file_names(page) == ["cat.png"]
    press_and_wait(page)
    cutout = page.locator("#results img[src$='/cat.png']").first
    expect(cutout).to_be_visible(timeout=10_000)
    expect(page.get_by_text("cat.png · 451×300").first).to_be_visible(timeout=10_000)
    expect(page.get_by_role("button", name="Download all (zip)")).to_be_visible(timeout=10_000)
    shot(page, "browser.png")
    src = cutout.get_attribute("src")
    served = requests.get(src if src.startswith("http") else server.url + src.lstrip("/"), timeout=30)
    image = Image.open(__import__("io").BytesIO(served.content))
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (451, 300)
    assert 0.05 < (np.asarray(image)[:, :, 3] > 127).mean() < 0.95


def test_an_iphone_photo_comes_back_upright_with_its_before_picture(page, tmp_path, photos):
    """iPhones save HEIC, which the browser cannot show: it is taken, cut out upright (stored
    turned, as phones store portraits) and the before/after shows the photo as a JPEG."""
    import corpus
    from playwright.sync_api import expect

    iphone = tmp_path / "IMG_0042.HEIC"
    portrait = Image.fromarray(photos["astronaut"]).resize((300, 400))
    iphone.write_bytes(corpus.heic(portrait.transpose(Image.Transpose.ROTATE_90), orientation=6))  # as the sensor saw it
    upload(page, iphone)
    page.wait_for_function("() => document.querySelectorAll('.file-preview .filename').length == 1", timeout=30_000)
    press_and_wait(page)
    expect(page.get_by_text("IMG_0042.png · 300×400").first).to_be_visible(timeout=10_000)
    before = page.locator("img[src$='IMG_0042-original.jpg']").first
    expect(before).to_be_visible(timeout=10_000)
    assert page.evaluate("(img) => img.naturalWidth", before.element_handle()) == 300
    shot(page, "browser-heic.png")


def test_the_gallery_fetches_previews_and_the_full_cutout_once(page, tmp_path, photos):
    """A Space's visitor waited for every full cutout of a batch (megabytes each) to see the gallery: it
    now shows previews, and the full cutout is fetched once, by the before/after, whose download
    button gives it."""
    from playwright.sync_api import expect

    big = tmp_path / "crew.jpg"
    Image.fromarray(photos["astronaut"]).resize((1200, 900)).save(big, quality=90)
    fetched = []
    page.on("response", lambda response: fetched.append(response.url))
    upload(page, big)
    page.wait_for_function("() => document.querySelectorAll('.file-preview .filename').length == 1", timeout=30_000)
    press_and_wait(page)
    thumb = page.locator("#results .gallery-item img").first
    expect(thumb).to_be_visible(timeout=10_000)
    assert thumb.get_attribute("src").endswith("/crew-preview.png")
    expect(page.get_by_text("crew.png · 1200×900").first).to_be_visible(timeout=10_000)
    after = page.locator("#results img[src$='/crew.png']")
    expect(after.first).to_be_visible(timeout=10_000)
    assert after.count() == 1  # the slider's; the programs' full-size gallery is not in the page
    download = page.locator("#results a[download][href$='/crew.png']")
    assert download.count() == 1, "the before/after's download button gives the full cutout"
    page.wait_for_timeout(1000)
    assert sum(url.endswith("/crew.png") for url in fetched) == 1, [u for u in fetched if "crew" in u]
    shot(page, "browser-previews.png")


def file_names(page) -> list[str]:
    """The names in the photo list (Gradio breaks a name into stem and suffix)."""
    return [name.replace("\n", "") for name in page.locator(".file-preview .filename").all_inner_texts()]


def test_an_example_is_added_once_however_the_tabs_are_visited(page):
    """1: an example, then a visit to the webcam tab and back, used to add the photo twice."""
    from playwright.sync_api import expect

    page.locator("button.gallery-item, .gallery button, [data-testid='dataset'] button").first.click()
    page.wait_for_timeout(1500)
    page.get_by_role("tab", name="Webcam / paste").click()
    page.wait_for_timeout(800)
    page.get_by_role("tab", name="Upload").click()
    page.wait_for_timeout(1500)
    assert file_names(page) == ["astronaut.jpg"]
    press_and_wait(page)
    expect(page.locator("#results .gallery-item")).to_have_count(1, timeout=10_000)  # the notes can come first


def test_progress_busy_button_and_the_time_waited(page, tmp_path, photos):
    """2: the bar names the image and the stage, the button says it is busy, the caption says how long."""
    from playwright.sync_api import expect

    big = tmp_path / "big.png"
    Image.fromarray(photos["astronaut"]).resize((2400, 2400)).save(big)
    upload(page, big)
    page.get_by_label("Alpha matting (finer hair and soft edges)").check()
    page.get_by_role("button", name="Remove background").click()
    expect(page.get_by_role("button", name="Working…")).to_be_disabled(timeout=5_000)
    expect(page.get_by_text("image 1 of 1").first).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Remove background")).to_be_enabled(timeout=120_000)
    waited = page.locator("#notes").inner_text()
    assert waited.startswith("1 cutout in ") and waited.split()[4] == "s" and float(waited.split()[3]) > 0, waited


def test_results_come_first_over_a_checkerboard_on_both_sides(page, cat):
    """3: the before/after is the main output, above the fold, transparent areas read as such."""
    upload(page, cat)
    press_and_wait(page)
    slider = page.locator("#results .checker").first
    box = slider.bounding_box()
    assert box["y"] + box["height"] <= DESKTOP["height"], box
    backgrounds = slider.locator("img").evaluate_all("els => els.map(e => getComputedStyle(e).backgroundImage)")
    assert len(backgrounds) == 2 and all("conic-gradient" in b for b in backgrounds), backgrounds
    shot(page, "desktop-results.png")


def test_an_image_background_without_a_picture_says_so(page, cat):
    """4: "image" with no picture used to return a transparent cutout without a word."""
    from playwright.sync_api import expect

    upload(page, cat)
    page.get_by_label("image", exact=True).check()
    page.get_by_role("button", name="Remove background").click()
    expect(page.get_by_text("no background picture is uploaded").first).to_be_visible(timeout=30_000)


def test_limits_are_shown_first_and_a_big_file_costs_only_itself(page, cat, tmp_path):
    """5: limits in the label, a too-long list named on upload, a too-big photo skipped with a warning."""
    from playwright.sync_api import expect

    expect(page.get_by_text("up to 16 photos, 25 MB each").first).to_be_visible()
    many = []
    for i in range(17):
        many.append(tmp_path / f"p{i}.png")
        many[-1].write_bytes(png_bytes(np.full((8, 8, 3), i * 10, np.uint8)))
    upload(page, *many)
    expect(page.get_by_text("17 photos: only 16 at once, remove 1")).to_be_visible(timeout=30_000)
    page.reload()
    huge = tmp_path / "huge.bmp"
    Image.new("RGB", (3000, 3000), "white").save(huge)  # 27 MB
    upload(page, huge, cat)
    expect(page.get_by_text("huge.bmp: 27 MB is over the 25 MB limit per photo").first).to_be_visible(timeout=60_000)
    press_and_wait(page)
    expect(page.locator("#results .gallery-item")).to_have_count(1, timeout=10_000)  # the notes can come first


def test_on_a_phone_the_button_is_near_and_the_results_come_into_view(chromium, server, cat):
    """6: the button sat at the bottom and results appeared out of sight."""
    from playwright.sync_api import expect

    page = open_page(chromium, server, PHONE)
    upload(page, cat)
    page.wait_for_timeout(1000)
    for tab in ("Photos", "Video", "Live"):  # not behind the "..." of the tabs that do not fit
        expect(page.get_by_role("tab", name=tab)).to_be_visible()
    button = page.get_by_role("button", name="Remove background").bounding_box()
    assert button["y"] + button["height"] <= PHONE["height"], button
    press_and_wait(page)
    page.wait_for_timeout(1500)
    results = page.locator("#results").bounding_box()
    assert -5 <= results["y"] < PHONE["height"] / 2, results
    shot(page, "phone-results.png")
    page.close()


def test_a_model_that_cannot_be_fetched_is_named_briefly_and_marked(page, cat):
    """7: a short message for the visitor, the mark in the list and the status, no stale results."""
    from playwright.sync_api import expect

    upload(page, cat)
    press_and_wait(page)
    page.get_by_role("combobox", name="Model").first.click()
    page.get_by_role("option", name="silueta").click()
    page.get_by_role("button", name="Remove background").click()
    message = page.get_by_text("its weights can't be downloaded on this server").first
    expect(message).to_be_visible(timeout=60_000)
    assert "Tried:" not in message.inner_text() and "To fix" not in message.inner_text()
    expect(page.get_by_text("unavailable: no source could be reached").first).to_be_visible(timeout=30_000)
    expect(page.locator("#results .gallery-item")).to_have_count(0, timeout=10_000)  # the earlier cutout is gone


def test_the_model_list_shows_whole_names_and_their_state(page):
    """8: the dropdown's text was cut and its cached/loaded marks never showed."""
    from playwright.sync_api import expect

    field = page.get_by_role("combobox", name="Model").first
    expect(field).to_have_value("u2netp · loaded", timeout=10_000)
    assert field.evaluate("e => e.scrollWidth <= e.clientWidth")
    field.click()
    assert page.get_by_role("option", name="u2net · download 176 MB").count() == 1


def test_the_api_page_names_and_describes_every_parameter(server):
    """9: generic "parameter_35" text, a PDF sample, background_image marked required."""
    info = requests.get(server.url + "gradio_api/info", timeout=30).json()["named_endpoints"]
    single, batch = info["/remove_background"], info["/remove_background_batch"]
    assert single["parameters"][0]["example_input"]["path"].endswith(".png")
    for endpoint in (single, batch):
        assert all(not p["label"].startswith("parameter_") for p in endpoint["parameters"])
        assert endpoint["description"].startswith("Cut the subject out of")
    assert all(p["parameter_has_default"] for p in batch["parameters"])
    labels = {p["parameter_name"]: p["label"] for p in single["parameters"]}
    assert labels["alpha_matting_erode_size"] == "Erode size"


def test_names_match_messages_are_plain_and_the_swatch_is_big(page, cat, tmp_path):
    """10: gallery and zip named files differently; "Pillow" in messages; a tiny colour swatch."""
    from playwright.sync_api import expect

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not really a picture")
    upload(page, cat, broken)
    press_and_wait(page)
    warning = page.locator("#notes").inner_text()
    assert "broken.png: not an image segkit can read" in warning and "Pillow" not in warning
    src = page.locator("#results img[src$='/cat.png']").first.get_attribute("src")
    zip_src = page.get_by_role("button", name="Download all (zip)").locator("xpath=ancestor-or-self::a").first
    href = zip_src.get_attribute("href") if zip_src.count() else None
    if href:
        data = requests.get(href if href.startswith("http") else page.url + href.lstrip("/"), timeout=30).content
        zipped = tmp_path / "all.zip"
        zipped.write_bytes(data)
        assert zipfile.ZipFile(zipped).namelist() == [Path(src).name]
    page.get_by_label("colour", exact=True).check()
    swatch = page.locator(".colour .dialog-button:visible")
    expect(swatch).to_be_visible(timeout=5_000)
    assert swatch.bounding_box()["width"] >= 100


def test_models_the_server_cannot_fetch_are_marked_before_anyone_picks_one(chromium, u2netp_path, tmp_path_factory):
    """7: a model was marked only after a visitor had waited for its download to fail. Now the app asks
    every source at start (here: a closed port on the loopback) and the list says why at once."""
    app = offline_app(u2netp_path, tmp_path_factory.mktemp("probed"), SEGKIT_PROBE_MODELS="1")
    page = open_page(chromium, app)
    try:
        unreachable = re.compile(r"^silueta · unavailable: can't reach 127\.0\.0\.1:\d+ from this server$")
        for _ in range(20):  # the check runs beside the startup; a page loaded after it shows the marks
            page.get_by_role("combobox", name="Model").first.click()
            if page.get_by_role("option", name=unreachable).count():
                break
            page.wait_for_timeout(500)
            page.reload()
        assert page.get_by_role("option", name=unreachable).count() == 1
        names = page.get_by_role("option").all_inner_texts()
        assert not [n for n in names if "download" in n], names  # every uncached model is marked
        assert any(n.endswith("u2netp · loaded") for n in names), names
        page.get_by_role("option", name=unreachable).scroll_into_view_if_needed()
        page.wait_for_timeout(500)  # the list fades in
        shot(page, "models-unavailable.png")
        # the Video tab's list, built at import as the Photos tab's, was never refreshed: u2netp "cached", no marks
        page.keyboard.press("Escape")
        page.get_by_role("tab", name="Video").click()
        page.get_by_role("combobox", name="Model").locator("visible=true").first.click()
        assert page.get_by_role("option", name=unreachable).count() == 1
        names = page.get_by_role("option").all_inner_texts()
        assert not [n for n in names if "download" in n] and any(n.endswith("u2netp · loaded") for n in names), names
        # and SAM's tab offered a download that the start-up check had already found unreachable
        page.keyboard.press("Escape")
        page.get_by_role("tab", name="Click to select (SAM)").click()
        sam = page.get_by_text(re.compile(r"model sam: unavailable: can't reach 127\.0\.0\.1:\d+ from this server"))
        assert sam.count() == 1, page.get_by_text("model sam").all_inner_texts()
    finally:
        page.close()
        app.stop()


def test_the_api_pages_mcp_tab_says_to_start_the_app_with_mcp(page):
    """9: Gradio's MCP tab told people to edit `launch(mcp_server=True)`; this app takes `--mcp`."""
    from playwright.sync_api import expect

    mcp_tab = page.locator("li.snippet", has_text="MCP")
    for _ in range(3):  # a click that lands while the page is still settling can open nothing: ask again
        page.get_by_text("Use via API").first.click()
        try:
            expect(mcp_tab).to_be_visible(timeout=10_000)
            break
        except AssertionError:
            page.keyboard.press("Escape")
    mcp_tab.click()
    hint = page.get_by_text("can also serve as an MCP server").first
    expect(hint).to_contain_text("python app.py --mcp", timeout=10_000)
    assert "launch(" not in hint.inner_text() and "GRADIO_MCP_SERVER" in hint.inner_text()
    shot(page, "api-mcp.png")
