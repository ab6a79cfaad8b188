"""Fetching an input image from a URL without letting the URL reach inside the server.

A public demo that fetches URLs for strangers is a server-side request forgery risk: a URL
naming ``127.0.0.1``, a cloud metadata address or a private host would make the server ask
its own network. So the host is resolved once, every address it resolves to must be public,
and the connection goes to the address that was checked (a second lookup could answer
differently: DNS rebinding). Each redirect is checked the same way. The body is read under a
size cap and one deadline, and its first bytes must look like an accepted kind of file.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

from .. import settings
from ..errors import InvalidInputError

MAX_REDIRECTS = 3
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
CHUNK_BYTES = 64 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 6598 carrier-grade NAT space; Python < 3.13 does not count it as private.
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
# ISO base media brands that are still images (HEIF, AVIF), not video.
STILL_IMAGE_BRANDS = (b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis")
HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_:%")  # names, IPv4, IPv6, zone
URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))  # printable ASCII stays as written


def names_a_url(text) -> bool:
    """Whether a path given as text is an http(s) URL (and no file of that name is here)."""
    return isinstance(text, str) and text.split("://")[0].lower() in ("http", "https") and not Path(text).exists()


def max_url_bytes() -> int:
    """Largest body fetched: ``SEGKIT_MAX_URL_MB`` (as the app's upload limit by default)."""
    return int(settings.read("SEGKIT_MAX_URL_MB") * 1_000_000)


def refusal_reason(address: str) -> str | None:
    """Why this address is not fetched ("a loopback address"), or None for a public one.

    IPv6 forms that carry an IPv4 address (mapped ``::ffff:a.b.c.d``, 6to4, Teredo, NAT64)
    are judged by the IPv4 address inside, which is where the packets end up.
    """
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and ip in ipaddress.ip_network("64:ff9b::/96"):
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            reason = refusal_reason(str(inner))
            return reason and f"which carries {inner}, {reason}"
    for flag, kind in (("is_unspecified", "an unspecified"), ("is_loopback", "a loopback"),
                       ("is_link_local", "a link-local"), ("is_multicast", "a multicast"),
                       ("is_private", "a private"), ("is_reserved", "a reserved")):
        if getattr(ip, flag):
            return f"{kind} address"
    if ip in SHARED_ADDRESS_SPACE:
        return "a shared (carrier-grade NAT) address"
    if not ip.is_global:
        return "a non-public address"
    return None


def check_host(host: str, port: int, allow_private: bool = False, *, where: str = "") -> list[str]:
    """Resolve ``host`` once and return its addresses, refusing it if any is not public.

    Any non-public address refuses the whole host, so a name cannot mix a public address
    with a private one and hope the connection picks the latter.
    """
    where = where or host
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInputError(f"{where}: cannot resolve the host {host!r} ({exc})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses:
        raise InvalidInputError(f"{where}: the host {host!r} has no address")
    if not allow_private:
        for address in addresses:
            reason = refusal_reason(address)
            if reason:
                raise InvalidInputError(f"{where}: refused: the host resolves to {address}, "
                                        f"{reason} (only public addresses are fetched)")
    return addresses


def sniff_kind(data: bytes) -> str | None:
    """"image" or "video" from the first bytes, or None: magic numbers only, nothing decoded."""
    head = bytes(data[:16])
    riff = head[8:12] if head.startswith(b"RIFF") else b""
    if head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM",
                        b"II*\x00", b"MM\x00*")) or riff == b"WEBP" \
            or (head[4:8] == b"ftyp" and head[8:12] in STILL_IMAGE_BRANDS):  # HEIC, AVIF
        return "image"
    if (head[4:8] == b"ftyp" and head[8:12] not in STILL_IMAGE_BRANDS) or riff == b"AVI " \
            or head.startswith(b"\x1a\x45\xdf\xa3"):  # MP4/MOV, AVI, WebM/MKV (EBML)
        return "video"
    return None


def url_label(url: str) -> str:
    """The URL as shown in messages: no user name or password, no query string, not too long."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # a broken IPv6 literal: show no part of it that could be a secret
        return "a URL that cannot be read"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    label = f"{parts.scheme}://{host}{port}{parts.path}" + ("?…" if parts.query else "")
    return label if len(label) <= 120 else label[:119] + "…"


class _DeadlineReader(io.RawIOBase):
    """Socket reads that share one deadline, so a server sending a byte at a time cannot
    stretch the fetch: every read waits only for the time that is left."""

    def __init__(self, sock: socket.socket, deadline: float):
        self._sock, self._deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """The socket http.client sees: the same socket, whose reader keeps the deadline."""

    def __init__(self, sock: socket.socket, deadline: float):
        self._sock, self._deadline = sock, deadline

    def __getattr__(self, name: str):
        return getattr(self._sock, name)

    def makefile(self, mode: str = "rb", *args, **kwargs) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        """Kept open: http.client closes the socket before the body is read, counting on the
        reference its own reader would hold. The fetch closes it with ``release``."""


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to addresses already checked; TLS still verifies the name."""

    def __init__(self, addresses: list[str], port: int, host: str, tls: bool, deadline: float):
        super().__init__(addresses[0], port)
        self._addresses, self._name, self._tls, self._deadline = addresses, host, tls, deadline
        self._socket: socket.socket | None = None

    def connect(self) -> None:
        error: OSError = OSError("no address")
        for address in self._addresses:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("deadline passed")
            try:
                sock = socket.create_connection((address, self.port), timeout=left)
                break
            except OSError as exc:
                error = exc
        else:
            raise error
        if self._tls:
            sock = _tls_context().wrap_socket(sock, server_hostname=self._name)
        self._socket, self.sock = sock, _DeadlineSocket(sock, self._deadline)

    def release(self) -> None:
        self.close()
        if self._socket is not None:
            self._socket.close()


def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def _parse(url: str, where: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, request target) of an http(s) URL, or InvalidInputError."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  # the port is parsed lazily: a bad one raises here
    except ValueError:
        raise InvalidInputError(f"{where}: refused: not a valid URL (bad host or port)") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        shown = f"not {scheme}:" if scheme else "and this URL has no scheme"
        raise InvalidInputError(f"{where}: refused: only http and https URLs are fetched, {shown}")
    port = parts.port or DEFAULT_PORTS[scheme]
    host = parts.hostname or ""
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        host = ""
    if not host or not HOST_CHARACTERS.issuperset(host):
        raise InvalidInputError(f"{where}: the URL has no valid host name")
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=URL_SAFE)
    return scheme, host, port, target


def _host_header(scheme: str, host: str, port: int) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port == DEFAULT_PORTS[scheme] else f"{name}:{port}"


def _read_body(response: http.client.HTTPResponse, max_bytes: int, where: str) -> bytes:
    declared = response.getheader("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise InvalidInputError(f"{where}: the file is {int(declared) / 1e6:.1f} MB, over the "
                                f"{max_bytes / 1e6:g} MB limit for URLs")
    body = bytearray()
    while chunk := response.read1(CHUNK_BYTES):
        body += chunk
        if len(body) > max_bytes:
            raise InvalidInputError(f"{where}: the file is over the {max_bytes / 1e6:g} MB limit for URLs")
    return bytes(body)


def fetch_url(url: str, *, allow_private: bool = False, max_bytes: int | None = None,
              timeout: float = 15, accept: tuple[str, ...] = ("image",)) -> bytes:
    """The body of an http(s) URL whose content is one of the ``accept`` kinds.

    Refused before any connection: other schemes, and hosts that resolve to a loopback,
    private, link-local, multicast, reserved or unspecified address (unless ``allow_private``).
    At most ``MAX_REDIRECTS`` redirects, each checked the same way; ``max_bytes`` (default
    ``SEGKIT_MAX_URL_MB``) is enforced while reading; ``timeout`` seconds cover the whole fetch.
    Every problem raises ``InvalidInputError`` (a ``ValueError``) naming the URL and the reason.
    """
    from .._version import __version__

    unknown = set(accept) - {"image", "video"}
    if unknown or not accept:
        raise ValueError(f"accept must name 'image' and/or 'video', not {sorted(unknown) or accept}")
    if not isinstance(url, str):
        raise InvalidInputError(f"a URL must be a string, not {type(url).__name__}")
    max_bytes = max_url_bytes() if max_bytes is None else max_bytes
    deadline = time.monotonic() + timeout
    first = where = url_label(url)
    current = url
    for redirects in range(MAX_REDIRECTS + 1):
        scheme, host, port, target = _parse(current, where)
        addresses = check_host(host, port, allow_private, where=where)
        connection = _PinnedConnection(addresses, port, host, scheme == "https", deadline)
        try:
            connection.request("GET", target, headers={
                "Host": _host_header(scheme, host, port), "User-Agent": f"segkit/{__version__}",
                "Accept": "image/*, video/*;q=0.8, */*;q=0.1", "Accept-Encoding": "identity",
                "Connection": "close"})
            response = connection.getresponse()
            if response.status in REDIRECT_STATUSES:
                location = response.getheader("Location")
                if not location:
                    raise InvalidInputError(f"{where}: redirect ({response.status}) without a Location")
                if redirects == MAX_REDIRECTS:
                    raise InvalidInputError(f"{first}: refused: more than {MAX_REDIRECTS} redirects")
                try:
                    current = urljoin(current, location.strip())
                except ValueError:
                    raise InvalidInputError(f"{where}: refused: redirected to a URL that is not valid") from None
                where = f"{first} (redirected to {url_label(current)})"
                continue
            if not 200 <= response.status < 300:
                raise InvalidInputError(f"{where}: the server answered {response.status} {response.reason}")
            body = _read_body(response, max_bytes, where)
        except TimeoutError:
            raise InvalidInputError(f"{where}: no complete answer within {timeout:g} s") from None
        except ssl.SSLCertVerificationError as exc:
            raise InvalidInputError(f"{where}: the TLS certificate check failed ({exc.verify_message})") from None
        except ssl.SSLError as exc:
            raise InvalidInputError(f"{where}: TLS failed ({exc.reason or exc})") from None
        except http.client.HTTPException as exc:
            raise InvalidInputError(f"{where}: the server's answer was cut off or not HTTP "
                                    f"({type(exc).__name__})") from None
        except OSError as exc:
            raise InvalidInputError(f"{where}: the connection failed ({exc.strerror or exc})") from None
        finally:
            connection.release()
        kind = sniff_kind(body)
        if kind not in accept:
            sent = response.getheader("Content-Type") or "no Content-Type"
            what = "an empty body" if not body else f"{kind or 'unrecognised content'} ({sent})"
            raise InvalidInputError(f"{where}: expected {' or '.join(accept)}, the server sent {what}")
        return body
    raise AssertionError("unreachable")
