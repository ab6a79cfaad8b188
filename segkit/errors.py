"""Error types. Every problem a caller can fix is a ``ValueError`` subclass whose
message names the input and what is wrong with it, so callers (CLI, app, node)
can show it as-is instead of a traceback. The parts of a message are fields too
(``subject``, ``reason``, ``hint``), so nobody has to parse the text back apart."""

from __future__ import annotations

from typing import Optional


class SegkitError(Exception):
    """Base class for every error segkit raises on purpose.

    ``subject``: the input, parameter or model the error is about; ``hint``: what to do about it.
    """

    def __init__(self, message: str, *, subject: str = "", hint: str = ""):
        super().__init__(message)
        self.subject, self.hint = subject, hint


class InvalidInputError(SegkitError, ValueError):
    """An image, tensor or parameter that segkit cannot use."""


def check_hooks(progress=None, cancel=None, progress_call: str = "progress(done, total)") -> None:
    """A progress callback and a cancel event are used only once work is under way: a wrong kind
    (``progress=True``, say) would fail there, with the work lost. Checked before any work instead."""
    if progress is not None and not callable(progress):
        raise InvalidInputError(f"progress: must be a function called as {progress_call}, or None; "
                                f"got {progress!r}", subject="progress")
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise InvalidInputError(f"cancel: must be a threading.Event (set it to stop), or None; got {cancel!r}",
                                subject="cancel")


class UnknownModelError(InvalidInputError):
    """A model name that is not in the registry."""


class ModelNotAvailableError(SegkitError, ValueError):
    """A known model whose weights cannot be had (offline, or not supported yet).

    ``reason``: what went wrong in one line; ``tried``: (source, why it failed) for each
    place the weights were looked for; ``hint``: how to install them by hand.
    """

    def __init__(self, model: str, reason: str, tried: Optional[list[tuple[str, str]]] = None, hint: str = ""):
        self.model, self.reason, self.tried = model, reason, list(tried or [])
        lines = [f"model {model!r}: {reason}."]
        if self.tried:
            lines.append("Tried:" + "".join(f"\n  - {source}: {why}" for source, why in self.tried))
        if hint:
            lines.append(f"To fix: {hint}.")
        super().__init__("\n".join(lines), subject=model, hint=hint)


class ModelLoadError(SegkitError, RuntimeError):
    """Weights were found but onnxruntime could not build a session from them."""
