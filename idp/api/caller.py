"""Who calls the administration API: the one place that turns a request into an
:class:`idp.rights.Actor`.

* ``Authorization: Bearer <access token>``: a token Unitgate issued by the
  client-credentials grant to an *admin client* (:mod:`idp.rights.admin_clients`),
  with the scope ``admin``, unexpired and unrevoked. The actor is the client. A
  token of any other client, or without the scope, is refused (RFC 6750 §3.1:
  ``invalid_token`` with 401, ``insufficient_scope`` with 403).
* Otherwise the browser's own Unitgate session (the console): the actor is the
  signed-in person, as staff when they are one of the operator's staff members,
  else as an account. A write by session must carry the session's CSRF token in the
  ``X-CSRF-Token`` header, so no other site can make the browser write. A session
  that acts as someone else (impersonation) is refused (403 ``impersonating``).

What the actor may then do is decided per call by :func:`idp.rights.require`.
"""

from __future__ import annotations

from flask import request
from flask_wtf.csrf import validate_csrf
from wtforms.validators import ValidationError

from idp.api.problems import Problem
from idp.interaction.signed_in import live_login
from idp.oidc.liveness import access_token_active
from idp.oidc.verification import MAX_TOKEN_BYTES, verify_access_token
from idp.rights import Actor, person
from idp.rights.admin_clients import SCOPE
from idp.store import rights_repo

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REALM = 'Bearer realm="unitgate-admin"'


def _bearer_problem(status: int, error: str, detail: str) -> Problem:
    challenge = f'{REALM}, error="{error}", scope="{SCOPE}"'
    return Problem(status, error, detail, headers={"WWW-Authenticate": challenge})


def _from_bearer(value: str) -> Actor:
    if not value or len(value) > MAX_TOKEN_BYTES:
        raise _bearer_problem(401, "invalid_token", "The access token is malformed.")
    token = verify_access_token(value)
    live = access_token_active(token) if token is not None else None
    if token is None or live is None:
        raise _bearer_problem(401, "invalid_token", "The access token is invalid or expired.")
    if token.grant_id is not None or rights_repo.admin_client(token.client_id) is None:
        raise _bearer_problem(
            401, "invalid_token", "Only tokens of administration API clients are accepted."
        )
    if SCOPE not in token.scopes:
        raise _bearer_problem(403, "insufficient_scope", "The token lacks the scope 'admin'.")
    return Actor.client(token.client_id)


def _from_session() -> Actor:
    login = live_login()
    if login is None:
        raise Problem(
            401,
            "unauthenticated",
            "Send an access token with the scope 'admin', or sign in.",
            headers={"WWW-Authenticate": f'{REALM}, scope="{SCOPE}"'},
        )
    row, account = login
    if row.impersonation_id is not None:
        # Acting as someone is for seeing what they see, not for administering as
        # them (their admin rights would be used, and audited, under their name).
        raise Problem(
            403, "impersonating", "End the impersonation to use the administration API."
        )
    if request.method not in SAFE_METHODS:
        try:
            validate_csrf(request.headers.get("X-CSRF-Token", ""))
        except ValidationError as exc:
            raise Problem(
                403, "csrf_failed", "Writes by session need the X-CSRF-Token header."
            ) from exc
    return person(account.id)


def authenticate() -> Actor:
    """The actor of this request, or a 401/403 :class:`Problem`."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            raise _bearer_problem(401, "invalid_request", "Use the Bearer scheme (RFC 6750).")
        return _from_bearer(value.strip())
    return _from_session()
