"""Where a webhook may go, and the one HTTP request that goes there.

SSRF defence: the URL must be ``https://`` (``http://`` only with
``IDP_WEBHOOK_ALLOW_PRIVATE``), carry no user info, and its host must resolve only to
public addresses: private, loopback, link-local, multicast, reserved, unspecified and
shared (CGNAT) addresses, IPv4 and IPv6 alike (site-local fec0::/10 too), an
IPv4-mapped or 6to4 IPv6 address judged by its IPv4 address, are refused unless the
operator allows them. The check runs when an endpoint is created or changed *and*
before each delivery, and the request connects only to the addresses that were
checked (the ``Host`` header and TLS SNI keep the name), so a DNS answer that
changes between check and connect (rebinding) cannot redirect it.

Bounded cost: one connect and read timeout per attempt, at most
:data:`MAX_RESPONSE_BYTES` of the answer read, redirects never followed (a 3xx is a
failed attempt).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_RESPONSE_BYTES = 4096
MAX_URL = 2000


class TargetRefused(ValueError):
    """A URL or address that webhooks may not reach; ``code`` says why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str


def parse(url: str, allow_private: bool) -> Target:
    """The target of ``url``, or :class:`TargetRefused`."""
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise TargetRefused("invalid_url", "The URL is not valid.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused("invalid_url", "The URL is not valid.") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TargetRefused("invalid_url", "The URL must be an https:// URL with a host.")
    if parts.scheme == "http" and not allow_private:
        raise TargetRefused("https_required", "Webhook URLs must use https://.")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("invalid_url", "The URL must not carry a user or password.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, parts.hostname, port or default, path)


def is_public(address: str) -> bool:
    """Whether ``address`` is a public unicast address (see the module docstring)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:  # fec0::/10: private by definition, not in is_private
            return False
        # an IPv4-mapped address, and a 6to4 one (2002::/16, delivered by a 6to4
        # router to the IPv4 address it embeds), lead where that IPv4 address does
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            ip = embedded
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified or not ip.is_global
    )


def resolve(target: Target, allow_private: bool) -> list[str]:
    """The addresses to connect to, in the resolver's order: every address the host
    resolves to must be allowed (else :class:`TargetRefused`)."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused("unresolvable", f"The host {target.host} does not resolve.") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise TargetRefused("unresolvable", f"The host {target.host} does not resolve.")
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise TargetRefused(
                    "private_address",
                    f"The host {target.host} resolves to a non-public address.",
                )
    return list(dict.fromkeys(addresses))[:4]  # a bounded number of connect attempts


def check(url: str, allow_private: bool) -> Target:
    """:func:`parse` and :func:`resolve` (for creating or changing an endpoint)."""
    target = parse(url, allow_private)
    resolve(target, allow_private)
    return target


def _connect(addresses: list[str], port: int, timeout: float | None) -> socket.socket:
    """A connection to the first of the checked ``addresses`` that answers."""
    error: OSError = OSError("no address")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
    raise error


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses

    def connect(self) -> None:
        self.sock = _connect(self._addresses, self.port, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._addresses = addresses

    def connect(self) -> None:
        sock = _connect(self._addresses, self.port, self.timeout)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            sock, server_hostname=self.host
        )


@dataclass(frozen=True)
class Answer:
    status: int | None
    duration_ms: int
    error: str | None
    body: str | None


def post(url: str, headers: dict[str, str], body: str, timeout: float,
         allow_private: bool) -> Answer:
    """POST ``body`` to ``url`` (checked again now) and return what happened; never
    raises for network trouble."""
    return _exchange("POST", url, headers, body.encode(), timeout, allow_private,
                     MAX_RESPONSE_BYTES, 1000)


def get(url: str, headers: dict[str, str], timeout: float, allow_private: bool,
        max_bytes: int) -> Answer:
    """GET ``url`` under the same rules as :func:`post` (checked now, connected only
    to the checked addresses, no redirects, the whole exchange within ``timeout``);
    an answer longer than ``max_bytes`` is an error, not cut short."""
    return _exchange("GET", url, headers, None, timeout, allow_private, max_bytes, None)


def _exchange(method: str, url: str, headers: dict[str, str], body: bytes | None,
              timeout: float, allow_private: bool, max_bytes: int,
              keep: int | None) -> Answer:
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = parse(url, allow_private)
        addresses = resolve(target, allow_private)
    except TargetRefused as exc:
        return Answer(None, took(), f"refused: {exc.detail}", None)
    cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    conn = cls(target.host, target.port, addresses, timeout)
    # The socket timeout bounds each read; this timer bounds the whole exchange (a
    # receiver that drips its answer a byte at a time is cut off).
    cut = threading.Event()
    deadline = threading.Timer(timeout, _cut, (conn, cut))
    deadline.daemon = True
    try:
        conn.connect()
        deadline.start()
        conn.request(method, target.path, body=body,
                     headers={**headers, "user-agent": "Unitgate-Webhooks/1"})
        resp = conn.getresponse()
        raw = resp.read(max_bytes + (0 if keep is not None else 1))
        if cut.is_set():  # what came was cut short: no answer
            return Answer(None, took(), f"timed out after {timeout:g} s", None)
        if keep is None and len(raw) > max_bytes:
            return Answer(resp.status, took(), f"answer larger than {max_bytes} bytes", None)
        text = raw.decode("utf-8", "replace")
        error = None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        return Answer(resp.status, took(), error, text[:keep] if keep is not None else text)
    except (OSError, http.client.HTTPException) as exc:
        if cut.is_set():
            return Answer(None, took(), f"timed out after {timeout:g} s", None)
        return Answer(None, took(), f"{type(exc).__name__}: {exc}"[:500], None)
    finally:
        deadline.cancel()
        conn.close()


def _cut(conn: http.client.HTTPConnection, cut: threading.Event) -> None:
    """End an exchange that ran out of time (its reads end at once)."""
    cut.set()
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
