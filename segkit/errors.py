"""Error types. Every problem a caller can fix is a ``ValueError`` subclass whose
message names the input and what is wrong with it, so callers (CLI, app, node)
can show it as-is instead of a traceback."""


class SegkitError(Exception):
    """Base class for every error segkit raises on purpose."""


class InvalidInputError(SegkitError, ValueError):
    """An image, tensor or parameter that segkit cannot use."""


class UnknownModelError(InvalidInputError):
    """A model name that is not in the registry."""


class ModelNotAvailableError(SegkitError, ValueError):
    """A known model whose weights cannot be had (offline, or not supported yet)."""


class ModelLoadError(SegkitError, RuntimeError):
    """Weights were found but onnxruntime could not build a session from them."""


def public_message(exc: BaseException) -> str:
    """The error's text for a remote user: server folders are replaced by their role."""
    import os

    from .weights import cache_dir

    text = str(exc)
    for folder, role in ((str(cache_dir()), "the model cache"), (os.path.expanduser("~"), "~")):
        text = text.replace(folder, role)
    return text
