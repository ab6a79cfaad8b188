"""Compile ahead, so that no request waits for numba.

segkit's pixel kernels are numba functions compiled on first use. Their
machine code is cached on disk, so a process only pays for compiling when the
cache is empty. These keep it full:

* the cache lives in one folder that survives restarts and that segkit can
  write even when the package itself is read-only (numba's default is
  ``__pycache__`` next to the source): ``$NUMBA_CACHE_DIR`` if set, else
  ``$SEGKIT_CACHE/numba``, else ``$XDG_CACHE_HOME/segkit/numba``
  (``~/.cache/segkit/numba``). numba reads this when it is imported, so
  ``segkit/__init__.py`` calls :func:`use_persistent_cache` first of all;
* ``python -m segkit warm-up`` (run by ``make setup``) fills it;
* ``warm_up(background=True)`` at app start loads it, or compiles where it
  is empty (a Space after a restart), while the app already serves;
* a library caller's first call loads what it needs (:func:`load_beside`)
  while its model's session is built, which leaves the GIL free.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()  # numba's own test of a cache folder
        return True
    except OSError:
        return False


def numba_cache_dir() -> Optional[Path]:
    """The folder segkit gives numba for its cache, or None to leave numba's default."""
    if os.getenv("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    candidates = [Path(os.environ["SEGKIT_CACHE"]) / "numba"] if os.getenv("SEGKIT_CACHE") else []
    candidates.append(Path(os.getenv("XDG_CACHE_HOME") or Path.home() / ".cache") / "segkit" / "numba")
    return next((folder for folder in candidates if _writable(folder)), None)


def use_persistent_cache() -> None:
    """Point numba's cache at :func:`numba_cache_dir` unless the caller chose one."""
    if os.getenv("NUMBA_CACHE_DIR"):
        return
    folder = numba_cache_dir()
    if folder is None:
        return
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    if "numba" in sys.modules:  # imported before segkit: read the setting again
        from numba.core import config

        config.reload_config()


_GROUPS = ("resize", "matting")
_started: set[str] = set()  # kernel groups loaded, or being loaded, in this process
_starting = threading.Lock()


def warm_up(background: bool = False) -> Optional[threading.Thread]:
    """Compile (or load from the cache) every kernel for the array types requests pass.

    With ``background`` it runs in a daemon thread, returned; a request that
    needs a kernel meanwhile waits only for that kernel's compilation.
    """
    _claim(_GROUPS)  # a later first call's load_beside has nothing left to start
    if not background:
        _compile(*_GROUPS)
        return None
    thread = threading.Thread(target=_compile, args=_GROUPS, name="segkit-warm-up", daemon=True)
    thread.start()
    return thread


def load_beside(matting: bool) -> None:
    """Load the resize and cutout kernels (and matting's, if asked) in a thread, once per process.
    Called before a first session build: onnxruntime builds without the GIL, so a new process's
    first call waits for the slower of the two instead of both (bench/RESULTS.md, cold start).
    Only the groups the call needs: where the cache is empty they compile, and would slow it."""
    if wanted := _claim(_GROUPS if matting else ("resize",)):
        threading.Thread(target=_compile, args=wanted, name="segkit-kernels", daemon=True).start()


def _claim(groups: tuple[str, ...]) -> list[str]:
    """The groups no one has started loading yet, now marked as started."""
    with _starting:
        wanted = [group for group in groups if group not in _started]
        _started.update(wanted)
    return wanted


def _compile(*groups: str) -> None:
    from .models import predict
    from .pixels import matting, resize

    # "resize": what every call runs (the network's tensors, the resizes and the cutout)
    steps = {"resize": (predict.warm_up, resize.warm_up), "matting": (matting.warm_up,)}
    for group in groups:
        for warm_up_step in steps[group]:
            warm_up_step()


def command(_args=None) -> int:
    """``python -m segkit warm-up``: fill the cache now (``make setup`` runs it) and say where it is."""
    start = time.perf_counter()
    warm_up()
    folder = os.getenv("NUMBA_CACHE_DIR") or "numba's default (__pycache__ next to the source)"
    print(f"pixel kernels compiled into {folder} in {time.perf_counter() - start:.1f} s")
    return 0
