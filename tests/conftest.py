"""Shared fixtures (helpers live in helpers.py). Every model test here runs the real u2netp weights (fetched
through segkit's own download path on first use), never a stub."""

from __future__ import annotations

import functools
import tempfile

import pytest

import segkit
from segkit.models.sessions import POOL


@pytest.fixture(scope="session", autouse=True)
def temp_folder_of_this_run(tmp_path_factory):
    """This process's temp files under pytest's own folder, which pytest prunes: gradio_client
    leaves an empty folder in the temp folder per file it downloads (thousands a run)."""
    patch = pytest.MonkeyPatch()
    patch.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("tmp")))
    yield
    patch.undo()


@pytest.fixture(scope="session", autouse=True)
def one_tls_context_for_the_test_clients():
    """gradio_client opens a fresh httpx client for each upload, request and download, and each
    loads every CA certificate into a new TLS context, loopback or not: CPU taken from the server
    under test on the same cores, where a visitor's client runs elsewhere (bench/RESULTS.md, CI's
    clients). One context serves them all."""
    try:
        from httpx import _config
        from httpx._transports import default
    except ImportError:  # no app tests without gradio_client either
        yield
        return
    patch = pytest.MonkeyPatch()
    shared = functools.lru_cache(maxsize=None)(_config.create_ssl_context)
    patch.setattr(_config, "create_ssl_context", shared)
    patch.setattr(default, "create_ssl_context", shared)  # imported there by name
    yield
    patch.undo()


@pytest.fixture(scope="session")
def u2netp_path():
    """The real u2netp weights (md5-verified), downloaded once if missing."""
    return segkit.download("u2netp")


@pytest.fixture(scope="session")
def photos():
    """Real photos bundled with scikit-image: a person, a cat, a cup."""
    from skimage import data

    return {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee()}


@pytest.fixture(scope="session")
def rembg_session(u2netp_path):
    """rembg's own u2netp session, reading the same cached file (U2NET_HOME layout), on segkit's
    device and provider settings: parity compares the pipelines, not two devices' arithmetic
    (tests/test_sessions.py bounds the GPU's difference from the CPU)."""
    import rembg

    from segkit.models.sessions import provider_settings

    return rembg.new_session("u2netp", providers=provider_settings())


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    monkeypatch.setenv("SEGKIT_SKIP_CHECKSUM", "1")
    POOL.clear()
    yield tmp_path
    POOL.clear()


@pytest.fixture(scope="module")
def client(server):
    """gradio_client on the test module's own ``server`` (each app-server module sets its own up)."""
    from gradio_client import Client

    return Client(server.url, verbose=False)
