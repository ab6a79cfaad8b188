"""The live tab: the webcam streams to the server a few frames a second and each comes back
cut out over the chosen background, with the frame rate measured as it goes. The model is
segkit's live choice (``segkit.video.live.live_model``): no download happens mid-stream."""

from __future__ import annotations

import gradio as gr

import segkit
from segkit.video.live import FrameRate, cut_frame, live_model

from .common import background_controls, background_option, user_error

FRAME_SECONDS = 0.2  # how often the browser sends a frame; the server answers as fast as the model allows
CAMERA = {"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}  # what segkit would shrink to anyway
STREAM_SECONDS = 300  # one stream's turn, so a forgotten tab does not hold the queue


def live_frame(frame, background: str, colour: str, picture: str | None, rate: FrameRate | None):
    """One webcam frame -> its cutout, the frame-rate line, and the session's rate counter."""
    rate = rate or FrameRate()
    if frame is None:
        return gr.skip(), gr.skip(), rate
    try:
        cutout, line = cut_frame(frame, rate, background=background_option(background, colour, picture))
    except segkit.SegkitError as exc:
        raise user_error(exc) from None
    return cutout, line, rate


def model_line() -> str:
    """Which model the streams use now: a model fetched since the page was built may have become the best."""
    return (f"Model: **{live_model()}**, the best one already on this server; "
            f"each stream runs up to {STREAM_SECONDS // 60} minutes.")


def build() -> gr.Markdown:
    """The live tab inside the current Blocks; returns its model line (the page refreshes it)."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            webcam = gr.Image(label="Webcam", sources=["webcam"], streaming=True, type="numpy", height=360,
                              elem_id="live-webcam", webcam_options=gr.WebcamOptions(constraints=CAMERA))
            background, colour, picture = background_controls()
            model = gr.Markdown(model_line())
        with gr.Column(scale=3, min_width=320):
            rate_line = gr.Markdown("Start the webcam to see the cutout live.", elem_id="live-rate")
            cutout = gr.Image(label="Live cutout", elem_classes="checker", interactive=False, height=480,
                              elem_id="live-cutout", buttons=["download", "fullscreen"])
    rate = gr.State(None)
    webcam.stream(live_frame, [webcam, background, colour, picture, rate], [cutout, rate_line, rate],
                  stream_every=FRAME_SECONDS, time_limit=STREAM_SECONDS, show_progress="hidden",
                  api_visibility="private")
    return model
