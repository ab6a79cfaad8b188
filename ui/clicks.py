"""The "Click to select" tab: SAM cuts out what a person points at. Each click on the
photo adds a kept or removed point, or a corner of a box; the cutout follows every
click. The photo's embedding is computed on the first click and reused after that."""

from __future__ import annotations

import gradio as gr
from PIL import Image, ImageDraw

from segkit import service
from segkit.models import catalog

from .common import user_error

MODES = ["keep", "remove", "box (two corners)"]
COLOURS = {True: (0, 200, 80), False: (230, 40, 40)}  # kept, removed


def empty_marks() -> dict:
    return {"points": [], "box": None, "corner": None}


def describe(marks: dict) -> str:
    kept = sum(keep for *_, keep in marks["points"])
    text = f"{kept} kept · {len(marks['points']) - kept} removed"
    if marks["box"]:
        text += " · box {:.0f},{:.0f} → {:.0f},{:.0f}".format(*marks["box"])
    elif marks["corner"]:
        text += " · box: click the second corner"
    return text


def with_marks(photo: str, marks: dict) -> Image.Image:
    """The photo with the clicks drawn on it, so a person sees what they asked for."""
    image = Image.open(photo).convert("RGB")
    draw = ImageDraw.Draw(image)
    radius = max(4, max(image.size) // 120)
    for x, y, keep in marks["points"]:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=COLOURS[keep], outline="white")
    if marks["box"]:
        draw.rectangle(marks["box"], outline=COLOURS[True], width=max(2, radius // 2))
    elif marks["corner"]:
        x, y = marks["corner"]
        draw.rectangle((x - radius, y - radius, x + radius, y + radius), outline=COLOURS[True], width=2)
    return image


def click(photo: str | None, marks: dict, mode: str, evt: gr.SelectData):
    """One click: record it, then cut out by everything clicked so far."""
    if not photo:
        raise user_error(ValueError("upload a photo first, then click on it"))
    x, y = evt.index
    marks = {**marks, "points": list(marks["points"])}
    if mode == MODES[2]:
        if marks["corner"] is None or marks["box"] is not None:
            marks["corner"], marks["box"] = (x, y), None
        else:
            (x0, y0), marks["corner"] = marks["corner"], None
            marks["box"] = (min(x0, x), min(y0, y), max(x0, x), max(y0, y))
    else:
        marks["points"].append((x, y, mode == MODES[0]))
    if not marks["points"] and not marks["box"]:
        return marks, with_marks(photo, marks), gr.skip(), describe(marks)
    try:
        served = service.serve_prompted(photo, marks["points"], marks["box"])
    except Exception as exc:  # noqa: BLE001 - segkit's errors are worded for people; others are logged
        raise user_error(exc) from None
    return marks, with_marks(photo, marks), (served.original, served.cutout), describe(marks)


def build() -> gr.Markdown:
    """The tab inside the current Blocks; returns its status line (the page refreshes it)."""
    marks = gr.State(empty_marks())
    status = gr.Markdown(catalog.status_line("sam"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            photo = gr.Image(label="Photo", type="filepath", sources=["upload", "clipboard"], height=220)
            mode = gr.Radio(MODES, value=MODES[0], label="A click on the photo below…")
            canvas = gr.Image(label="Click here: green keeps, red removes", type="pil", interactive=False,
                              height=420)
            summary = gr.Markdown("Upload a photo, then click what to keep.")
            clear = gr.Button("Clear the clicks")
        with gr.Column(scale=3, min_width=320):
            result = gr.ImageSlider(label="Before / after", type="filepath", elem_classes="checker", height=560)
    photo.change(lambda p: (empty_marks(), Image.open(p) if p else None, None, "Now click what to keep."),
                 photo, [marks, canvas, result, summary], api_visibility="private")
    canvas.select(click, [photo, marks, mode], [marks, canvas, result, summary], api_visibility="private",
                  ).then(lambda: catalog.status_line("sam"), None, status, api_visibility="private")
    clear.click(lambda p: (empty_marks(), Image.open(p) if p else None, None, "Clicks cleared."),
                photo, [marks, canvas, result, summary], api_visibility="private")
    return status
