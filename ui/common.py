"""What every tab shares: the option controls derived from ``segkit.options``, the
endpoint docs made from the same declarations, and errors worded for a person."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
from gradio.utils import NamedString
from gradio_client import utils as client_utils

from segkit import InvalidInputError, options, service
from segkit.io.decode import IMAGE_SUFFIXES
from segkit.models import catalog

BACKGROUNDS = ["transparent", "colour", "blurred original", "image"]
# What photo uploads take: by suffix too, as Chromium gives a .HEIC file no image type and the upload refused it.
PHOTO_FILES = ["image", *sorted(IMAGE_SUFFIXES)]


def scroll_into_view(elem_id: str) -> str:
    """Browser code that brings a column into view on a narrow screen, where results sit below the controls."""
    return f"() => {{ if (window.innerWidth < 900) document.getElementById('{elem_id}').scrollIntoView(); }}"


def UploadedFile(**kwargs) -> gr.File:  # noqa: N802 - used like the component it makes
    """gr.File (type="filepath") that hands over the uploaded file's path without first creating
    an empty temp file in Gradio's folder, as gr.File does for every file of every request and
    never removes. (Set on the instance: a subclass would make Gradio write a .pyi beside this file.)"""
    component = gr.File(**kwargs)
    plain = component._process_single_file

    def as_uploaded(f):
        if component.type != "filepath" or (component.file_types
                                            and not client_utils.is_valid_file(f.path, component.file_types)):
            return plain(f)  # bytes, or Gradio's message for a wrong file type
        return NamedString(f.path)

    component._process_single_file = as_uploaded
    return component


def user_error(exc: Exception) -> gr.Error:
    """segkit's message for a person (no server paths), shown until closed: it says what to do."""
    return gr.Error(service.public_message(exc), duration=None, print_exception=False)


def per_image_options():
    """The declared options that get one control each (the background gets three, below)."""
    return [(f, c) for f, c in options.declared() if options.kind(f) != "background"]


BACKGROUND = next(f.name for f, _ in options.declared() if options.kind(f) == "background")


def background_controls(choices=BACKGROUNDS):
    """The background radio with its colour picker and picture, each shown only when chosen."""
    background = gr.Radio(choices, value="transparent", label="Background")
    background.preprocess = lambda value: value  # background_option names a wrong value
    colour = gr.ColorPicker(value="#00b140", label="Colour", visible=False, elem_classes="colour")
    picture = UploadedFile(label="Background picture", file_types=PHOTO_FILES, type="filepath", visible=False,
                           height=100)
    background.change(lambda c: (gr.update(visible=c == "colour"), gr.update(visible=c == "image")),
                      background, [colour, picture], api_visibility="private")
    return background, colour, picture


def background_option(background: str, colour: str | None, picture: str | None):
    """The three background controls -> the ``background`` option, or a message naming what is missing."""
    if background not in BACKGROUNDS:
        raise InvalidInputError(f"background: must be one of {', '.join(BACKGROUNDS)}, got {background!r}")
    if background == "colour" and not (colour or "").strip():
        raise InvalidInputError("background is colour, but no colour is chosen: pick one")
    if background == "image" and not picture:
        raise InvalidInputError("background is image, but no background picture is uploaded: add one")
    if background == "image":
        return Path(picture)
    return {"colour": colour, "blurred original": "blur"}.get(background, background)


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


def model_status(model):
    """Refresh the dropdown's cached/loaded marks and the status line (device, load state)."""
    return gr.update(choices=catalog.model_choices(), value=model), catalog.status_line(model)


def option_control(f, control):
    """The control for one declared option. It passes the sent value through as it came:
    ``segkit.Options`` then names the option and what it accepts, where Gradio's own checks
    would answer an API caller with its generic text."""
    if control.choices:
        component = gr.Dropdown(catalog.model_choices(), value=f.default, label=control.label, info=control.help)
    elif options.kind(f) == "bool":
        component = gr.Checkbox(f.default, label=control.label, info=control.help)
    elif options.kind(f) == "prompt":  # a parameter for programs; people click in the SAM tab
        component = gr.Textbox("", visible=False, label=control.label, info=control.help)
    else:
        component = gr.Slider(control.low, control.slider_high or control.high, value=f.default, step=control.step,
                              label=control.label, info=control.help)
    component.preprocess = lambda value: value
    return component


def option_controls() -> dict:
    """A control per declared option, in the current layout; refinements (the matting
    thresholds) show while the option they refine is on."""
    controls = {}
    for f, control in per_image_options():
        if control.shown_with:
            continue
        controls[f.name] = option_control(f, control)
        refinements = [(g, c) for g, c in per_image_options() if c.shown_with == f.name]
        if refinements:
            with gr.Group(visible=bool(f.default)) as group:
                controls.update({g.name: option_control(g, c) for g, c in refinements})
            controls[f.name].change(lambda on: gr.update(visible=on), controls[f.name], group,
                                    api_visibility="private")
    return controls


def model_control(controls: dict) -> gr.Dropdown:
    """The model's dropdown among ``option_controls()``."""
    return next(controls[f.name] for f, c in per_image_options() if c.choices)
