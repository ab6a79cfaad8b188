"""segkit.fetch_url against a local HTTP server on 127.0.0.1 (never any other host).

The server counts TCP connections, so "refused before any contact" is asserted as zero
connections, not only zero requests. Fetches that should succeed pass ``allow_private=True``,
since the only server a test may reach is a loopback one.
"""

from __future__ import annotations

import io
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

import segkit
from segkit.io import url as url_module
from segkit.io.url import check_host, fetch_url, refusal_reason, sniff_kind


def _astronaut(fmt: str) -> bytes:
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((64, 64)).save(buffer, fmt)
    return buffer.getvalue()


PNG, JPEG = _astronaut("PNG"), _astronaut("JPEG")
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42" + bytes(64)
BIG = 200_000


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output quiet
        pass

    def send(self, status: int, body: bytes = b"", length: bool = True, **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        server = self.server
        server.seen.append((self.path, dict(self.headers)))
        path = self.path
        if path == "/astronaut.png":
            self.send(200, PNG, Content_Type="image/png")
        elif path == "/astronaut.jpg":
            self.send(200, JPEG, Content_Type="image/jpeg")
        elif path == "/clip.mp4":
            self.send(200, MP4_HEAD, Content_Type="video/mp4")
        elif path == "/big":
            self.send(200, PNG[:16] + bytes(BIG))
        elif path == "/big-unsized":  # HTTP/1.0 without a length: read until the server closes
            self.send(200, PNG[:16] + bytes(BIG), length=False)
        elif path == "/page.html":
            self.send(200, b"<!doctype html><title>hi</title>", Content_Type="text/html")
        elif path == "/empty":
            self.send(200)
        elif path.startswith("/hops/"):
            left = int(path.rsplit("/", 1)[1])
            self.send(302, Location=f"/hops/{left - 1}") if left else self.send(200, PNG)
        elif path == "/relative":
            self.send(301, Location="astronaut.png")
        elif path == "/no-location":
            self.send(302)
        elif path.startswith("/to?"):
            self.send(307, Location=path.split("?", 1)[1])
        elif path == "/stall":  # no answer at all until the test ends
            server.stop.wait(5)
        elif path == "/trickle":  # one byte at a time: a deadline per read would never expire
            self.send_response(200)
            self.send_header("Content-Length", "10000")
            self.end_headers()
            self.wfile.write(PNG[:16])
            for _ in range(100):
                if server.stop.wait(0.05):
                    break
                self.wfile.write(b"\0")
                self.wfile.flush()
        else:
            self.send(404, b"not here")


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections, self.seen, self.stop = 0, [], threading.Event()

    def verify_request(self, request, client_address):
        self.connections += 1
        return True

    def handle_error(self, request, client_address):  # clients that hang up early are expected
        pass

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.server_address[1]}{path}"


def _serve(server: CountingServer):
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def module_server():
    server = CountingServer()
    _serve(server)
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def server(module_server):
    module_server.connections, module_server.seen[:] = 0, []
    return module_server


def refused(url: str, **kwargs) -> str:
    with pytest.raises(segkit.InvalidInputError) as info:
        fetch_url(url, **kwargs)
    return str(info.value)


# --- fetched -------------------------------------------------------------------------------

@pytest.mark.parametrize("path, body", [("/astronaut.png", PNG), ("/astronaut.jpg", JPEG)])
def test_an_image_is_fetched_whole(server, path, body):
    data = fetch_url(server.url(path), allow_private=True)
    assert data == body
    assert Image.open(io.BytesIO(data)).size == (64, 64)


def test_the_name_is_resolved_once_and_sent_as_host(server, monkeypatch):
    lookups = []
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: lookups.append(host) or real(host, *a, **k))
    assert fetch_url(server.url("/astronaut.png", host="localhost"), allow_private=True) == PNG
    assert lookups.count("localhost") == 1  # the connection went to the checked address
    path, headers = server.seen[0]
    assert headers["Host"] == f"localhost:{server.server_address[1]}"
    assert headers["User-Agent"] == f"segkit/{segkit.__version__}"


@pytest.mark.parametrize("hops", [1, 3])
def test_up_to_three_redirects_are_followed(server, hops):
    assert fetch_url(server.url(f"/hops/{hops}"), allow_private=True) == PNG
    assert [path for path, _ in server.seen] == [f"/hops/{n}" for n in range(hops, -1, -1)]


def test_a_relative_redirect_is_resolved_against_the_url(server):
    assert fetch_url(server.url("/relative"), allow_private=True) == PNG


def test_video_is_fetched_only_when_asked_for(server):
    assert "expected image, the server sent video" in refused(server.url("/clip.mp4"), allow_private=True)
    assert fetch_url(server.url("/clip.mp4"), allow_private=True, accept=("image", "video")) == MP4_HEAD


# --- refused before any contact --------------------------------------------------------------

SPELLINGS = {"127.0.0.1": "127.0.0.1", "127.1": "127.0.0.1", "2130706433": "127.0.0.1",
             "0x7f000001": "127.0.0.1", "017700000001": "127.0.0.1", "localhost": "127.0.0.1",
             "[::1]": "::1", "[::ffff:127.0.0.1]": "::ffff:127.0.0.1", "0.0.0.0": "0.0.0.0"}


@pytest.mark.parametrize("host", list(SPELLINGS))
def test_every_spelling_of_a_local_host_is_refused_without_contact(server, host):
    message = refused(server.url("/astronaut.png", host=host))
    assert f"refused: the host resolves to {SPELLINGS[host]}" in message
    assert ("unspecified" if host == "0.0.0.0" else "loopback") in message
    assert server.connections == 0


@pytest.mark.parametrize("url, reason", [
    ("file:///etc/passwd", "only http and https"), ("ftp://127.0.0.1/x.png", "only http and https"),
    ("gopher://127.0.0.1:70/", "only http and https"), ("javascript:alert(1)", "only http and https"),
    ("//127.0.0.1/x.png", "has no scheme"), ("http:///x.png", "no valid host"), ("http://a b/x.png", "no valid host"),
    ("http://127.0.0.1:99999/x.png", "not a valid URL"), ("http://[::1/x.png", "not a valid URL"), ("http://user:secret@127.0.0.1:1/x.png?token=abc", "loopback")])
def test_bad_urls_are_refused_without_contact(server, url, reason):
    message = refused(url)
    assert reason in message
    assert "secret" not in message and "token" not in message  # credentials and queries stay out
    assert server.connections == 0


def test_an_unknown_kind_to_accept_is_a_programming_error(server):
    with pytest.raises(ValueError, match="accept"):
        fetch_url(server.url("/clip.mp4"), allow_private=True, accept=("audio",))
    assert server.connections == 0


def test_the_error_is_a_value_error():
    assert issubclass(segkit.InvalidInputError, ValueError)
    assert segkit.fetch_url is fetch_url


# --- refused after a redirect ----------------------------------------------------------------

def test_a_fourth_redirect_is_not_followed(server):
    assert "more than 3 redirects" in refused(server.url("/hops/4"), allow_private=True)
    assert "/hops/0" not in [path for path, _ in server.seen]


@pytest.mark.parametrize("target, reason", [
    ("file:///etc/passwd", "only http and https"), ("ftp://127.0.0.1/x", "only http and https"),
    ("data:image/png;base64,AA==", "only http and https"), ("http://[::1/x.png", "a URL that is not valid")])
def test_a_redirect_to_another_scheme_or_a_broken_url_is_refused(server, target, reason):
    message = refused(server.url(f"/to?{target}"), allow_private=True)
    assert "redirected to" in message and reason in message
    assert server.connections == 1


def test_every_redirect_is_checked_like_the_first_url(server, monkeypatch):
    """The first hop is let through as if it were public; the redirect to a loopback name is
    refused and never contacted."""
    real, calls = check_host, []

    def first_hop_public(host, port, allow_private=False, **kwargs):
        calls.append(host)
        return real(host, port, allow_private or len(calls) == 1, **kwargs)

    monkeypatch.setattr(url_module, "check_host", first_hop_public)
    target = server.url("/astronaut.png", host="localhost")
    message = refused(server.url(f"/to?{target}"))
    assert f"(redirected to {target})" in message and "loopback" in message
    assert calls == ["127.0.0.1", "localhost"]
    assert [path for path, _ in server.seen] == [f"/to?{target}"]


def test_a_redirect_without_location_is_an_error(server):
    assert "without a Location" in refused(server.url("/no-location"), allow_private=True)


# --- bad answers -----------------------------------------------------------------------------

def test_http_errors_name_the_status(server):
    assert "the server answered 404 Not Found" in refused(server.url("/missing"), allow_private=True)


@pytest.mark.parametrize("path, problem", [("/page.html", "unrecognised content (text/html)"),
                                           ("/empty", "an empty body")])
def test_a_body_that_is_not_an_image_is_refused(server, path, problem):
    assert f"expected image, the server sent {problem}" in refused(server.url(path), allow_private=True)


def test_a_declared_size_over_the_cap_is_refused_before_reading(server):
    assert "MB, over the 0.05 MB limit" in refused(server.url("/big"), allow_private=True, max_bytes=50_000)


def test_the_cap_holds_while_reading_a_body_of_unknown_size(server, monkeypatch):
    monkeypatch.setenv("SEGKIT_MAX_URL_MB", "0.05")
    assert "over the 0.05 MB limit" in refused(server.url("/big-unsized"), allow_private=True)
    monkeypatch.setenv("SEGKIT_MAX_URL_MB", "1")
    assert len(fetch_url(server.url("/big-unsized"), allow_private=True)) == BIG + 16


@pytest.mark.parametrize("path", ["/stall", "/trickle"])
def test_one_deadline_covers_the_whole_fetch(server, path):
    start = time.monotonic()
    assert "no complete answer within 0.4 s" in refused(server.url(path), allow_private=True, timeout=0.4)
    assert time.monotonic() - start < 1.2


def test_a_closed_port_is_a_clear_error():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert "the connection failed" in refused(f"http://127.0.0.1:{port}/x.png", allow_private=True)


# --- TLS: the socket goes to the checked address, the certificate is checked against the name --

@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    server = CountingServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    _serve(server)
    yield server, cert
    server.stop.set()
    server.shutdown()
    server.server_close()


def test_https_verifies_the_certificate(tls_server):
    server, _ = tls_server
    assert "certificate check failed" in refused(server.url("/astronaut.png", "localhost", "https"),
                                                 allow_private=True, timeout=5)


def test_https_checks_the_name_while_connecting_to_the_address(tls_server, monkeypatch):
    server, cert = tls_server
    monkeypatch.setattr(url_module, "_tls_context", lambda: ssl.create_default_context(cafile=cert))
    # The certificate names only "localhost": it passes because SNI and the check use the name.
    assert fetch_url(server.url("/astronaut.png", "localhost", "https"), allow_private=True, timeout=5) == PNG
    assert "certificate check failed" in refused(server.url("/astronaut.png", "127.0.0.1", "https"),
                                                 allow_private=True, timeout=5)


# --- the pure parts --------------------------------------------------------------------------

@pytest.mark.parametrize("address, kind", [
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"), ("224.0.0.1", "multicast"), ("100.64.0.1", "shared"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("fe80::1", "link-local"), ("fc00::1", "private"),
    ("ff02::1", "multicast"), ("::ffff:10.0.0.1", "carries 10.0.0.1, a private"),
    ("2002:7f00:1::", "carries 127.0.0.1, a loopback"), ("64:ff9b::a9fe:a9fe", "carries 169.254.169.254"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "carries 127.0.0.1"),  # Teredo: client bits inverted
    ("8.8.8.8", None), ("2606:4700:4700::1111", None)])
def test_refusal_reasons(address, kind):
    reason = refusal_reason(address)
    assert reason is None if kind is None else kind in reason


def test_check_host_resolves_numbers_without_the_network():
    assert check_host("8.8.8.8", 443) == ["8.8.8.8"]  # only checked: nothing is sent to it
    assert check_host("127.1", 80, allow_private=True) == ["127.0.0.1"]
    with pytest.raises(segkit.InvalidInputError, match="a multicast address"):
        check_host("239.1.1.1", 80)


@pytest.mark.parametrize("head, kind", [
    (PNG, "image"), (JPEG, "image"), (b"GIF89a", "image"), (b"RIFF\0\0\0\0WEBPVP8 ", "image"),
    (b"BM\0\0", "image"), (b"II*\0", "image"), (b"MM\0*", "image"), (MP4_HEAD, "video"),
    (b"\0\0\0\x14ftypqt  ", "video"), (b"\x1a\x45\xdf\xa3\x01", "video"), (b"RIFF\0\0\0\0AVI LIST", "video"),
    (b"\0\0\0\x1cftypheic", "image"), (b"\0\0\0\x1cftypavif", "image"), (b"\0\0\0\x1cftypmif1", "image"),
    (b"<svg>", None), (b"", None)])
def test_sniff_kind(head, kind):
    assert sniff_kind(head) == kind
