"""The photos tab: drop photos (or a shot, a URL, an example), pick options, press the button;
the before/after of the chosen cutout is the main output. Also the two HTTP endpoints,
``/remove_background`` and ``/remove_background_batch``, whose parameters come from
``segkit.options``."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time

import gradio as gr
from gradio_client import handle_file

import segkit
from segkit import service
from segkit.models import catalog

from .common import (BACKGROUND, background_controls, background_option, described, model_status,
                     model_control, option_control, option_controls, per_image_options, PHOTO_FILES, scroll_into_view,
                     seed_first, UploadedFile, user_error)

LIMITS = f"up to {service.MAX_BATCH} photos, {service.MAX_FILE_MB:.0f} MB each"
RUN = "Remove background"
SAMPLE_PHOTO = "https://raw.githubusercontent.com/gradio-app/gradio/main/test/test_files/bus.png"


def example_photos() -> list[str]:
    """scikit-image's bundled photos (a person, a cat, a cup) written to a temp folder, removed
    when the app exits (Ctrl-C or SIGTERM, see app.py): a restart does not leave one behind."""
    from PIL import Image
    from skimage import data

    folder = tempfile.mkdtemp(prefix="segkit-examples-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    paths = []
    for name in ("astronaut", "chelsea", "coffee"):
        path = os.path.join(folder, f"{name}.jpg")
        Image.fromarray(getattr(data, name)()).save(path, quality=92)
        paths.append(path)
    return paths


@described
def remove_background_batch(files: list[str] | None = None, progress=gr.Progress(), *, background: str = "transparent",
                            colour: str = "#00b140", background_image: str | None = None, url: str = "",
                            **option_values):
    """Cut the subject out of several photos (the button); a bad file is a warning, the rest still come back.

    Args:
        files: the photos (up to SEGKIT_MAX_BATCH at once, 16 by default).
        background: transparent (an RGBA PNG), colour, blurred original or image (an RGB PNG).
        colour: the colour behind the subject when background is colour, e.g. #00ff00.
        background_image: the picture behind the subject when background is image.
        url: an http(s) address of one more photo (public addresses only).
    """
    started = time.perf_counter()
    try:
        option_values[BACKGROUND] = background_option(background, colour, background_image)
        segkit.Options.of(**option_values)  # every option checked before any file is read
        inputs, warnings = service.gather_inputs(list(files or []), [url.strip()] if url and url.strip() else [])
        if not inputs and not warnings:
            raise segkit.InvalidInputError("no photo given: add one or more photos, or a URL, first")
        batch = service.serve_batch(inputs, progress=lambda f, text: progress(f, desc=text), **option_values) \
            if inputs else service.ServedBatch([], [], None)
    except segkit.SegkitError as exc:
        raise user_error(exc) from None
    warnings += batch.warnings
    if not batch.images:
        raise user_error(ValueError("No photo could be processed: " + " / ".join(warnings)))
    gallery = [(image.cutout, image.caption) for image in batch.images]
    done = f"{len(batch.images)} cutout{'s' * (len(batch.images) > 1)} in {time.perf_counter() - started:.1f} s"
    notes = "\n".join([f"**{done}**"] + [f"- ⚠️ {warning}" for warning in warnings])
    return gallery, batch.images, batch.zip_path, *selected(batch.images, 0), notes


@described
def remove_background(image: str, **option_values) -> str:
    """Cut the subject out of one photo; returns a PNG of the same size (RGBA unless a background is given).

    Args:
        image: the photo (PNG, JPEG, WebP, HEIC, AVIF, TIFF, BMP or GIF).
    """
    try:
        return service.serve_one(image, **option_values)
    except segkit.SegkitError as exc:
        raise user_error(exc) from None


def selected(images, index):
    """Before/after, mask and class masks (file, label) of one image of the batch."""
    if not images:
        return None, None, []
    image = images[min(index, len(images) - 1)]
    return (image.original, image.cutout), image.mask, image.class_masks


def on_select(images, evt: gr.SelectData):
    before_after, mask, class_masks = selected(images, evt.index)
    return before_after, mask, gr.update(value=class_masks, visible=bool(class_masks))


def add_photo(files, photo):
    """A webcam shot, pasted image or example joins the photo list, and the box empties:
    the list is the whole batch, and nothing is added twice."""
    if not photo:
        return gr.skip(), gr.skip()
    return list(files or []) + [photo], None


def check_files(files):
    """Say at once when the list is over the limits, before the button is pressed."""
    files = list(files or [])
    problems = [f"{len(files)} photos: only {service.MAX_BATCH} at once, remove {len(files) - service.MAX_BATCH}"] \
        if len(files) > service.MAX_BATCH else []
    problems += [f"{os.path.basename(f)}: {os.path.getsize(f) / 1e6:.0f} MB is over the {service.MAX_FILE_MB:.0f} MB "
                 "limit per photo; it will be skipped" for f in files if os.path.getsize(f) / 1e6 > service.MAX_FILE_MB]
    return "\n".join(f"- ⚠️ {p}" for p in problems)


def start_run():
    """The button shows it is busy, and the last batch's results go: an error then stands alone."""
    return gr.update(value="Working…", interactive=False), None, None, None, None, [], ""


def after_run(model, images):
    """Show what the run made available (previews, zip, class masks), refresh the model's marks, free the
    button. Kept out of the batch endpoint so programs get plain values, not UI updates."""
    previews = [(image.preview, image.caption) for image in images]
    return (*model_status(model), previews, gr.update(visible=bool(images)),
            gr.update(visible=bool(images and images[0].class_masks)), gr.update(value=RUN, interactive=True))


def build(status: gr.Markdown) -> gr.Dropdown:
    """The photos tab inside the current Blocks; returns its model dropdown (the page refreshes it)."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            with gr.Tab("Upload"):
                files = UploadedFile(label=f"Photos ({LIMITS})", file_count="multiple", file_types=PHOTO_FILES,
                                     type="filepath", height=150)
            with gr.Tab("Webcam / paste"):
                shot = gr.Image(label="One shot (added to the photos)", sources=["webcam", "clipboard", "upload"],
                                type="filepath", height=220)
            with gr.Tab("URL"):
                url = gr.Textbox("", label="Photo URL (http or https, public addresses only)",
                                 placeholder="https://example.com/photo.jpg")
            run = gr.Button(RUN, variant="primary")
            with gr.Accordion("Options", open=True):
                controls = option_controls()
                background, colour, background_image = background_controls()
            examples = gr.Dataset(components=[gr.Image(visible=False, type="filepath")],
                                  samples=[[p] for p in example_photos()], label="Try a photo (adds it)")
        with gr.Column(scale=3, min_width=320, elem_id="results"):
            notes = gr.Markdown(elem_id="notes")
            slider = gr.ImageSlider(label="Before / after", type="filepath", elem_classes="checker", height=560)
            # the gallery shows previews; the before/after's download button and the zip give the cutouts
            previews = gr.Gallery(label="Cutouts (click one to compare)", format="png", columns=6, height=150,
                                  fit_columns=False, object_fit="contain", allow_preview=False, buttons=[],
                                  elem_classes="checker")
            gallery = gr.Gallery(format="png", visible=False)  # the full cutouts, for programs (not in the page)
            zip_button = gr.DownloadButton("Download all (zip)", visible=False)
            with gr.Accordion("Mask", open=False):
                mask = gr.Image(label="Mask", type="filepath", format="png")
                classes = gr.Gallery(label="Garment masks", format="png", columns=3, visible=False)
    images = gr.State([])
    model = model_control(controls)

    # --- wiring ---------------------------------------------------------------------------------
    shot.change(add_photo, [files, shot], [files, shot], api_visibility="private")
    examples.click(lambda current, sample: add_photo(current, sample[0])[0], [files, examples], files,
                   api_visibility="private")
    files.change(check_files, files, notes, api_visibility="private")
    model.change(catalog.status_line, model, status, api_visibility="private")
    busy = run.click(start_run, None, [run, previews, gallery, slider, mask, images, notes], queue=False,
                     api_visibility="private")
    done = busy.then(remove_background_batch, [files], [gallery, images, zip_button, slider, mask, classes, notes],
                     inputs_kwargs={**seed_first(controls, {"background": background, "colour": colour,
                                                            "background_image": background_image, "url": url})},
                     api_name="remove_background_batch", show_progress_on=[slider])
    # success or not, the button comes back and the model's marks are refreshed (Gradio skips a
    # plain .then() after an error)
    shown = [model, status, previews, zip_button, classes, run]
    done.success(after_run, [model, images], shown, api_visibility="private").then(None, js=scroll_into_view("results"))
    done.failure(after_run, [model, images], shown, api_visibility="private")
    previews.select(on_select, images, [slider, mask, classes], api_visibility="private")
    with gr.Column(visible=False):  # the single-image endpoint for programs, on validated components
        api_image = UploadedFile(label="image", type="filepath", file_types=PHOTO_FILES)
        api_image.example_inputs = lambda: handle_file(SAMPLE_PHOTO)  # the API page's sample: a photo
        api_options = {f.name: option_control(f, c) for f, c in per_image_options()}
        gr.Button().click(remove_background, [api_image], gr.File(label="Cutout (PNG)"), inputs_kwargs=api_options,
                          api_name="remove_background")
    return model
