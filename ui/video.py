"""The video tab: upload a clip (or give its URL), pick options and the formats to download,
press the button; progress counts frames with the time left, Cancel stops the job and
keeps nothing. The preview is the webm, whose alpha Chromium plays over the checkerboard.
Also the ``/segment_video`` and ``/cancel_video`` endpoints."""

from __future__ import annotations

import os

import gradio as gr

import segkit
from segkit.models import catalog
from segkit.video import FORMATS, LIMITS, VIDEO_SUFFIXES
from segkit.video.serve import PREVIEW_FORMAT, Jobs, VideoCancelled, limits_in_words, serve_video

from .common import (BACKGROUND, background_controls, background_option, described, model_control, model_status,
                     option_controls, scroll_into_view, seed_first, UploadedFile, user_error)

# a shared web app takes less than the library does: short clips, full HD at most, no more than one upload
APP_LIMITS = {"seconds": 60, "pixels": 1920 * 1080, "megabytes": 100}
for _name, _value in APP_LIMITS.items():
    os.environ.setdefault(LIMITS[_name][0], str(_value))
RUN = "Cut out the video"
JOBS = Jobs()


@described
def segment_video(video: str | None = None, request: gr.Request = None, progress=gr.Progress(), *,
                  url: str = "", formats: list[str] | None = None, smooth: bool = False,
                  background: str = "transparent", colour: str = "#00b140", background_image: str | None = None,
                  **option_values):
    """Cut the subject out of every frame of a video; returns the preview (webm), a file per format and a note.

    Args:
        video: the clip (mp4, mov, webm, mkv, avi); over the limits it is refused before any work.
        url: an http(s) address of the clip instead (public addresses only).
        formats: the files to make: webm (VP9 with alpha), mov (ProRes 4444 with alpha), mp4 (over the
            background, black if transparent), zip (a PNG per frame); webm is always made.
        smooth: steady the cutout's edge from frame to frame (less flicker, a little lag).
        background: transparent, colour, blurred original or image.
        colour: the colour behind the subject when background is colour, e.g. #00ff00.
        background_image: the picture behind the subject when background is image.
    """
    reached = ""

    def report(fraction: float, text: str) -> None:
        nonlocal reached
        reached = text.split(" · about")[0]
        progress(fraction, desc=text)

    key = request.session_hash if request else ""
    try:
        option_values[BACKGROUND] = background_option(background, colour, background_image)
        with JOBS.running(key) as cancel:
            served = serve_video(video, url, formats=tuple(formats or [PREVIEW_FORMAT]), smooth=smooth,
                                 progress=report, cancel=cancel, **option_values)
    except VideoCancelled:
        return None, [], f"Cancelled{' at ' + reached if reached else ''}; nothing was kept."
    except segkit.SegkitError as exc:
        raise user_error(exc) from None
    names = ", ".join(os.path.basename(f) for f in served.files)
    return served.preview, served.files, f"**{served.frames} frames in {served.seconds:.1f} s**: {names}"


def cancel_video(request: gr.Request):
    """Stop this visitor's video job, running or still queued; its files are removed."""
    JOBS.cancel(request.session_hash)
    return "Cancelling…"


def start(request: gr.Request):
    """The run button pressed: a fresh cancel flag for the job now queued, and the buttons busy."""
    JOBS.expect(request.session_hash)
    return busy(True)


def busy(working: bool):
    """The run button while a job runs (and Cancel with it)."""
    return (gr.update(value="Working…" if working else RUN, interactive=not working),
            gr.update(interactive=working))


def after_run(model):
    """Free the buttons and refresh the model's marks (now loaded)."""
    return *busy(False), *model_status(model)


def build(status: gr.Markdown) -> gr.Dropdown:
    """The video tab inside the current Blocks; returns its model dropdown (the page refreshes it)."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            with gr.Tab("Upload"):
                video = UploadedFile(label=f"Video ({limits_in_words()})", file_types=["video", *sorted(VIDEO_SUFFIXES)],
                                type="filepath",
                                height=150, elem_id="video-upload")
            with gr.Tab("URL"):
                url = gr.Textbox("", label=f"Video URL ({limits_in_words()}; public addresses only)",
                                 placeholder="https://example.com/clip.mp4")
            with gr.Row():
                run = gr.Button(RUN, variant="primary", scale=3)
                cancel = gr.Button("Cancel", variant="stop", interactive=False, scale=1, min_width=90)
            formats = gr.CheckboxGroup(list(FORMATS), value=[PREVIEW_FORMAT], label="Download as",
                                       info="webm and mov keep the transparency; mp4 goes over the background; "
                                            "zip holds a PNG per frame")
            smooth = gr.Checkbox(False, label="Smooth across frames", info="less flicker at the edges")
            with gr.Accordion("Options", open=True):
                controls = option_controls()
                background, colour, background_image = background_controls()
        with gr.Column(scale=3, min_width=320, elem_id="video-results"):
            notes = gr.Markdown(elem_id="video-notes")
            preview = gr.Video(label="Cutout (webm)", elem_classes="checker", interactive=False, autoplay=True,
                               loop=True, height=480, elem_id="video-preview")
            downloads = gr.File(label="Downloads", file_count="multiple", interactive=False)
    model = model_control(controls)

    # --- wiring ---------------------------------------------------------------------------------
    model.change(catalog.status_line, model, status, api_visibility="private")
    started = run.click(start, None, [run, cancel], queue=False, api_visibility="private")
    started.then(segment_video, [video], [preview, downloads, notes],
                 inputs_kwargs=seed_first(controls, {"url": url, "formats": formats, "smooth": smooth,
                                                     "background": background, "colour": colour,
                                                     "background_image": background_image}),
                 api_name="segment_video", show_progress_on=[preview],
                 ).then(after_run, model, [run, cancel, model, status], api_visibility="private",
                        ).then(None, js=scroll_into_view("video-results"))
    cancel.click(cancel_video, None, notes, queue=False, api_name="cancel_video")
    return model
