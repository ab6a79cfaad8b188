"""The photos tab: drop photos (or a shot, a URL, an example), pick options, press the button;
the before/after of the chosen cutout is the main output. Also the two HTTP endpoints,
``/remove_background`` and ``/remove_background_batch``, whose parameters come from
``segkit.options``."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import gradio as gr

import segkit
from segkit import service
from segkit.models import catalog

from .common import (BACKGROUND, UploadedFile, described, model_status, option_control, per_image_options,
                     seed_first, user_error)

BACKGROUNDS = ["transparent", "colour", "blurred original", "image"]
LIMITS = f"up to {service.MAX_BATCH} photos, {service.MAX_FILE_MB:.0f} MB each"
RUN = "Remove background"
# on a narrow screen the results sit below the controls: bring them into view once they are there
SHOW_RESULTS = "() => { if (window.innerWidth < 900) document.getElementById('results').scrollIntoView(); }"


def example_photos() -> list[str]:
    """scikit-image's bundled photos (a person, a cat, a cup) written to a temp folder."""
    from PIL import Image
    from skimage import data

    folder = tempfile.mkdtemp(prefix="segkit-examples-")
    paths = []
    for name in ("astronaut", "chelsea", "coffee"):
        path = os.path.join(folder, f"{name}.jpg")
        Image.fromarray(getattr(data, name)()).save(path, quality=92)
        paths.append(path)
    return paths


def _background(background: str, colour: str | None, background_image: str | None):
    """The three background controls -> the ``background`` option, or a message naming what is missing."""
    if background not in BACKGROUNDS:
        raise segkit.InvalidInputError(f"background: must be one of {', '.join(BACKGROUNDS)}, got {background!r}")
    if background == "colour" and not (colour or "").strip():
        raise segkit.InvalidInputError("background is colour, but no colour is chosen: pick one")
    if background == "image" and not background_image:
        raise segkit.InvalidInputError("background is image, but no background picture is uploaded: add one")
    if background == "image":
        return Path(background_image)
    return {"colour": colour, "blurred original": "blur"}.get(background, background)


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
        option_values[BACKGROUND] = _background(background, colour, background_image)
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
        image: the photo (PNG, JPEG, WebP, TIFF, BMP or GIF).
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


def after_run(model, images):
    """Show what the run made available (zip, class masks), refresh the model's marks, free the button.
    Kept out of the batch endpoint so programs get plain values, not UI updates."""
    return (*model_status(model), gr.update(visible=bool(images)),
            gr.update(visible=bool(images and images[0].class_masks)), gr.update(value=RUN, interactive=True))


def build(status: gr.Markdown) -> gr.Dropdown:
    """The photos tab inside the current Blocks; returns its model dropdown (the page refreshes it)."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            with gr.Tab("Upload"):
                files = UploadedFile(label=f"Photos ({LIMITS})", file_count="multiple", file_types=["image"],
                                     type="filepath", height=150)
            with gr.Tab("Webcam / paste"):
                shot = gr.Image(label="One shot (added to the photos)", sources=["webcam", "clipboard", "upload"],
                                type="filepath", height=220)
            with gr.Tab("URL"):
                url = gr.Textbox("", label="Photo URL (http or https, public addresses only)",
                                 placeholder="https://example.com/photo.jpg")
            run = gr.Button(RUN, variant="primary")
            controls = {}
            with gr.Accordion("Options", open=True):
                for f, control in per_image_options():
                    if control.shown_with:
                        continue
                    controls[f.name] = option_control(f, control)
                    refinements = [(g, c) for g, c in per_image_options() if c.shown_with == f.name]
                    if refinements:  # shown while the option they refine is on
                        with gr.Group(visible=bool(f.default)) as group:
                            controls.update({g.name: option_control(g, c) for g, c in refinements})
                        controls[f.name].change(lambda on: gr.update(visible=on), controls[f.name], group,
                                                api_visibility="private")
                background = gr.Radio(BACKGROUNDS, value="transparent", label="Background")
                background.preprocess = lambda value: value  # _background names a wrong value
                colour = gr.ColorPicker(value="#00b140", label="Colour", visible=False, elem_id="colour")
                background_image = UploadedFile(label="Background picture", file_types=["image"], type="filepath",
                                                 visible=False, height=100)
            examples = gr.Dataset(components=[gr.Image(visible=False, type="filepath")],
                                  samples=[[p] for p in example_photos()], label="Try a photo (adds it)")
        with gr.Column(scale=3, min_width=320, elem_id="results"):
            notes = gr.Markdown(elem_id="notes")
            slider = gr.ImageSlider(label="Before / after", type="filepath", elem_classes="checker", height=560)
            gallery = gr.Gallery(label="Cutouts (click one to compare)", format="png", columns=6, height=150,
                                 fit_columns=False, object_fit="contain", allow_preview=False, buttons=["download"], elem_classes="checker")
            zip_button = gr.DownloadButton("Download all (zip)", visible=False)
            with gr.Accordion("Mask", open=False):
                mask = gr.Image(label="Mask", type="filepath", format="png")
                classes = gr.Gallery(label="Garment masks", format="png", columns=3, visible=False)
    images = gr.State([])
    model = next(controls[f.name] for f, c in per_image_options() if c.choices)

    # --- wiring ---------------------------------------------------------------------------------
    shot.change(add_photo, [files, shot], [files, shot], api_visibility="private")
    examples.click(lambda current, sample: add_photo(current, sample[0])[0], [files, examples], files,
                   api_visibility="private")
    files.change(check_files, files, notes, api_visibility="private")
    background.change(lambda c: (gr.update(visible=c == "colour"), gr.update(visible=c == "image")),
                      background, [colour, background_image], api_visibility="private")
    model.change(catalog.status_line, model, status, api_visibility="private")
    busy = run.click(lambda: gr.update(value="Working…", interactive=False), None, run, queue=False,
                     api_visibility="private")
    busy.then(remove_background_batch, [files], [gallery, images, zip_button, slider, mask, classes, notes],
              inputs_kwargs={**seed_first(controls, {"background": background, "colour": colour,
                                                     "background_image": background_image, "url": url})},
              api_name="remove_background_batch", show_progress_on=[slider],
              ).then(after_run, [model, images], [model, status, zip_button, classes, run], api_visibility="private",
                     ).then(None, js=SHOW_RESULTS)
    gallery.select(on_select, images, [slider, mask, classes], api_visibility="private")
    with gr.Column(visible=False):  # the single-image endpoint for programs, on validated components
        api_image = UploadedFile(label="image", type="filepath", file_types=["image"])
        api_options = {f.name: option_control(f, c) for f, c in per_image_options()}
        gr.Button().click(remove_background, [api_image], gr.File(label="Cutout (PNG)"), inputs_kwargs=api_options,
                          api_name="remove_background")
    return model
