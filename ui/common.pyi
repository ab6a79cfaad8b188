"""What every tab shares: the option controls derived from ``segkit.options``, the
endpoint docs made from the same declarations, and errors worded for a person."""

from __future__ import annotations

import gradio as gr
from gradio.utils import NamedString
from gradio_client import utils as client_utils

from segkit import options, service
from segkit.models import catalog

from gradio.events import Dependency

class UploadedFile(gr.File):
    """gr.File (type="filepath") that hands over the uploaded file's path without first creating
    an empty temp file in Gradio's folder, as gr.File does for every file of every request and
    never removes."""

    is_template = True  # the page draws it with gr.File's own frontend

    def _process_single_file(self, f):
        if self.type != "filepath" or (self.file_types and not client_utils.is_valid_file(f.path, self.file_types)):
            return super()._process_single_file(f)  # bytes, or Gradio's message for a wrong file type
        return NamedString(f.path)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


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