"""What ``python -m segkit remove`` does with one video: a progress bar in frames, with an ETA."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from .formats import DEFAULT_FORMAT
from .run import segment_video


def segment_video_cli(source: Path, target_dir: Path, relative: Path, fmt: str | None, options: dict,
                      quiet: bool = False, only_mask: bool = False,
                      smooth: bool | float = False) -> Path:
    """Segment ``source`` into ``target_dir / relative`` with the suffix of ``fmt``.

    ``options`` are the declared options' values, as the CLI parsed them.
    """
    fmt = fmt or DEFAULT_FORMAT
    target = target_dir / relative
    if target.suffix.lower() != f".{fmt}":  # a name given as OUT.MOV keeps its own case
        target = target.with_suffix(f".{fmt}")
    with tqdm(desc=source.name, unit="frame", disable=quiet or None, leave=False) as bar:
        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        return segment_video(source, target, only_mask=only_mask, smooth=smooth,
                             fmt=fmt, progress=advance, **options)
