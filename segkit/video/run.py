"""The frame loop: decode, network and encode overlapped, never the whole clip in memory.

Three stages, each in its own thread, joined by short bounded queues:

    decode thread  -> frames  -> network thread (pipeline.segment_one, two frames side by side)
                   -> results -> caller's thread (smooth, compose, encode, progress)

The caller's thread does the encoding so that ``progress`` and ``cancel`` act
where the caller is: an exception from ``progress`` stops the job like
``cancel.set()``. The output is written under a temporary name beside the
target and renamed only when complete; any failure removes it.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from dataclasses import replace
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from PIL import Image

from ..errors import InvalidInputError, SegkitError, check_hooks
from ..io.compose import compose
from ..io.encode import overwrites_input
from ..models.sessions import session_side_by_side
from ..options import Options
from ..pipeline import segment_one
from .formats import DEFAULT_FORMAT, format_for
from .reader import check_limits, probe, read_frames, refuse_url
from .smooth import TemporalSmoother, strength_of
from .writer import open_writer, partial_for

FRAMES_AT_ONCE = 2  # frames segmented side by side, each in its own thread (models.sessions.session_side_by_side)
QUEUE_FRAMES = 8  # frames waiting between two stages: enough to ride out a slow frame, small in memory
POLL_SECONDS = 0.1  # how often a waiting stage looks for a stop
ProgressFn = Optional[Callable[[int, int], Any]]
_END = object()


class VideoCancelled(SegkitError):
    """The job was cancelled; nothing was written."""


class _Stages:
    """The worker threads' shared stop flag and first failure."""

    def __init__(self, cancel: threading.Event | None):
        self.stop = threading.Event()
        self.cancel = cancel
        self.failure: BaseException | None = None

    def check(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self.cancel is not None and self.cancel.is_set():
            raise VideoCancelled("cancelled")

    def put(self, into: queue.Queue, item) -> bool:
        while not self.stop.is_set():
            try:
                into.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def get(self, source: queue.Queue, in_caller: bool = False):
        while True:
            if in_caller:
                self.check()
            elif self.stop.is_set():
                return _END
            try:
                return source.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue

    def run(self, name: str, work, *args) -> threading.Thread:
        def guarded():
            try:
                work(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                if self.failure is None:
                    self.failure = exc
                self.stop.set()

        thread = threading.Thread(target=guarded, name=f"segkit-video-{name}", daemon=True)
        thread.start()
        return thread


def _decode(stages: _Stages, info, frames: queue.Queue) -> None:
    reader = read_frames(info)
    try:
        for frame in reader:
            if not stages.put(frames, frame):
                return
        stages.put(frames, _END)
    finally:
        reader.close()


def _segment(stages: _Stages, label: str, settings: Options, frames: queue.Queue,
             results: queue.Queue) -> None:
    """Segment frames ``FRAMES_AT_ONCE`` at a time, handing them on in order."""
    session = session_side_by_side(settings.spec, FRAMES_AT_ONCE)
    pool = ThreadPoolExecutor(FRAMES_AT_ONCE, thread_name_prefix="segkit-video-network")
    pending: deque = deque()  # (frame, future), oldest first
    try:
        while (frame := stages.get(frames)) is not _END:
            pending.append((frame, pool.submit(segment_one, frame.image, settings, session, frame.index)))
            if len(pending) > FRAMES_AT_ONCE and not _hand_on(stages, label, *pending.popleft(), results):
                return
        while pending:
            if not _hand_on(stages, label, *pending.popleft(), results):
                return
        stages.put(results, _END)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _hand_on(stages: _Stages, label: str, frame, future, results: queue.Queue) -> bool:
    try:
        outcome = future.result()
    except SegkitError as exc:
        raise InvalidInputError(f"{label}: frame {frame.index + 1}: {exc}") from None
    return stages.put(results, (frame, outcome))


def _check_target(source: Path, target: Path, fmt: str | None) -> None:
    """What would only fail once every frame is done, refused before any work: a target that is a
    folder (the final rename fails) or the clip itself (the rename would replace it)."""
    if target.is_dir():
        example = target / f"{source.stem}.{fmt or DEFAULT_FORMAT}"
        raise InvalidInputError(f"{target}: is a folder; name the file to write, such as {example}",
                                subject=str(target))
    if target.exists() and source.exists() and target.samefile(source):  # a link or a hard link to it too
        raise overwrites_input(source, "choose another target file")


def segment_video(source: str | os.PathLike, target: str | os.PathLike, *,
                  background=None, only_mask: bool = False, smooth: bool | float = False,
                  fmt: str | None = None, progress: ProgressFn = None,
                  cancel: threading.Event | None = None, **options) -> Path:
    """Cut the subject out of every frame of ``source`` and write ``target``; returns its path.

    The format follows ``target``'s suffix (or ``fmt``): ``.webm`` VP9 with alpha,
    ``.mov`` ProRes 4444 with alpha, ``.mp4`` H.264 over ``background`` (black if
    none), ``.zip`` a PNG per frame. ``background`` takes what the option of that
    name takes; it is put behind each frame after smoothing.
    ``only_mask`` writes the matte as greyscale. ``smooth`` (True or a strength
    in [0, 1)) steadies mattes across frames. ``options`` are ``segkit.process``'s.
    ``progress(frames_done, frames_total)`` is called after each frame (the total
    is an estimate until the end); it may raise to stop the job, as does
    ``cancel.set()``. Frame rate, timestamps, rotation and sound are kept; a
    failed or cancelled job leaves no file behind.
    """
    check_hooks(progress, cancel)
    refuse_url(source)
    source, target = Path(source), Path(target)
    _check_target(source, target, fmt)
    output = format_for(target, fmt)
    smoother = TemporalSmoother(strength) if (strength := strength_of(smooth)) else None
    if background is None and output == "mp4" and not only_mask:
        background = "black"
    settings = Options.of(**options, background=background)  # bad options fail before any work
    info = probe(source)
    check_limits(info)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_for(target)
        partial.touch(exist_ok=False)  # PyAV opens its file only with the first frame: find out now
    except OSError as exc:  # a file where a folder should be, a read-only folder...
        blocking = next((p for p in target.parents if p.exists()), None)
        reason = f"{blocking} is a file, not a folder" if blocking and not blocking.is_dir() else exc.strerror or exc
        raise InvalidInputError(f"{target}: cannot be written ({reason})", subject=str(target)) from None
    try:
        writer = open_writer(partial, output, info, alpha=settings.background is None and not only_mask)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    stages = _Stages(cancel)
    frames, results = queue.Queue(QUEUE_FRAMES), queue.Queue(QUEUE_FRAMES)
    per_frame = replace(settings, background=None)  # the background goes on here, after smoothing
    threads = [stages.run("decode", _decode, stages, info, frames),
               stages.run("network", _segment, stages, info.label, per_frame, frames, results)]
    try:
        done = 0
        while (item := stages.get(results, in_caller=True)) is not _END:
            frame, result = item
            mask, cutout = result.mask, result.cutout
            if smoother:
                mask = Image.fromarray(smoother(result.image, np.asarray(mask)), "L")
                cutout = cutout.copy()
                cutout.putalpha(mask)
            picture = mask if only_mask else compose(cutout, result.image, settings.background,
                                                     matted=settings.alpha_matting)
            writer.write(frame.pts, picture)
            done += 1
            if progress:
                progress(done, max(done, info.frames))
        stages.check()
        writer.close()
        os.replace(partial, target)
        if progress:
            progress(done, done)
        return target
    except BaseException:
        try:
            writer.abort()
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        partial.unlink(missing_ok=True)
        raise
    finally:
        stages.stop.set()
        for thread in threads:
            thread.join()
