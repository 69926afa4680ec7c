"""Throttling of failed client authentication at ``/token``, ``/introspect`` and
``/revoke`` (SECURITY.md, "Abuse by strangers").

What counts as a failure: an ``invalid_client`` answer, and an ``invalid_grant``
answer (a wrong code, refresh token or verifier) to a request that carried no client
credential, i.e. of a public client, whose ``client_id`` anyone may send. A failed
grant of a confidential client that did authenticate is not counted: guessing
needs its secret first (which is throttled), and counting it would let anyone who
makes a merchant's server redeem bogus codes (by loading its callback page) throttle
that merchant.

Two counters, fixed windows of ``IDP_TOKEN_FAILURE_WINDOW_SECONDS`` aligned to the
clock, in the ephemeral store (``incr``):

* per (claimed client id, client IP): ``IDP_TOKEN_FAILURES_PER_CLIENT``;
* per client IP, every client id together: ``IDP_TOKEN_FAILURES_PER_IP``.

There is deliberately no per-client counter across addresses: "nothing an anonymous
requester does can lock a person out" (SECURITY.md). A stranger sending wrong secrets
for a merchant's client id from elsewhere fills only counters keyed on the stranger's
own address, and the merchant's servers keep getting tokens. The key is the
client's network (:mod:`idp.web.client_network`: the address, or an IPv6 address's /64,
as for every per-IP limit).

Once a counter is at its limit the caller gets 429 with ``Retry-After`` (the rest of
the window) and an RFC 6749 JSON error, before any credential is checked, so a
throttled caller learns nothing about its guesses.

Cost: a request needs its IP's counter before authentication. The process keeps what
it read or counted for an IP for at most 2 s (:class:`~idp.process_cache.ProcessCache`,
per app), so a busy merchant's server costs one store read per IP and process every
2 s, not one per request (the store read was 15-20 % of a ``client_credentials``
grant). Failures counted by this process update its copy at once; those counted by
other processes or nodes count here within 2 s, so a caller spreading failures over
many nodes can pass a limit by at most 2 s of its own traffic before every node
refuses it. The (client, IP) counter is read only when the IP's count has reached the
per-client limit (both count the same failures in the same aligned window, so the
pair's count cannot be higher). A success writes nothing; a failure adds one to both
counters. A store that is down raises :class:`~idp.ephemeral.EphemeralUnavailable`
(503) whenever the count has to be read: no limit is skipped.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from flask import Response, request

from idp.errors import error_response
from idp.oidc.client_auth import MAX_ASSERTION_BYTES, basic_credentials, methods_used
from idp.process_cache import ProcessCache
from idp.services import ephemeral, hasher, settings
from idp.web import client_network, json_limits

log = logging.getLogger(__name__)

PURPOSE = "oauth-throttle"
MAX_CLIENT_ID_CHARS = 128
RECENT: ProcessCache[int] = ProcessCache("oauth-throttle", watched=(), max_entries=10_000)
"""Each IP's failure count in the current window, as last read or counted here."""


def guarded(view: Callable[[], Response]) -> Response:
    """``view()``'s answer, or 429 when the caller is throttled; a failure it answers
    is counted."""
    limits = settings()
    size = limits.token_failure_window_seconds
    now = time.time()
    window = int(now // size)
    left = size - (now % size)
    ip = client_network.current()
    store = ephemeral()
    ip_key = f"oauth-fail-ip:{window}:{hasher().hash(ip, PURPOSE)}"
    ip_failures = RECENT.get_or_load(ip_key, lambda: int(store.get(ip_key) or 0)) or 0
    if ip_failures >= limits.token_failures_per_ip:
        return _too_many(left, "address", ip)
    if (
        ip_failures >= limits.token_failures_per_client
        and int(store.get(_client_key(window, ip)) or 0) >= limits.token_failures_per_client
    ):
        return _too_many(left, "client", ip)
    resp = view()
    if _is_counted_failure(resp):
        ttl = math.ceil(left) + 1
        generation = RECENT.generation()
        RECENT.store(ip_key, store.incr(ip_key, ttl), generation)
        store.incr(_client_key(window, ip), ttl)
    return resp


def _client_key(window: int, ip: str) -> str:
    pair = claimed_client_id() + "\x00" + ip
    return f"oauth-fail-client:{window}:{hasher().hash(pair, PURPOSE)}"


def _is_counted_failure(resp: Response) -> bool:
    """Whether ``resp`` counts against the caller (see the module). A request a
    public client pushed to ``/par`` (RFC 9126) counts too, although it succeeded:
    anyone who knows such a client's id may push, and each push holds up to the
    body's size in the ephemeral store for a minute, so pushes from one network are
    bounded like failures."""
    if resp.status_code == 201 and request.path.endswith("/par"):
        return not methods_used(request.headers, request.form)
    if resp.status_code not in (400, 401):
        return False
    body = resp.get_json(silent=True)
    error = body.get("error") if isinstance(body, dict) else None
    if error == "invalid_client":
        return True
    return error == "invalid_grant" and not methods_used(request.headers, request.form)


def claimed_client_id() -> str:
    """The client id the request names (HTTP Basic, the ``client_id`` field, or the
    unverified ``sub`` of a client assertion), or "" - only a throttling key."""
    basic_id, _ = basic_credentials(request.headers)
    form = request.form
    named = basic_id or form.get("client_id") or _assertion_subject(form.get("client_assertion"))
    return (named or "")[:MAX_CLIENT_ID_CHARS]


def _assertion_subject(assertion: str | None) -> str | None:
    if not assertion or len(assertion) > MAX_ASSERTION_BYTES or assertion.count(".") != 2:
        return None
    payload = assertion.split(".")[1]
    try:
        claims: Any = json_limits.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
    except (binascii.Error, ValueError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else None


def _too_many(left: float, counter: str, ip: str) -> Response:
    log.warning("token endpoint throttled (%s counter) ip=%s path=%s", counter, ip, request.path)
    resp = error_response(
        429,
        "temporarily_unavailable",
        "Too many failed attempts from this address; retry later.",
    )
    resp.headers["Retry-After"] = str(max(1, math.ceil(left)))
    return resp
