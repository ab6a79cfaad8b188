"""Serving one video to a remote user: take an upload or a URL, refuse it over the limits
before any frame is segmented, write each requested format into a per-request folder,
report progress in frames with the time left, and stop cleanly when the person cancels.
The web app binds its controls to these functions; nothing here knows about Gradio."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional
from urllib.parse import urlsplit

from ..batch import time_left
from ..errors import InvalidInputError, ModelNotAvailableError
from ..io.url import fetch_url
from ..options import Options
from ..service import for_visitor, output_dir, storing
from .reader import check_limits, limit, probe
from .run import VideoCancelled, segment_video
from .writer import FORMATS

PREVIEW_FORMAT = "webm"  # the one format browsers play with its alpha (Chromium)
# (fraction done, "frame 120 of 300 · about 12 s left"; with several formats "frame 4 of 24 · mov, 2 of 3 · ...")
TextProgress = Optional[Callable[[float, str], None]]


@dataclass
class ServedVideo:
    """One finished job: the clip to preview, a file per requested format, and what happened."""

    preview: str
    files: list[str]
    frames: int
    seconds: float


def limits_in_words() -> str:
    """The limits as a person reads them before choosing a file (they follow the environment)."""
    megapixels = limit("pixels") / 1e6
    return (f"up to {limit('seconds'):g} s, {megapixels:.1f} megapixels a frame, "
            f"{limit('megabytes'):g} MB")


def fetch_video(url: str, folder: Path) -> Path:
    """A video from a public http(s) URL, saved in ``folder`` under the name the URL gives it;
    it may be as large as the video limit allows."""
    data = fetch_url(url, accept=("video",), max_bytes=int(limit("megabytes") * 1e6), timeout=60)
    name = re.sub(r"[^\w.-]", "_", Path(urlsplit(url).path).name).lstrip(".") or "video"
    path = folder / name
    path.write_bytes(data)
    return path


class Jobs:
    """A cancel flag per person (per browser session), so a Cancel button reaches their job while it
    waits in the queue as well as while it runs: a job picks up the flag its person already has."""

    def __init__(self):
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def expect(self, key: str) -> None:
        """``key`` has just asked for a job: a fresh flag, so an earlier Cancel does not stop it."""
        with self._lock:
            self._flags[key] = threading.Event()

    @contextmanager
    def running(self, key: str) -> Iterator[threading.Event]:
        with self._lock:
            flag = self._flags.setdefault(key, threading.Event())
        try:
            yield flag
        finally:
            with self._lock:
                if self._flags.get(key) is flag:
                    del self._flags[key]

    def cancel(self, key: str) -> bool:
        """Stop ``key``'s job, running or queued (with no flag yet, the next to start); False when
        ``key`` had no flag: no job running and none asked for through ``expect``."""
        with self._lock:
            known = key in self._flags
            self._flags.setdefault(key, threading.Event()).set()
        return known


def serve_video(source: str | os.PathLike | None, url: str = "", *, formats: tuple[str, ...] = (PREVIEW_FORMAT,),
                background=None, smooth: bool = False, progress: TextProgress = None,
                cancel: threading.Event | None = None, root: str | os.PathLike | None = None,
                **options) -> ServedVideo:
    """Cut the subject out of an uploaded video (or the one at ``url``) in each of ``formats``.

    The webm is always made: it is the preview. Each format is a pass of its own. A
    video over the limits is refused before any frame is segmented; a cancelled or
    failed job removes the whole request folder and raises (``VideoCancelled``).
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InvalidInputError(f"formats: {unknown[0]!r} is not one of {', '.join(FORMATS)}", subject="formats")
    if not source and not (url or "").strip():
        raise InvalidInputError("no video given: upload one, or give its URL", subject="video")
    Options.of(**options, background=background)  # a bad option is named before anything is fetched
    if cancel is not None and cancel.is_set():  # cancelled while it waited in the queue
        raise VideoCancelled("cancelled before it started")
    folder = output_dir(root)
    try:
        path = Path(source) if source else fetch_video(url.strip(), folder)
        info = probe(path)
        check_limits(info)
        passes = [PREVIEW_FORMAT] + [f for f in dict.fromkeys(formats) if f != PREVIEW_FORMAT]
        started = time.perf_counter()
        frames = 0
        made = {}
        for index, fmt in enumerate(passes):
            def report(done: int, total: int, index=index, fmt=fmt) -> None:
                nonlocal frames
                frames = done
                overall, whole = index * total + done, len(passes) * total
                stage = f"{fmt}, {index + 1} of {len(passes)}" if len(passes) > 1 else ""
                if progress:
                    eta = time_left(overall, whole, time.perf_counter() - started)
                    progress(overall / whole, " · ".join(p for p in (f"frame {done} of {total}", stage, eta) if p))

            target = folder / f"{path.stem}-cutout.{fmt}"
            with storing():  # the reader turns what is wrong with the video into InvalidInputError
                made[fmt] = str(segment_video(path, target, background=background, smooth=smooth, fmt=fmt,
                                              progress=report, cancel=cancel, **options))
        return ServedVideo(made[PREVIEW_FORMAT], [made[f] for f in passes if f in formats], frames,
                           time.perf_counter() - started)
    except ModelNotAvailableError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise for_visitor(exc) from exc
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


__all__ = ["serve_video", "ServedVideo", "Jobs", "limits_in_words", "time_left", "fetch_video", "VideoCancelled",
           "PREVIEW_FORMAT"]
