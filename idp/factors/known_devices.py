"""Browsers known for an e-mail address: the requester key strangers cannot borrow.

A browser that proved an address's mailbox (redeemed an e-mail code sent to it) is
*known for that address*: it carries the cookie ``ug_device`` (256 random bits;
HttpOnly, ``Secure`` unless ``IDP_SECURE_COOKIES=false``, SameSite=Lax, like the
session cookie) and the ephemeral store keeps
``known-device:<HMAC(token, address)>`` for ``IDP_KNOWN_DEVICE_DAYS``. Neither the
token nor the address is stored in clear, and one browser may be known for several
addresses (one record each, one cookie).

:mod:`idp.factors.email_otp` keys its throttles and its soft lock on the *requester*: the
known browser when there is one, else the client's network
(:func:`idp.web.client_network.network_of`).
A stranger has neither the person's cookie nor their network, so nothing a
stranger sends is counted against them.

A known browser that submits :data:`MAX_FAILURES` wrong codes for an address is
known no more (:func:`note_failure`), so a stolen or shared browser cannot guess past
the soft lock for the cookie's lifetime.

Cost: :func:`known_id` is one ``get`` when the browser has a cookie and none
otherwise; :func:`remember` one ``put`` and one ``delete``; a wrong code from a
browser with a cookie one ``get`` (and an ``incr`` when known).
"""

from __future__ import annotations

from flask import Response, g, has_request_context, request

from idp.crypto.primitives import random_token
from idp.services import ephemeral, hasher, settings
from idp.web import cookies

COOKIE = "ug_device"
MAX_COOKIE_DAYS = 400  # browsers cap cookie lifetimes at 400 days (RFC 6265bis)
_MAX_TOKEN_LENGTH = 100


def lifetime_seconds() -> int:
    """How long a browser stays known after its last proof: ``IDP_KNOWN_DEVICE_DAYS``
    (at least 1, at most :data:`MAX_COOKIE_DAYS`) in seconds."""
    return max(1, min(settings().known_device_days, MAX_COOKIE_DAYS)) * 86400


def _token() -> str | None:
    if not has_request_context():
        return None
    token = request.cookies.get(COOKIE)
    return token if token and len(token) <= _MAX_TOKEN_LENGTH else None


def _key(token: str, email: str) -> str:
    return f"known-device:{hasher().hash(f'{token}:{email}', 'known-device')}"


def known_id(email: str) -> str | None:
    """An opaque id of this request's browser when it is known for ``email``
    (a keyed hash, stable across requests), else None."""
    token = _token()
    if token is None:
        return None
    key = _key(token, email)
    return key if ephemeral().get(key) is not None else None


MAX_FAILURES = 10
"""Wrong codes a known browser may submit for an address before it is known no
more: a stolen or shared browser cannot guess past the soft lock for months."""


def note_failure(email: str) -> None:
    """Count a wrong code from this browser for ``email`` when it is known for it; at
    :data:`MAX_FAILURES` the browser is forgotten for the address (its next codes
    follow the rules for unknown requesters: the soft lock applies to it)."""
    token = _token()
    if token is None:
        return
    key = _key(token, email)
    store = ephemeral()
    if store.get(key) is None:
        return
    if store.incr(f"{key}:failures", lifetime_seconds()) >= MAX_FAILURES:
        store.delete(key)
        store.delete(f"{key}:failures")


def remember(email: str) -> None:
    """Record that this request's browser just proved the mailbox of ``email``: keep
    (or renew) its record and (re)set the cookie in the response. Outside a request
    nothing happens."""
    if not has_request_context():
        return
    token = _token() or random_token(32)
    ttl = lifetime_seconds()
    store = ephemeral()
    store.put(_key(token, email), 1, ttl)
    store.delete(f"{_key(token, email)}:failures")  # the mailbox was just proven
    g.device_cookie = token


def set_cookie(response: Response) -> Response:
    """After-request hook: write the ``ug_device`` cookie when :func:`remember` ran."""
    token = g.pop("device_cookie", None)
    if token:
        cookies.set_private(response, COOKIE, token, lifetime_seconds())
    return response
