"""segkit's web app: Gradio controls bound to segkit's functions, nothing more.

Run ``python app.py [--host H] [--port P] [--share] [--preload MODEL] [--mcp]``;
Hugging Face Spaces run this file and serve ``demo``, which is built at import time.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile

import gradio as gr

import segkit
from segkit import catalog, service

DEFAULT_MODEL = "u2netp"  # 4.6 MB and fetched through a PyPI mirror: the first click works offline
BACKGROUNDS = ["transparent", "colour", "blurred original", "image"]
# onnxruntime already uses every core for one image on CPU; a GPU leaves the CPU free for decoding
QUEUE_CONCURRENCY = int(os.getenv("SEGKIT_CONCURRENCY") or (2 if segkit.device() == "CUDA" else 1))
MAX_UPLOAD = os.getenv("SEGKIT_MAX_UPLOAD", "25mb")
# transparent pixels read as transparent only over a checkerboard (white on white looks like no cutout)
CSS = ".checker img { background: repeating-conic-gradient(#d8d8d8 0% 25%, #fff 0% 50%) 50% / 20px 20px; }"
log = logging.getLogger("segkit.app")


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
    return gr.Error(segkit.public_message(exc), duration=None, print_exception=False)


def add_shot(files, shot):
    """A webcam shot, pasted image or example joins the photo list: the list is the whole batch."""
    return list(files or []) + [shot] if shot else gr.skip()


SEED_ARGS = """
        model: the segmentation model; u2netp is small and loaded at start-up, others may download first.
        alpha_matting: refine soft edges (hair, fur) with closed-form matting.
        alpha_matting_foreground_threshold: mask values above this are sure foreground (0-255).
        alpha_matting_background_threshold: mask values below this are sure background (0-255).
        alpha_matting_erode_size: how many pixels the sure regions shrink by before matting.
        post_process_mask: smooth the mask's boundary.
"""


def seed_args(fn):
    """Both endpoints take the seed's parameters: one description of them for the API page and MCP tools."""
    fn.__doc__ = fn.__doc__.rstrip() + SEED_ARGS
    return fn


@seed_args
def remove_background_batch(files, model, alpha_matting, alpha_matting_foreground_threshold,
                            alpha_matting_background_threshold, alpha_matting_erode_size, post_process_mask,
                            background, colour, background_image, progress=gr.Progress()):
    """Cut the subject out of several images (the button); a bad file is a warning, the rest still come back.

    Args:
        files: the photos (16 at most, unless the server sets SEGKIT_MAX_BATCH).
        background: transparent (RGBA PNG), colour, blurred original or image (RGB PNG).
        colour: the colour behind the subject when background is colour, e.g. #00ff00.
        background_image: the picture behind the subject when background is image.
    """
    behind = {"colour": colour, "blurred original": "blur", "image": background_image}.get(background)
    try:
        batch = service.serve_batch(list(files or []), model, alpha_matting, alpha_matting_foreground_threshold,
                                    alpha_matting_background_threshold, alpha_matting_erode_size, post_process_mask,
                                    behind, progress=lambda f, text: progress(f, desc=text))
    except segkit.SegkitError as exc:
        raise user_error(exc) from None
    for warning in batch.warnings:
        gr.Warning(warning)
    if not batch.images:
        raise user_error(ValueError("No image could be processed: " + " / ".join(batch.warnings)))
    gallery = [(image.cutout, image.caption) for image in batch.images]
    notes = "\n".join(f"- ⚠️ {warning}" for warning in batch.warnings)
    return gallery, batch.images, batch.zip_path, *selected(batch.images, 0), notes


def selected(images, index):
    """Before/after, mask and class masks (file, label) of one image of the batch."""
    if not images:
        return None, None, []
    image = images[min(index, len(images) - 1)]
    return (image.original, image.cutout), image.mask, image.class_masks


def on_select(images, evt: gr.SelectData):
    before_after, mask, class_masks = selected(images, evt.index)
    return before_after, mask, gr.update(value=class_masks, visible=bool(class_masks))


def after_run(model, images):
    """Show what the run made available (zip, class masks) and refresh the model's marks and status.
    Kept out of the batch endpoint so programs get plain values, not UI updates."""
    return (*model_status(model), gr.update(visible=bool(images)),
            gr.update(visible=bool(images and images[0].class_masks)))


def model_status(model):
    """Refresh the dropdown's cached/loaded marks and the status line (device, load state)."""
    return gr.update(choices=catalog.model_choices()), catalog.status_line(model)


@seed_args
def remove_background(image: str, model: str = DEFAULT_MODEL, alpha_matting: bool = False,
                      alpha_matting_foreground_threshold: int = 240, alpha_matting_background_threshold: int = 20,
                      alpha_matting_erode_size: int = 10, post_process_mask: bool = False) -> str:
    """Cut the subject out of one image; returns an RGBA PNG of the same size.

    Args:
        image: the photo (any format Pillow reads).
    """
    try:
        return service.serve_one(image, model, alpha_matting, alpha_matting_foreground_threshold,
                                 alpha_matting_background_threshold, alpha_matting_erode_size, post_process_mask)
    except segkit.SegkitError as exc:
        raise user_error(exc) from None


with gr.Blocks(title="segkit: cut out the subject", delete_cache=(1800, 3600)) as demo:
    gr.Markdown("# segkit\nCut the subject out of your photos. Upload several at once, pick a model, press the button.")
    status = gr.Markdown(catalog.status_line(DEFAULT_MODEL))
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Tab("Photos"):
                files = gr.File(label="Photos (drop several)", file_count="multiple", file_types=["image"],
                                type="filepath")
            with gr.Tab("Webcam / paste"):
                shot = gr.Image(label="One shot (added to the photos)", sources=["webcam", "clipboard", "upload"],
                                type="filepath")
            model = gr.Dropdown(catalog.model_choices(), value=DEFAULT_MODEL, label="Model")
            matting = gr.Checkbox(label="Alpha matting (finer hair and soft edges)")
            with gr.Group(visible=False) as matting_box:
                fg = gr.Slider(0, 250, value=240, step=5, label="Foreground threshold")
                bg = gr.Slider(0, 250, value=20, step=5, label="Background threshold")
                erode = gr.Slider(0, 40, value=10, step=1, label="Erode size")
            post = gr.Checkbox(label="Post-process mask (smoother boundary)")
            background = gr.Radio(BACKGROUNDS, value="transparent", label="Background")
            colour = gr.ColorPicker(value="#ffffff", label="Colour", visible=False)
            background_image = gr.Image(label="Background image", type="filepath", visible=False)
            run = gr.Button("Remove background", variant="primary")
        with gr.Column(scale=2):
            notes = gr.Markdown(label="Warnings")
            gallery = gr.Gallery(label="Cutouts", format="png", columns=3, height="auto", fit_columns=False,
                                 buttons=["download", "fullscreen"], elem_classes="checker")
            zip_button = gr.DownloadButton("Download all (zip)", visible=False)
            slider = gr.ImageSlider(label="Before / after", type="filepath", elem_classes="checker")
            with gr.Row():
                mask = gr.Image(label="Mask", type="filepath", format="png")
                classes = gr.Gallery(label="Garment masks", format="png", columns=3, visible=False)
    images = gr.State([])
    gr.Examples(example_photos(), inputs=[shot], label="Try a photo (adds it to the photos)")

    shot.change(add_shot, [files, shot], files, api_visibility="private")
    matting.change(lambda on: gr.update(visible=on), matting, matting_box, api_visibility="private")
    background.change(lambda c: (gr.update(visible=c == "colour"), gr.update(visible=c == "image")),
                      background, [colour, background_image], api_visibility="private")
    model.change(catalog.status_line, model, status, api_visibility="private")
    run.click(remove_background_batch,
              [files, model, matting, fg, bg, erode, post, background, colour, background_image],
              [gallery, images, zip_button, slider, mask, classes, notes], api_name="remove_background_batch",
              show_progress_on=[gallery],
              ).then(after_run, [model, images], [model, status, zip_button, classes], api_visibility="private")
    gallery.select(on_select, images, [slider, mask, classes], api_visibility="private")
    with gr.Column(visible=False):  # the single-image endpoint for programs, on validated components
        api_in = [gr.File(type="filepath"), gr.Dropdown(segkit.list_models(), value=DEFAULT_MODEL),
                  gr.Checkbox(False), gr.Number(240, precision=0), gr.Number(20, precision=0),
                  gr.Number(10, precision=0), gr.Checkbox(False)]
        gr.Button().click(remove_background, api_in, gr.File(label="Cutout (RGBA PNG)"), api_name="remove_background")
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
            log.warning("could not preload %s: %s", name, segkit.public_message(exc))
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size=MAX_UPLOAD,
                show_error=False, css=CSS, mcp_server=args.mcp or None)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("segkit").setLevel(logging.INFO)
    main()
