"""The SSO round trip: send the browser upstream, validate what comes back, finish
the pending interaction.

* :func:`start_sso` stores the connector's pending state (nonce, PKCE verifier,
  SAML request id) under a one-time random ``state`` for :data:`PENDING_TTL`
  seconds and redirects (303) to the upstream.
* The OIDC callback and the SAML ACS *take* that state atomically: an unknown,
  replayed or other connector's ``state`` is refused. The interaction itself is
  bound to the browser by its cookie (``idp.interaction.pending``), so a callback URL
  replayed in another browser finds nothing.
* The SAML ACS is a cross-site POST that carries no ``SameSite=Lax`` cookie: it
  validates the response, parks the identity under a one-time token and 303s to a
  same-site GET (:func:`resume`) where the browser's cookies prove it is the same
  browser that started.
* A *connection test* (:func:`start_test`, the console's "test connection" button)
  runs the same round trip through the same callback URL, but its state is marked
  as a test: the callback validates the upstream's answer exactly as for a sign-in
  and then only parks the outcome (the claims received, or why it was refused)
  for the administrator who started it (:func:`test_result`). It never resolves,
  creates, links or signs in an account and never touches a session or an
  interaction.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from flask import Response, request, url_for

from connectors import ConfigurationError, ConnectorError, UpstreamIdentity
from idp.crypto.primitives import MasterKeyError, random_token
from idp.errors import error_response
from idp.factors import fresh_code
from idp.federation import accounts, linking
from idp.federation.registry import acs_url, callback_url, connector_for
from idp.interaction import pending as interaction
from idp.services import ephemeral
from idp.store import connectors_repo
from idp.store.models import Account, Connector
from idp.web.redirects import redirect

log = logging.getLogger("idp.federation")

PENDING_TTL = 600
RESUME_TTL = 120
TEST_RESULT_TTL = 600
MAX_TEST_TOKEN = 64
MAX_STATE_LENGTH = 128
REFUSALS = {
    "unverified_email": "Your company's sign-in did not confirm your e-mail address.",
    "email_domain_not_verified": "Your e-mail domain is not verified for this company.",
    "hosted_domain_not_verified": "This Google Workspace domain is not verified for this "
    "company.",
    "conflict": "Please try signing in again.",
    "account_cannot_sign_in": "This account cannot sign in.",
}


def _state_key(state: str) -> str:
    return f"fed:state:{state}"


def start_sso(ix: interaction.Interaction, connector: Connector) -> Response:
    """Send the browser to ``connector``'s upstream to authenticate for ``ix`` (303)."""
    if not connector.enabled:
        return error_response(403, "access_denied", "This sign-in method is disabled.")
    try:
        conn = connector_for(connector)
        state = random_token(32)
        redirect_uri = acs_url(connector.id) if connector.kind == "saml" else callback_url(
            connector.id)
        # A new upstream sign-in when the merchant forced a login (prompt=login,
        # ForceAuthn, or the fresh_code_every_sign_in policy of the session's account)
        # or the connector's unit has the policy (idp.factors.fresh_code).
        force = "login" in ix.prompt or fresh_code.connector_requires(connector.id)
        req = conn.start(redirect_uri, state, login_hint=ix.email or ix.login_hint, force=force)
    except (ConnectorError, ConfigurationError, MasterKeyError) as exc:
        log.warning("connector %s cannot start: %s", connector.id, exc)
        return error_response(502, "upstream_unavailable",
                              "Your company's sign-in service cannot be reached right now.")
    ephemeral().put(
        _state_key(state),
        {"ix": ix.id, "connector": connector.id, "pending": req.pending},
        PENDING_TTL,
    )
    return redirect(req.url, code=303)


def _take_pending(connector_id: str, state: str | None) -> dict[str, Any] | None:
    if not state or len(state) > MAX_STATE_LENGTH:
        return None
    data: dict[str, Any] | None = ephemeral().take(_state_key(state))
    if data is None or data.get("connector") != connector_id:
        return None
    return data


def _first_use(key: str, ttl: int) -> bool:
    return ephemeral().add(f"fed:seen:{key}", 1, max(1, ttl))


def _refuse(exc: ConnectorError, connector_id: str) -> Response:
    log.warning("upstream sign-in refused connector=%s code=%s: %s", connector_id, exc.code, exc)
    if exc.code in ("upstream_unreachable", "upstream_error", "response_too_large",
                    "userinfo_error"):
        return error_response(502, "upstream_unavailable",
                              "Your company's sign-in service did not answer properly.")
    if exc.code == "userinfo_subject_mismatch":
        return error_response(400, "access_denied",
                              "Your company's sign-in described a different person than the "
                              "one who signed in, so the sign-in was refused "
                              "(userinfo_subject_mismatch).")
    return error_response(400, "access_denied",
                          f"The sign-in from your company's login was refused ({exc.code}).")


def _validate(connector_id: str, params: dict[str, str], state: str | None
              ) -> tuple[dict[str, Any], Connector, UpstreamIdentity] | Response:
    pending = _take_pending(connector_id, state)
    row = connectors_repo.get(connector_id)
    if pending is None or row is None:
        return error_response(400, "invalid_request",
                              "This sign-in link is unknown, expired or was already used.")
    if pending.get("test") is not None:
        return _finish_test(pending, row, params)
    if not row.enabled:
        return error_response(403, "access_denied", "This sign-in method is disabled.")
    redirect_uri = acs_url(row.id) if row.kind == "saml" else callback_url(row.id)
    try:
        identity = connector_for(row).callback(params, pending["pending"], redirect_uri,
                                               _first_use)
    except ConnectorError as exc:
        return _refuse(exc, row.id)
    except (ConfigurationError, MasterKeyError) as exc:
        log.error("connector %s misconfigured: %s", row.id, exc)
        return error_response(502, "upstream_unavailable", "This sign-in method is misconfigured.")
    return pending, row, identity


def oidc_callback(connector_id: str) -> Response:
    """The OIDC redirect URI (``/federation/<id>/callback``)."""
    params = {k: v for k, v in request.args.items() if isinstance(v, str)}
    result = _validate(connector_id, params, params.get("state"))
    if isinstance(result, Response):
        return result
    pending, row, identity = result
    ix = interaction.load(pending["ix"])
    if ix is None:
        return error_response(400, "invalid_request",
                              "Your sign-in expired or started in another browser.")
    return complete(ix, row, identity)


def saml_acs(connector_id: str) -> Response:
    """The SAML ACS (``/federation/<id>/acs``, HTTP-POST binding)."""
    params = {k: v for k, v in request.form.items() if isinstance(v, str)}
    result = _validate(connector_id, params, params.get("RelayState"))
    if isinstance(result, Response):
        return result
    pending, row, identity = result
    token = random_token(32)
    ephemeral().put(
        f"fed:done:{token}",
        {"ix": pending["ix"], "connector": row.id, "identity": asdict(identity)},
        RESUME_TTL,
    )
    return redirect(url_for("federation.resume", connector_id=row.id, token=token), code=303)


def resume(connector_id: str, token: str) -> Response:
    """Same-site continuation of a SAML sign-in (one use, same browser)."""
    data = ephemeral().take(f"fed:done:{token}") if 0 < len(token) <= 64 else None
    row = connectors_repo.get(connector_id)
    if data is None or row is None or data.get("connector") != connector_id:
        return error_response(400, "invalid_request", "This sign-in is unknown or expired.")
    ix = interaction.load(data["ix"])
    if ix is None:
        return error_response(400, "invalid_request",
                              "Your sign-in expired or started in another browser.")
    return complete(ix, row, UpstreamIdentity(**data["identity"]))


def complete(ix: interaction.Interaction, row: Connector, identity: UpstreamIdentity
             ) -> Response:
    """Resolve the account (sign in, create, or ask for linking proof) and finish."""
    outcome = accounts.resolve(row, identity)
    if outcome.link_to is not None:
        if not outcome.link_to.can_sign_in:
            return error_response(403, "access_denied", "This account cannot sign in.")
        return linking.begin(ix, row, identity, outcome.link_to)
    if outcome.account is None:
        reason = outcome.refused or "conflict"
        log.warning("federated sign-in refused connector=%s reason=%s", row.id, reason)
        return error_response(403, "access_denied", REFUSALS.get(reason, reason))
    return finish(ix, outcome.account, identity)


def finish(ix: interaction.Interaction, account: Account, identity: UpstreamIdentity
           ) -> Response:
    """Hand the authenticated account to the login flow (session, interaction, 303)."""
    if not account.can_sign_in:
        return error_response(403, "access_denied", "This account cannot sign in.")
    from idp.login.flow import finish_authentication

    amr = list(dict.fromkeys(["fed", *(a[:20] for a in identity.amr[:5])]))
    return finish_authentication(ix, account, amr)


# --- connection tests (the console's "test connection" button) -----------------------


def _redirect_uri(row: Connector) -> str:
    return acs_url(row.id) if row.kind == "saml" else callback_url(row.id)


def start_test(row: Connector, account_id: str, return_to: str) -> str:
    """The upstream URL that starts a connection test of ``row`` for the administrator
    ``account_id`` (the caller authorised them); after the round trip the browser is
    sent (303) to ``return_to`` (a path of this site) with ``?result=<token>``.

    The upstream is asked for a new sign-in (``force``), so the administrator really
    passes its sign-in page. Works for a disabled connector too (test before
    enabling). Raises :class:`ConnectorError`, :class:`ConfigurationError` or
    :class:`MasterKeyError` when the request cannot even be built (discovery
    unreachable, broken settings)."""
    if not return_to.startswith("/") or return_to.startswith("//"):
        raise ValueError("return_to must be a path of this site")
    state = random_token(32)
    req = connector_for(row).start(_redirect_uri(row), state, force=True)
    ephemeral().put(
        _state_key(state),
        {"ix": None, "connector": row.id, "pending": req.pending,
         "test": {"account": account_id, "return_to": return_to}},
        PENDING_TTL,
    )
    return req.url


def _json_safe(value: Any, depth: int = 0) -> Any:
    """Claims as plain JSON data (bounded), for parking and showing."""
    if depth > 5:
        return "..."
    if isinstance(value, dict):
        return {str(k)[:100]: _json_safe(v, depth + 1) for k, v in list(value.items())[:100]}
    if isinstance(value, list | tuple):
        return [_json_safe(v, depth + 1) for v in list(value)[:100]]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:2000]


def _finish_test(pending: dict[str, Any], row: Connector, params: dict[str, str]
                 ) -> Response:
    """Validate the upstream's answer to a connection test and park the outcome for
    the administrator who started it; nothing else happens."""
    test = pending["test"]
    outcome: dict[str, Any]
    try:
        identity = connector_for(row).callback(params, pending["pending"], _redirect_uri(row),
                                               _first_use)
    except ConnectorError as exc:
        log.info("connection test of connector %s refused: %s", row.id, exc.code)
        outcome = {"ok": False, "code": exc.code, "detail": str(exc)[:500]}
    except (ConfigurationError, MasterKeyError) as exc:
        log.warning("connection test of connector %s: misconfigured: %s", row.id, exc)
        outcome = {"ok": False, "code": "misconfigured", "detail": str(exc)[:500]}
    else:
        outcome = {"ok": True, "issuer": identity.issuer, "subject": identity.subject,
                   "email": identity.email, "email_verified": identity.email_verified,
                   "hosted_domain": identity.hosted_domain, "amr": list(identity.amr),
                   "claims": _json_safe(identity.claims)}
    token = random_token(32)
    ephemeral().put(
        f"fed:test:{token}",
        {"account": test["account"], "connector": row.id, "outcome": outcome},
        TEST_RESULT_TTL,
    )
    return redirect(f"{test['return_to']}?result={token}", code=303)


def test_result(token: str, connector_id: str, account_id: str) -> dict[str, Any] | None:
    """The outcome of a connection test (``ok`` and the identity's claims, or ``code``
    and ``detail``), only for the administrator ``account_id`` who started it and
    only for ``connector_id``; None otherwise or once it expired."""
    if not 0 < len(token) <= MAX_TEST_TOKEN:
        return None
    data = ephemeral().get(f"fed:test:{token}")
    if not isinstance(data, dict) or data.get("account") != account_id \
            or data.get("connector") != connector_id:
        return None
    outcome = data.get("outcome")
    return outcome if isinstance(outcome, dict) else None
