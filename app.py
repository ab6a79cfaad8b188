"""segkit's web app: Gradio controls bound to segkit's functions, nothing more.

Run ``python app.py [--host H] [--port P] [--share] [--preload MODEL] [--mcp]``;
Hugging Face Spaces run this file and serve ``demo``, which is built at import time.
The option controls and both endpoints' parameters come from ``segkit.options``.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time

import gradio as gr

import segkit
from segkit import options, service
from segkit.models import catalog

DEFAULT_MODEL = options.defaults()["model"]
BACKGROUNDS = ["transparent", "colour", "blurred original", "image"]
# onnxruntime already uses every core for one image on CPU; a GPU leaves the CPU free for decoding
QUEUE_CONCURRENCY = int(os.getenv("SEGKIT_CONCURRENCY") or (2 if segkit.device() == "CUDA" else 1))
# Gradio's own ceiling for one upload; segkit turns files over SEGKIT_MAX_FILE_MB into warnings below it
UPLOAD_CEILING = os.getenv("SEGKIT_MAX_UPLOAD", f"{4 * service.MAX_FILE_MB:.0f}mb")
LIMITS = f"up to {service.MAX_BATCH} photos, {service.MAX_FILE_MB:.0f} MB each"
CSS = """
.checker img { background: repeating-conic-gradient(#d8d8d8 0% 25%, #fff 0% 50%) 50% / 20px 20px !important; }
#colour input[type=color] { width: 100%; height: 2.5rem; border: 1px solid #888; }
#notes:empty { display: none; }
.checker .caption-label { white-space: normal; overflow-wrap: anywhere; font-size: 0.75rem; }
"""
# on a narrow screen the results sit below the controls: bring them into view once they are there
SHOW_RESULTS = "() => { if (window.innerWidth < 900) document.getElementById('results').scrollIntoView(); }"
log = logging.getLogger("segkit.app")


# --- functions: what each control does -------------------------------------------------------

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


def user_error(exc: Exception) -> gr.Error:
    """segkit's message for a person (no server paths), shown until closed: it says what to do."""
    return gr.Error(service.public_message(exc), duration=None, print_exception=False)


def per_image_options():
    """The declared options that get one control each (the background gets three, below)."""
    return [(f, c) for f, c in options.declared() if options.kind(f) != "background"]


BACKGROUND = next(f.name for f, _ in options.declared() if options.kind(f) == "background")


def seed_first(controls: dict, extra: dict) -> dict:
    """Endpoint parameters in a stable order for positional callers: the options declared before
    the background (the seed's), then ``extra`` (the background controls), then later options."""
    names = [f.name for f, _ in options.declared()]
    early = {n: c for n, c in controls.items() if names.index(n) < names.index(BACKGROUND)}
    return {**early, **extra, **{n: c for n, c in controls.items() if n not in early}}


def described(fn):
    """Append every declared option's help to an endpoint's ``Args:``, for the API page and MCP tools."""
    lines = [f"        {f.name}: {c.help}; {options.accepted(f.name)}." for f, c in per_image_options()]
    fn.__doc__ = fn.__doc__.rstrip() + "\n" + "\n".join(lines) + "\n"
    return fn


def _background(background: str, colour: str | None, background_image: str | None):
    """The three background controls -> the ``background`` option, or a message naming what is missing."""
    if background not in BACKGROUNDS:
        raise segkit.InvalidInputError(f"background: must be one of {', '.join(BACKGROUNDS)}, got {background!r}")
    if background == "colour" and not (colour or "").strip():
        raise segkit.InvalidInputError("background is colour, but no colour is chosen: pick one")
    if background == "image" and not background_image:
        raise segkit.InvalidInputError("background is image, but no background picture is uploaded: add one")
    if background == "image":
        from pathlib import Path

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


def model_status(model):
    """Refresh the dropdown's cached/loaded marks and the status line (device, load state)."""
    return gr.update(choices=catalog.model_choices()), catalog.status_line(model)


def option_control(f, control):
    """The control for one declared option. It passes the sent value through as it came:
    ``segkit.Options`` then names the option and what it accepts, where Gradio's own checks
    would answer an API caller with its generic text."""
    if control.choices:
        component = gr.Dropdown(catalog.model_choices(), value=f.default, label=control.label, info=control.help)
    elif options.kind(f) == "bool":
        component = gr.Checkbox(f.default, label=control.label, info=control.help)
    elif options.kind(f) == "prompt":
        component = gr.Textbox("", label=control.label, info=control.help, placeholder='[{"type": "point", ...}]')
    else:
        component = gr.Slider(control.low, control.slider_high or control.high, value=f.default, step=control.step,
                              label=control.label, info=control.help)
    component.preprocess = lambda value: value
    return component


# --- layout -------------------------------------------------------------------------------------

RUN = "Remove background"
with gr.Blocks(title="segkit: cut out the subject", delete_cache=(600, 900)) as demo:
    gr.Markdown("# segkit · cut the subject out of your photos")
    status = gr.Markdown(catalog.status_line(DEFAULT_MODEL))
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            with gr.Tab("Photos"):
                files = gr.File(label=f"Photos ({LIMITS})", file_count="multiple", file_types=["image"],
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
                background_image = gr.File(label="Background picture", file_types=["image"], type="filepath",
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
        api_image = gr.File(label="image", type="filepath", file_types=["image"])
        api_options = {f.name: option_control(f, c) for f, c in per_image_options()}
        gr.Button().click(remove_background, [api_image], gr.File(label="Cutout (PNG)"), inputs_kwargs=api_options,
                          api_name="remove_background")
    demo.load(model_status, model, [model, status], api_visibility="private")

demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=64)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="segkit web app")
    parser.add_argument("--host", default=os.getenv("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.getenv("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also open a public *.gradio.live link")
    parser.add_argument("--preload", action="append", default=[], metavar="MODEL",
                        help="fetch and load a model before serving (repeatable; default $SEGKIT_PRELOAD or u2netp)")
    parser.add_argument("--mcp", action="store_true", help="also serve the endpoints as MCP tools (gradio[mcp])")
    args = parser.parse_args(argv)
    if args.mcp:
        try:
            import mcp  # noqa: F401 - what Gradio's MCP server runs on
        except ImportError:
            parser.error('--mcp needs Gradio\'s mcp extra: pip install "gradio[mcp]==6.31.0"')
    names = [n.strip() for n in args.preload or os.getenv("SEGKIT_PRELOAD", DEFAULT_MODEL).split(",") if n.strip()]
    for name in names:
        try:
            segkit.get_model(name)
        except segkit.UnknownModelError as exc:
            parser.error(str(exc))
    for name in names:
        try:
            segkit.preload(name)
        except segkit.SegkitError as exc:  # serve anyway: the page shows the same error on use
            log.warning("could not preload %s: %s", name, service.public_message(exc))
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size=UPLOAD_CEILING,
                show_error=False, css=CSS, mcp_server=args.mcp or None)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("segkit").setLevel(logging.INFO)
    main()
