"""The few back-channel HTTP calls connectors make (discovery, JWKS, token, UserInfo,
SAML metadata), with the guards every such call needs.

* Only ``https://``, except plain ``http://`` to a loopback address (development
  and tests): an upstream's keys and tokens never travel in the clear.
* A timeout on every call and a cap on the response size, so a slow or hostile
  upstream cannot hold a worker or fill its memory.
* No redirects are followed for POSTs; every failure is a :class:`ConnectorError`.
* With an ``address_check`` (the identity provider passes its public-address rule,
  unless the operator allows private addresses), every address the host resolves to
  must pass it, plain ``http://`` is refused even on loopback, and the connection goes
  to the checked address itself (TLS still verifies the name), so a DNS answer that
  changes between the check and the connect cannot lead elsewhere. Company admins
  configure connectors, so without it they could make the server fetch internal URLs.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from connectors import ConfigurationError, ConnectorError

TIMEOUT_SECONDS = 10
MAX_RESPONSE_BYTES = 512 * 1024
USER_AGENT = "Unitgate-federation/1"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str) -> str:
    """``url`` if it is https (or http on loopback); raises :class:`ConfigurationError`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return url
    raise ConfigurationError(f"{what} must be an https URL (got {url!r})")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)

AddressCheck = Callable[[str], bool]
MAX_ADDRESSES = 4  # connect attempts per request, whatever the DNS answer lists


def _checked_connector(check: AddressCheck) -> Callable[..., socket.socket]:
    """``socket.create_connection`` that connects only to addresses ``check`` allows,
    having resolved the name once (every address must pass)."""

    def connect(address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
                source_address: Any = None, **_: Any) -> socket.socket:
        host, port = address
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise ConnectorError("upstream_unreachable", f"cannot resolve {host}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses or not all(check(a) for a in addresses):
            raise ConnectorError(
                "private_address", f"{host} resolves to an address Unitgate may not reach"
            )
        error: OSError | None = None
        for candidate in addresses[:MAX_ADDRESSES]:
            try:
                return socket.create_connection((candidate, port), timeout, source_address)
            except OSError as exc:
                error = exc
        raise error or OSError(f"cannot connect to {host}")

    return connect


def _pinned_opener(check: AddressCheck) -> urllib.request.OpenerDirector:
    connect = _checked_connector(check)

    class PinnedHTTPS(http.client.HTTPSConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = connect

    class PinnedHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(PinnedHTTPS, req, context=self._context)  # type: ignore[attr-defined]

    return urllib.request.build_opener(_NoRedirect, PinnedHandler)


_pinned: dict[AddressCheck, urllib.request.OpenerDirector] = {}


def _opener_for(check: AddressCheck | None) -> urllib.request.OpenerDirector:
    if check is None:
        return _opener
    opener = _pinned.get(check)
    if opener is None:
        opener = _pinned.setdefault(check, _pinned_opener(check))
    return opener


def request(
    url: str,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    address_check: AddressCheck | None = None,
) -> tuple[int, bytes]:
    """GET (or POST a form when ``data`` is given) and return (status, body).

    Error statuses are returned, not raised: a token endpoint answers errors as a
    400 with a JSON body the caller wants to read.
    """
    status, _, body = request_typed(url, data, headers, address_check)
    return status, body


def request_typed(
    url: str,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    address_check: AddressCheck | None = None,
) -> tuple[int, str, bytes]:
    """Like :func:`request`, plus the response's media type (``Content-Type`` without
    parameters, lower case; ``""`` when absent)."""
    try:
        check_url(url, "upstream URL")
    except ConfigurationError as exc:
        raise ConnectorError("insecure_url", str(exc)) from exc
    if address_check is not None and urllib.parse.urlsplit(url).scheme != "https":
        raise ConnectorError("insecure_url", f"upstream URL must be https (got {url!r})")
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")  # noqa: S310
    req.add_header("User-Agent", USER_AGENT)
    req.add_header("Accept", "application/json, application/xml;q=0.9, */*;q=0.1")
    if body is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with _opener_for(address_check).open(req, timeout=TIMEOUT_SECONDS) as resp:
            return resp.status, _media_type(resp), _read_capped(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, _media_type(exc), _read_capped(exc)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ConnectorError("upstream_unreachable", f"cannot reach {url}: {exc}") from exc


def _media_type(resp: Any) -> str:
    value = resp.headers.get("Content-Type") if resp.headers is not None else None
    return str(value or "").split(";", 1)[0].strip().lower()


def _read_capped(resp: Any) -> bytes:
    body = resp.read(MAX_RESPONSE_BYTES + 1)
    if len(body) > MAX_RESPONSE_BYTES:
        raise ConnectorError("response_too_large", "upstream response exceeds the size cap")
    return bytes(body)


def get_json(url: str, address_check: AddressCheck | None = None) -> dict[str, Any]:
    """GET ``url`` and return its JSON object; anything else is a ConnectorError."""
    status, body = request(url, address_check=address_check)
    if status != 200:
        raise ConnectorError("upstream_error", f"GET {url} answered {status}")
    return parse_json_object(body, url)


def parse_json_object(body: bytes, what: str) -> dict[str, Any]:
    """The JSON object in ``body``, or a ConnectorError naming ``what``."""
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise ConnectorError("upstream_error", f"{what} did not return JSON") from exc
    if not isinstance(value, dict):
        raise ConnectorError("upstream_error", f"{what} did not return a JSON object")
    return value
