"""The authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2) and its resumption.

Order of checks, each with its own answer:

1. Unknown or missing ``client_id``, or a ``redirect_uri`` that is missing or not
   registered for that client: an error page, never a redirect (RFC 6749 §4.1.2.1,
   RFC 9700 §4.1 - no open redirector).
2. Everything else wrong (response type other than ``code``, PKCE, scope, prompt,
   max_age, request objects): an error redirect to the client with ``error``,
   ``state`` and ``iss`` (RFC 9207 §2).
3. A usable session and consent already given: the code is issued at once. A session
   of a member of a unit with ``fresh_code_every_sign_in`` is never usable
   (:mod:`idp.factors.fresh_code`): the request goes on as with ``prompt=login``.
   ``prompt=none`` without them: ``login_required`` / ``consent_required``. A session
   without a second factor is not usable when ``acr_values`` names
   :data:`idp.factors.acr.ACR_MFA` (step-up, :mod:`idp.factors.acr`): the login goes on to the TOTP
   page for the session's account, or ``login_required`` with ``prompt=none``.
4. Otherwise the request becomes an :mod:`idp.interaction.pending`; the login pages finish it
   and send the browser to :func:`resume`, which re-builds the request from the stored
   interaction (never from the browser's query) and issues the code - or answers
   ``access_denied`` when the employee declined consent (``consented`` false).

Every answer to the client is a 303 redirect whose query carries ``iss``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import (
    AccessDeniedError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnsupportedResponseTypeError,
)
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    LoginRequiredError,
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from flask import Blueprint, Response, url_for
from werkzeug.datastructures import MultiDict

from idp.errors import error_response
from idp.factors import acr, fresh_code
from idp.interaction import impersonation, signed_in
from idp.interaction import pending as interaction
from idp.interaction.pending import Interaction
from idp.login.flow import resume_inline
from idp.oidc.models import Principal
from idp.oidc.server import params_request, server, wire_params
from idp.release import claims_request, clients, consent
from idp.release.claims import claims_for_scopes
from idp.release.clients import ClientInfo
from idp.services import settings
from idp.store import claims_repo, grants_repo
from idp.web.redirects import redirect

bp = Blueprint("oidc", __name__)

# Parameters kept for resumption; anything else in the request is ignored.
KEPT_PARAMS = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
    "code_challenge", "code_challenge_method", "prompt", "max_age", "login_hint",
    "ui_locales", "acr_values", "response_mode", "display", "claims_locales", "claims",
    "dpop_jkt",
)  # fmt: skip
SINGLE_PARAMS = (*KEPT_PARAMS, "request", "request_uri")
MAX_PARAM_LENGTH = 2048
MAX_AGE_PATTERN = re.compile(r"^[0-9]{1,9}$")
JKT_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url SHA-256 (RFC 9449 §10)
KNOWN_PROMPTS = ("none", "login", "consent", "select_account")


def _page(description: str) -> Response:
    return error_response(400, "invalid_request", description)


def _to_client(location: str) -> Response:
    """303 to the client with ``iss`` added (RFC 9207 §2)."""
    resp = redirect(add_params_to_uri(location, [("iss", settings().issuer)]), 303)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _error_to_client(error: OAuth2Error, redirect_uri: str, state: str | None) -> Response:
    error.redirect_uri = error.redirect_uri or redirect_uri
    error.redirect_fragment = False
    error.state = state
    _, _, headers = error()
    return _to_client(dict(headers)["Location"])


def front(params: MultiDict[str, str]) -> tuple[ClientInfo, str] | str:
    """The client and the redirect URI, or what is wrong with them."""
    for name in ("client_id", "redirect_uri"):
        if len(params.getlist(name)) > 1:
            return f"The parameter {name} appears more than once."
    client_id = params.get("client_id")
    redirect_uri = params.get("redirect_uri")
    if not client_id:
        return "The request names no client (client_id)."
    info = clients.lookup(client_id)
    if info is None:
        return "The client is not known here."
    if not redirect_uri:
        return "The request names no redirect_uri."
    if not info.redirect_uri_registered(redirect_uri):
        return "The redirect_uri is not registered for this client."
    return info, redirect_uri


def _front_checks(params: MultiDict[str, str]) -> tuple[ClientInfo, str] | Response:
    """The client and the redirect URI, or an error page (never a redirect)."""
    checked = front(params)
    return _page(checked) if isinstance(checked, str) else checked


def _options(params: MultiDict[str, str]) -> tuple[list[str], int | None]:
    """``prompt`` values and ``max_age`` (OIDC Core §3.1.2.1), or raise."""
    for name in SINGLE_PARAMS:
        if len(params.getlist(name)) > 1:
            raise InvalidRequestError(f"The parameter {name} appears more than once.")
    if any(len(value) > MAX_PARAM_LENGTH for value in params.values()):
        raise InvalidRequestError("A parameter is too long.")
    if params.get("request"):
        raise RequestNotSupportedError()
    if params.get("request_uri"):
        raise RequestURINotSupportedError()
    if "dpop_jkt" in params and not JKT_PATTERN.match(params["dpop_jkt"]):
        raise InvalidRequestError("dpop_jkt must be a JWK SHA-256 thumbprint.")
    if params.get("response_mode", "query") != "query":
        raise InvalidRequestError("Only response_mode=query is supported.")
    prompts = [p for p in (params.get("prompt") or "").split() if p in KNOWN_PROMPTS]
    if "none" in prompts and len(prompts) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with other values.")
    max_age = params.get("max_age")
    if max_age is not None and max_age != "":
        if not MAX_AGE_PATTERN.match(max_age):
            raise InvalidRequestError("max_age must be a non-negative integer.")
        return prompts, int(max_age)
    return prompts, None


def _session_principal(client_id: str) -> Principal | None:
    """The end-user of a live session whose account may still sign in, with the
    business unit chosen at this merchant last time (for a session acting as the person,
    the impersonation's unit). A session whose login still owes
    a TOTP code (:func:`idp.factors.totp.due`: the unit's policy is newer) counts as none."""
    login = signed_in.live_login()
    if login is None:
        return None
    row = login[0]
    acting = impersonation.act_for_session(row.id_hash) if row.impersonation_id else None
    return Principal(
        account_id=row.account_id,
        auth_time=row.auth_time.timestamp(),
        amr=list(row.amr or []),
        acr=acr.achieved(list(row.amr or []), row.acr),
        # an actor acts in the impersonation's unit only (idp.login.common.acting_unit)
        unit_id=acting.unit_id if acting is not None else grants_repo.last_unit(
            row.account_id, client_id),
        session_acting=acting.id if acting is not None else None,
        session_acting_known=True,
        session_id_hash=row.id_hash,
    )


def _needs_login(who: Principal | None, prompts: list[str], max_age: int | None) -> bool:
    if who is None or "login" in prompts or "select_account" in prompts:
        return True
    return max_age is not None and time.time() - who.auth_time > max_age


def _issue(grant: Any, who: Principal) -> Response:
    _, _, headers = grant.create_authorization_response(grant.redirect_uri, who)
    return _to_client(dict(headers)["Location"])


def handle(params: MultiDict[str, str], finished: Principal | None = None) -> Response:
    """Answer an authorization request; ``finished`` is the end-user of a completed
    interaction (then no further login or consent is asked)."""
    front = _front_checks(params)
    if isinstance(front, Response):
        return front
    info, redirect_uri = front
    state = params.get("state")
    try:
        grant, prompts, max_age, asked = validated(params, info)
        scopes = grant.request.scope.split()
        wanted_sub = claims_request.wanted_subject(asked)
        if finished is not None:
            if wanted_sub is not None and finished.account_id != wanted_sub:
                raise AccessDeniedError("The claims request names another account (sub).")
            return _issue(grant, finished)
        who = _session_principal(info.client_id)
        if who is not None and wanted_sub is not None and who.account_id != wanted_sub:
            who = None  # OIDC Core §5.5.1.1: never answer for another account
        if who is not None and fresh_code.required(who.account_id):
            # The unit policy fresh_code_every_sign_in: like prompt=login, always.
            prompts = [*prompts, "login"] if "login" not in prompts else prompts
        needs_login = _needs_login(who, prompts, max_age)
        require_mfa = acr.wants_mfa(params.get("acr_values")) or acr.wants_mfa(
            claims_request.wanted_acr(asked)
        )
        # OIDC Core §3.1.2.1 acr_values: a session below the level asked for is not
        # enough; its account is known, so the login continues at the TOTP step.
        step_up = who is not None and require_mfa and not acr.has_mfa(who.amr, who.acr)
        withheld = None if who is None else _consented(
            who.account_id, info.merchant_id, scopes, claims_request.names(asked)
        )
        consented = withheld is not None
        if who is not None and withheld:
            who.withheld = withheld
        if "none" in prompts:
            if needs_login or who is None or step_up:
                raise LoginRequiredError()
            if not consented:
                raise ConsentRequiredError()
            return _issue(grant, who)
        if (
            who is not None and not needs_login and not step_up and consented
            and "consent" not in prompts
        ):
            return _issue(grant, who)
    except OAuth2Error as error:
        return _error_to_client(error, redirect_uri, state)
    ix = interaction.start(
        protocol="oidc",
        client_id=info.client_id,
        client_name=info.name,
        merchant_id=info.merchant_id,
        resume_endpoint="oidc.resume",
        scopes=scopes,
        claims=list(dict.fromkeys([*claims_for_scopes(scopes), *claims_request.names(asked)])),
        prompt=prompts,
        max_age=max_age,
        login_hint=params.get("login_hint"),
        params={k: params[k] for k in KEPT_PARAMS if k in params},
        require_mfa=require_mfa,
    )
    if who is not None and not needs_login:
        ix.account_id = who.account_id
        ix.auth_time = who.auth_time
        ix.amr = list(who.amr)
        ix.acr = who.acr
        ix.unit_id = who.unit_id
        ix.session_id_hash = who.session_id_hash
        interaction.save(ix)
    resp = redirect(url_for("login.start", interaction_id=ix.id), 303)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def validated(
    params: MultiDict[str, str], info: ClientInfo
) -> tuple[Any, list[str], int | None, claims_request.ClaimsRequest]:
    """Every check of an authorization request after the client and redirect URI
    (:func:`front`), for /authorize and for a pushed request (:mod:`idp.oidc.par`):
    the authlib grant, ``prompt`` values, ``max_age`` and the ``claims`` request;
    raises the :class:`OAuth2Error` to answer."""
    if params.getlist("response_type") != ["code"]:
        # Checked here so no request text reaches authlib's error description.
        raise UnsupportedResponseTypeError("code", "Only response_type=code is supported.")
    grant = server().get_consent_grant(params_request(params))
    prompts, max_age = _options(params)
    if "openid" not in grant.request.scope.split():
        raise InvalidScopeError("The openid scope is required.")
    return grant, prompts, max_age, _claims_request(params, info)


def _claims_request(
    params: MultiDict[str, str], info: ClientInfo
) -> claims_request.ClaimsRequest:
    """The ``claims`` parameter (OIDC Core §5.5) as far as the client's registered
    scopes allow; invalid JSON or shape is ``invalid_request``."""
    try:
        asked = claims_request.parse(params.get("claims"))
    except claims_request.InvalidClaims as exc:
        raise InvalidRequestError(str(exc)) from None
    return claims_request.allowed(asked, info.scopes)


def _consented(
    account_id: str, merchant_id: str, scopes: list[str], claims: list[str]
) -> list[str] | None:
    """The items the employee left out (``idp.release.items``) when earlier consent
    covers every scope and every individually requested claim (consented by name, or
    through its scope), else None; one read of the consent row."""
    row = consent.current(account_id, merchant_id)
    if row is None:
        return None
    granted = set(row.scopes or [])
    if not set(scopes) <= granted:
        return None
    named = set(row.claims or [])
    if not all(c in named or claims_request.scope_of(c) in granted for c in claims):
        return None
    return list(row.withheld or [])


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    """OIDC Core §3.1.2.1: parameters in the query (GET) or the form body (POST); a
    pushed request by its ``request_uri`` (RFC 9126 §4, :func:`idp.oidc.par.resolve`)."""
    from idp.oidc import par

    params = wire_params()
    if "request_uri" in params:
        pushed = par.resolve(params)
        if isinstance(pushed, str):
            return _page(pushed)
        return handle(pushed)
    info = clients.lookup(params.get("client_id", ""))
    if info is not None and info.require_par:
        return _page("This client sends its authorization requests through /par only.")
    return handle(params)


@bp.get("/authorize/resume/<interaction_id>")
def resume(interaction_id: str) -> Response:
    """Finish an authorization request whose interaction the login pages completed
    (they usually answer in their own response instead: :func:`finish_inline`)."""
    ix = interaction.load(interaction_id)
    if ix is None or ix.protocol != "oidc":
        return _page("This sign-in request has expired or was started in another browser.")
    if not ix.authenticated or signed_in.owes_second_factor(ix):
        # Not signed in, or the second factor (a unit's policy, step-up) is missing.
        return redirect(url_for("login.start", interaction_id=ix.id), 303)
    done = interaction.consume(ix)
    if done is None or not done.authenticated:
        return _page("This sign-in request was already completed.")
    return _answer(done)


def finish_inline(ix: Interaction) -> Response:
    """What :func:`resume` answers, for an interaction the login page has in memory
    (registered with :func:`idp.login.flow.resume_inline`): the same checks, the
    stored copy consumed atomically so the request is answered at most once."""
    if not ix.authenticated or signed_in.owes_second_factor(ix):
        interaction.save(ix)
        return redirect(url_for("login.start", interaction_id=ix.id), 303)
    if interaction.consume(ix) is None:
        return _page("This sign-in request was already completed.")
    return _answer(ix)


def _answer(done: Interaction) -> Response:
    """The answer to the merchant for a consumed, authenticated interaction: a code,
    or ``access_denied`` when consent was declined or the account may no longer
    sign in."""
    params = MultiDict(list(done.params.items()))
    account = claims_repo.account(str(done.account_id))
    if not done.consented or account is None or not account.can_sign_in:
        # The employee declined to share (or may no longer sign in): RFC 6749 §4.1.2.1.
        front = _front_checks(params)
        if isinstance(front, Response):
            return front
        return _error_to_client(AccessDeniedError(), front[1], params.get("state"))
    who = Principal(
        account_id=str(done.account_id),
        auth_time=float(done.auth_time or 0),
        amr=list(done.amr),
        acr=done.acr,
        unit_id=done.unit_id,
        session_id_hash=done.session_id_hash,
        withheld=list(done.withheld),
    )
    return handle(params, finished=who)


resume_inline("oidc.resume", finish_inline)
