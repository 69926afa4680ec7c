"""``Idempotency-Key`` for the administration API's writes (the IETF HTTPAPI
idempotency-key header draft).

A write (POST, PUT, PATCH, DELETE) sent with ``Idempotency-Key: <1-255 visible
ASCII characters>`` is carried out at most once per caller and key within
:data:`TTL` seconds: a repeat with the same method, path, query and body gets the
first answer again (with ``Idempotent-Replayed: true``); a repeat with a different
request is refused (422 ``idempotency_key_reused``); a repeat while the first is
still running gets 409 ``request_in_progress``. Answers of 5xx are not kept, so the
request can be retried. Keys live in the shared ephemeral store, so every node
sees them.

Guarantee and its limit: the answer is stored right after the write's transaction
committed. A node that dies between the two leaves the key "running" until
:data:`LOCK_TTL` (five minutes, longer than a bulk action over a
hundred thousand accesses) passes; the retry after that runs the write again, which the
services make harmless where it matters (adding an existing contact is a 409).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from flask import Response, g, request

from idp.api.problems import Problem
from idp.api.problems import response as problem_response
from idp.rights import Actor
from idp.services import ephemeral

HEADER = "Idempotency-Key"
TTL = 24 * 3600
LOCK_TTL = 300  # longer than the longest request: a bulk action over 10^5 accesses
KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SECRET_ANSWER = "unitgate_idempotency_secret_answer"


def secret_answer() -> None:
    """Mark this request's answer as showing a secret (a webhook's signing secret):
    it is not kept for replay, and a repeat with the same key gets 409
    ``secret_not_replayed`` instead of the secret again."""
    g.setdefault(_SECRET_ANSWER, True)


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.query_string.decode("latin-1")):
        digest.update(part.encode() + b"\0")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _store_key(actor: Actor, key: str) -> str:
    who = hashlib.sha256(actor.audit_name().encode()).hexdigest()[:32]
    return f"idem:{who}:{hashlib.sha256(key.encode()).hexdigest()}"


def run(actor: Actor, handler: Callable[[], Response]) -> Response:
    """``handler()``'s response, at most once per (caller, key) as the module says."""
    key = request.headers.get(HEADER)
    if key is None or request.method not in WRITE_METHODS:
        return handler()
    if not KEY_RE.match(key):
        raise Problem(
            400, "invalid_idempotency_key", "Idempotency-Key: 1 to 255 visible ASCII characters."
        )
    store, skey, fingerprint = ephemeral(), _store_key(actor, key), _fingerprint()
    if not store.add(skey, {"state": "running", "fp": fingerprint}, LOCK_TTL):
        seen: dict[str, Any] | None = store.get(skey)
        if seen is None:  # expired between the two calls: treat as running
            raise Problem(409, "request_in_progress", "A request with this key is running.")
        if seen.get("fp") != fingerprint:
            raise Problem(
                422, "idempotency_key_reused", "This Idempotency-Key was used for another request."
            )
        if seen.get("state") != "done":
            raise Problem(409, "request_in_progress", "A request with this key is running.")
        replay = Response(seen["body"], status=seen["status"], mimetype=seen["mimetype"])
        replay.headers["Idempotent-Replayed"] = "true"
        return replay
    try:
        response = handler()
    except BaseException:
        store.delete(skey)
        raise
    if response.status_code >= 500:
        store.delete(skey)
        return response
    if g.get(_SECRET_ANSWER):
        # An answer that shows a secret once is never stored: a repeat is refused.
        refused = problem_response(Problem(
            409, "secret_not_replayed",
            "This request was carried out and its answer showed a secret, which is not "
            "shown again. Rotate the secret to get a new one.",
        ))
        response_to_keep = refused
    else:
        response_to_keep = response
    store.put(
        skey,
        {
            "state": "done",
            "fp": fingerprint,
            "status": response_to_keep.status_code,
            "mimetype": response_to_keep.mimetype,
            "body": response_to_keep.get_data(as_text=True),
        },
        TTL,
    )
    return response
