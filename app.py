"""segkit's web app: the tabs of ``ui/`` on one page, nothing more.

Run ``python app.py [--host H] [--port P] [--share] [--preload MODEL] [--mcp]``;
Hugging Face Spaces run this file and serve ``demo``, which is built at import time.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from pathlib import Path

import segkit
from segkit import options, service, settings
from segkit.memory import few_malloc_heaps
from segkit.models import catalog

DEFAULT_MODEL = options.defaults()["model"]


def parse_args(argv=None) -> argparse.Namespace:
    """The command line, checked before Gradio's slow import: a mistyped model, a results folder that
    can't be written or a missing MCP extra stops the app within a second, named."""
    parser = argparse.ArgumentParser(description="segkit web app")
    parser.add_argument("--host", default=os.getenv("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.getenv("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also open a public *.gradio.live link")
    parser.add_argument("--preload", action="append", default=[], metavar="MODEL",
                        help="fetch and load a model before serving (repeatable; default $SEGKIT_PRELOAD or u2netp)")
    parser.add_argument("--mcp", action="store_true", help="also serve the endpoints as MCP tools (gradio[mcp])")
    args = parser.parse_args(argv)
    try:
        service.check_output_root()
    except segkit.SegkitError as exc:
        parser.error(str(exc))
    if args.mcp:
        try:
            import mcp  # noqa: F401 - what Gradio's MCP server runs on
        except ImportError:
            parser.error('--mcp needs Gradio\'s mcp extra: pip install "gradio[mcp]==6.31.0"')
    args.preload = [n.strip() for n in args.preload or os.getenv("SEGKIT_PRELOAD", DEFAULT_MODEL).split(",")
                    if n.strip()]
    for name in args.preload:
        try:
            segkit.get_model(name)
        except segkit.UnknownModelError as exc:
            parser.error(str(exc))
    return args


try:
    settings.check_all()  # a wrong SEGKIT_* variable stops the app here, named, before Gradio's slow import
except segkit.SegkitError as exc:
    raise SystemExit(f"error: {exc}") from None
ARGS = parse_args() if __name__ == "__main__" else None

import gradio as gr  # noqa: E402
from ui import clicks, live, photos, video  # noqa: E402 - the page reads the settings as it is built
from ui.common import model_status  # noqa: E402

# onnxruntime already uses every core for one image on CPU; a GPU leaves the CPU free for decoding
QUEUE_CONCURRENCY = settings.read("SEGKIT_CONCURRENCY") or (2 if segkit.device() == "CUDA" else 1)
# Gradio's own ceiling for one upload; segkit turns files over SEGKIT_MAX_FILE_MB into warnings below it
UPLOAD_CEILING = os.getenv("SEGKIT_MAX_UPLOAD", f"{4 * service.MAX_FILE_MB:.0f}mb")
CSS = """
.checker img, .checker video { background: repeating-conic-gradient(#d8d8d8 0% 25%, #fff 0% 50%) 50% / 20px 20px !important; }
.colour .dialog-button { width: 100%; height: 2.5rem; border: 1px solid #888; border-radius: 6px; }
#notes:empty { display: none; }
.checker .caption-label { white-space: normal; overflow-wrap: anywhere; font-size: 0.75rem; }
"""
# the API page's MCP tab says to start this app with --mcp, not to edit launch() (see the file)
API_PAGE_HEAD = Path(__file__).parent / "ui" / "api_page.html"
log = logging.getLogger("segkit.app")


def on_page_load(photos_model: str, video_model: str):
    """The model lists and lines were built at import: say what is loaded now, what the start-up check
    found unreachable, and which model the live streams use."""
    photos_list, line = model_status(photos_model)
    video_list = {**photos_list, "value": video_model}  # the same choices, not gathered twice
    return photos_list, line, video_list, catalog.status_line("sam"), live.model_line()


with gr.Blocks(title="segkit: cut out the subject", delete_cache=(600, 900)) as demo:
    gr.Markdown("# segkit · cut the subject out of your photos and videos")
    status = gr.Markdown(catalog.status_line(DEFAULT_MODEL))
    # on a phone the tabs that do not fit go behind a "..." button: the pointing one, last, suits a phone least
    with gr.Tab("Photos"):
        model = photos.build(status)
    with gr.Tab("Video"):
        video_model = video.build(status)
    with gr.Tab("Live"):
        live_line = live.build()
    with gr.Tab("Click to select (SAM)"):
        sam_status = clicks.build()
    demo.load(on_page_load, [model, video_model], [model, status, video_model, sam_status, live_line],
              api_visibility="private")

demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=64)


def close_server(signum, _frame) -> None:
    """Ctrl-C, and SIGTERM from docker, systemd or a Space: close the page's streams and the queue
    first, so Gradio's server shuts down (deleting its temp files) instead of timing out."""
    if not demo.is_running:  # still starting
        raise SystemExit(128 + signum)
    demo.close()


def main(args: argparse.Namespace) -> None:
    few_malloc_heaps()  # before the model sessions start their threads
    segkit.warm_up(background=True)  # numba kernels (matting's too) load or compile while the app starts
    segkit.check_model_sources()  # the model list marks what can't be fetched from here
    for name in args.preload:
        try:
            segkit.preload(name)
        except segkit.SegkitError as exc:  # serve anyway: the page shows the same error on use
            log.warning("could not preload %s: %s", name, service.public_message(exc))
    signal.signal(signal.SIGTERM, close_server)
    signal.signal(signal.SIGINT, close_server)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size=UPLOAD_CEILING,
                show_error=False, css=CSS, head_paths=[API_PAGE_HEAD], mcp_server=args.mcp or None,
                allowed_paths=[str(service.output_root())])  # results may live outside the temp folder


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("segkit").setLevel(logging.INFO)
    main(ARGS)
