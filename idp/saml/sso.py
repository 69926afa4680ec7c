"""Web-browser SSO (saml-profiles 4.1): the SSO endpoint, the resume endpoint the
login pages return to, and IdP-initiated SSO for SPs that allow it.

1. ``/saml/sso`` (HTTP-Redirect or HTTP-POST) reads the AuthnRequest: size caps, no
   DTD, known SP, signature (required when the SP must sign; rsa-sha1 refused), ACS
   URL from the SP's metadata, freshness, replay. Until the ACS URL is validated every
   problem is an error page; after that, a SAML error status posted to the ACS.
2. A live session with consent already given answers at once (like OIDC); IsPassive
   without them answers ``NoPassive``. Otherwise the request becomes an
   :mod:`idp.interaction.pending` and the browser goes to the login pages; ForceAuthn asks
   for a fresh login. A RequestedAuthnContext (:mod:`idp.saml.requested_context`)
   asking for mfa makes the login end with a TOTP code (step-up, also for a live
   session without one); one that cannot be met answers ``NoAuthnContext``.
3. ``/saml/resume/<interaction_id>`` consumes the finished interaction and posts the
   Response to the ACS URL stored in it.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, request, url_for

from idp.factors import fresh_code
from idp.interaction import pending as interaction
from idp.interaction import sessions, signed_in
from idp.release import consent
from idp.saml import answer, authn_request, bounce, idp_metadata, messages
from idp.saml import requested_context as rac
from idp.saml.attributes import scopes_for
from idp.saml.blueprint import bp, refuse
from idp.saml.constants import (
    NAMEID_EMAIL,
    STATUS_AUTHN_FAILED,
    STATUS_INVALID_NAMEID_POLICY,
    STATUS_NO_AUTHN_CONTEXT,
    STATUS_NO_PASSIVE,
    STATUS_REQUEST_DENIED,
    STATUS_REQUESTER,
    STATUS_RESPONDER,
)
from idp.saml.subject import authn_context, format_uri
from idp.saml.xmlsafe import MalformedMessage
from idp.services import ephemeral
from idp.store import claims_repo, saml_repo
from idp.store.models import SamlServiceProvider, utcnow
from idp.web.redirects import redirect

log = logging.getLogger("idp.saml")

# A ForceAuthn login must be newer than the request (a little slack for clocks
# between workers).
FRESH_LOGIN_SLACK = timedelta(seconds=5)
MAX_IDP_INITIATED_RELAY_STATE = 1024


def _session_login(sp: SamlServiceProvider, scopes: list[str]) -> tuple[answer.Login | None, bool]:
    """The login of this browser's live session (None without one or when its account
    may no longer sign in) and whether its account already consented to ``scopes``
    and the SP's attributes (the same test the login pages make)."""
    live = signed_in.live_login()
    if live is None:
        return None, False
    row, account = live
    login = answer.Login(
        account=account,
        auth_time=row.auth_time,
        amr=list(row.amr or []),
        unit_id=saml_repo.last_unit(account.id, sp.merchant_id),
        scopes=scopes,
        session_id_hash=row.id_hash,
    )
    withheld = consent.covered(account.id, sp.merchant_id, scopes, sp.attributes or [])
    login.withheld = withheld or []
    return login, withheld is not None


def _start_login(
    sp: SamlServiceProvider,
    scopes: list[str],
    params: dict[str, Any],
    force_authn: bool,
    session_login: answer.Login | None,
    require_mfa: bool = False,
) -> Response:
    ix = interaction.start(
        protocol="saml",
        client_id=sp.entity_id,
        client_name=sp.name,
        merchant_id=sp.merchant_id,
        resume_endpoint="saml.resume",
        scopes=scopes,
        claims=list(sp.attributes or []),
        prompt=["login"] if force_authn else [],
        params=params,
        require_mfa=require_mfa,
    )
    if session_login is not None and not force_authn:
        ix.account_id = session_login.account.id
        ix.auth_time = session_login.auth_time.timestamp()
        ix.amr = list(session_login.amr)
        ix.session_id_hash = session_login.session_id_hash
        interaction.save(ix)
    resp = redirect(url_for("login.start", interaction_id=ix.id), 303)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/sso", methods=["GET", "POST"])
def sso() -> Response:
    """SP-initiated SSO: an AuthnRequest over HTTP-Redirect (GET) or HTTP-POST."""
    posted = None
    if "bounce" in request.args:
        posted = bounce.redelivered()
        if posted is None:
            return refuse("This sign-in request has expired; please start again.")
    elif bounce.needed():
        return bounce.bounce("saml.sso") or refuse("The SAML message is too large.")
    try:
        msg = messages.receive(request, "SAMLRequest", posted)
    except MalformedMessage as exc:
        return refuse(str(exc))
    sp = saml_repo.by_entity_id(msg.issuer)
    if sp is None:
        return refuse("This service provider is not registered with Unitgate.")
    try:
        messages.verify_signature(msg, sp.signing_certificates or [], sp.require_signed_requests)
        req = authn_request.read(msg, sp, idp_metadata.sso_url(), utcnow())
    except MalformedMessage as exc:
        log.info("saml authn request refused sp=%s: %s", sp.entity_id, exc)
        return refuse(str(exc))
    if not ephemeral().add(f"saml:authn:{sp.id}:{req.id}", 1, authn_request.REPLAY_TTL_SECONDS):
        log.warning("saml authn request replayed sp=%s id=%s", sp.entity_id, req.id)
        return refuse("This sign-in request was already used.")

    def fail(status: str, sub: str | None = None, message: str | None = None) -> Response:
        return answer.error(sp, req.acs_url, req.id, req.relay_state, status, sub, message)

    if req.has_subject:
        return fail(STATUS_REQUESTER, None, "A Subject in the AuthnRequest is not supported.")
    if req.nameid_format is not None and req.nameid_format != format_uri(sp):
        return fail(STATUS_REQUESTER, STATUS_INVALID_NAMEID_POLICY)
    requested = req.requested_context
    decision = rac.decide(requested)
    if not decision.meetable:
        return fail(STATUS_RESPONDER, STATUS_NO_AUTHN_CONTEXT)
    scopes = scopes_for(sp.attributes or [])
    login, consented = _session_login(sp, scopes)
    step_up = login is not None and not rac.met(requested, login.amr)
    if login is not None:
        login.authn_context = rac.class_ref(requested, login.amr, authn_context(login.amr))
    # The unit policy fresh_code_every_sign_in (idp.factors.fresh_code): ForceAuthn, always.
    force = req.force_authn or (login is not None and fresh_code.required(login.account.id))
    if req.is_passive:
        if login is None or force or not consented or step_up:
            return fail(STATUS_RESPONDER, STATUS_NO_PASSIVE)
        return answer.success(sp, req.acs_url, req.id, req.relay_state, login)
    if login is not None and consented and not force and not step_up:
        return answer.success(sp, req.acs_url, req.id, req.relay_state, login)
    params = {
        "sp_id": sp.id,
        "request_id": req.id,
        "acs_url": req.acs_url,
        "relay_state": req.relay_state,
        "force_authn": force,
        "requested_at": time.time(),
        "authn_context": requested.to_params() if requested is not None else None,
    }
    return _start_login(sp, scopes, params, force, login, decision.require_mfa)


@bp.get("/idp-initiated")
def idp_initiated() -> Response:
    """IdP-initiated SSO (saml-profiles 4.1.5), for SPs registered with
    ``--idp-initiated`` only: ``?sp=<entity id>[&RelayState=...]``. The Response is
    unsolicited (no InResponseTo) and goes to the SP's default ACS URL."""
    entity_id = request.args.get("sp", "")
    sp = saml_repo.by_entity_id(entity_id)
    if sp is None:
        return refuse("This service provider is not registered with Unitgate.")
    if not sp.idp_initiated:
        return refuse("This service provider does not accept IdP-initiated sign-in.", 403)
    relay_state = request.args.get("RelayState")
    if relay_state is not None and len(relay_state) > MAX_IDP_INITIATED_RELAY_STATE:
        return refuse("RelayState is too long.")
    acs_url = authn_request.default_acs(sp)
    scopes = scopes_for(sp.attributes or [])
    login, consented = _session_login(sp, scopes)
    force = login is not None and fresh_code.required(login.account.id)
    if login is not None and consented and not force:
        return answer.success(sp, acs_url, None, relay_state, login)
    params = {
        "sp_id": sp.id,
        "request_id": None,
        "acs_url": acs_url,
        "relay_state": relay_state,
        "force_authn": force,
        "requested_at": time.time(),
    }
    return _start_login(sp, scopes, params, force, login)


@bp.get("/resume/<interaction_id>")
def resume(interaction_id: str) -> Response:
    """Answer the SP once the login pages finished the interaction: the assertion,
    or ``AuthnFailed`` / ``RequestDenied`` when the login or consent did not
    happen. The ACS URL and request ID come from the stored interaction."""
    ix = interaction.load(interaction_id)
    if ix is None or ix.protocol != "saml":
        return refuse("This sign-in request has expired or was started in another browser.")
    if signed_in.owes_second_factor(ix):
        # The second factor (a unit's policy, step-up) is missing: back to the login.
        return redirect(url_for("login.start", interaction_id=ix.id), 303)
    done = interaction.consume(ix)
    if done is None:
        return refuse("This sign-in request was already completed.")
    params = done.params
    sp = saml_repo.by_id(str(params.get("sp_id", "")))
    if sp is None:
        return refuse("This service provider is no longer registered.")
    acs_url = str(params["acs_url"])
    request_id = params.get("request_id")
    relay_state = params.get("relay_state")

    def fail(status: str, sub: str) -> Response:
        return answer.error(sp, acs_url, request_id, relay_state, status, sub)

    if not done.authenticated:
        return fail(STATUS_RESPONDER, STATUS_AUTHN_FAILED)
    if not done.consented:
        return fail(STATUS_RESPONDER, STATUS_REQUEST_DENIED)
    auth_time = float(done.auth_time or 0)
    requested_at = float(params.get("requested_at") or 0)
    if params.get("force_authn") and auth_time < requested_at - FRESH_LOGIN_SLACK.total_seconds():
        return fail(STATUS_RESPONDER, STATUS_AUTHN_FAILED)
    account = claims_repo.account(str(done.account_id))
    if account is None or not account.can_sign_in:
        return fail(STATUS_RESPONDER, STATUS_AUTHN_FAILED)
    if account.email is None and format_uri(sp) == NAMEID_EMAIL:
        # an account provisioned without an address has no e-mail NameID to give
        log.info("saml: no e-mail NameID for account %s at %s", account.id, sp.entity_id)
        return fail(STATUS_RESPONDER, STATUS_INVALID_NAMEID_POLICY)
    requested = rac.Requested.from_params(params.get("authn_context"))
    if requested is not None and not rac.met(requested, list(done.amr)):
        return fail(STATUS_RESPONDER, STATUS_NO_AUTHN_CONTEXT)
    session_hash = done.session_id_hash
    if session_hash is None:
        row = sessions.current()
        if row is not None and row.account_id == account.id:
            session_hash = row.id_hash
    login = answer.Login(
        account=account,
        auth_time=datetime.fromtimestamp(auth_time, UTC),
        amr=list(done.amr),
        unit_id=done.unit_id,
        scopes=list(done.scopes),
        session_id_hash=session_hash,
        authn_context=rac.class_ref(requested, list(done.amr), authn_context(list(done.amr))),
        withheld=list(done.withheld),
    )
    return answer.success(sp, acs_url, request_id, relay_state, login)
