"""The few back-channel HTTP calls connectors make (discovery, JWKS, token, UserInfo,
SAML metadata), with the guards every such call needs.

* Only ``https://``, except plain ``http://`` to a loopback address (development
  and tests): an upstream's keys and tokens never travel in the clear.
* A timeout on every call and a cap on the response size, so a slow or hostile
  upstream cannot hold a worker or fill its memory.
* No redirects are followed for POSTs; every failure is a :class:`ConnectorError`.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
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


def request(
    url: str,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """GET (or POST a form when ``data`` is given) and return (status, body).

    Error statuses are returned, not raised: a token endpoint answers errors as a
    400 with a JSON body the caller wants to read.
    """
    status, _, body = request_typed(url, data, headers)
    return status, body


def request_typed(
    url: str,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, bytes]:
    """Like :func:`request`, plus the response's media type (``Content-Type`` without
    parameters, lower case; ``""`` when absent)."""
    try:
        check_url(url, "upstream URL")
    except ConfigurationError as exc:
        raise ConnectorError("insecure_url", str(exc)) from exc
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")  # noqa: S310
    req.add_header("User-Agent", USER_AGENT)
    req.add_header("Accept", "application/json, application/xml;q=0.9, */*;q=0.1")
    if body is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with _opener.open(req, timeout=TIMEOUT_SECONDS) as resp:
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


def get_json(url: str) -> dict[str, Any]:
    """GET ``url`` and return its JSON object; anything else is a ConnectorError."""
    status, body = request(url)
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
