"""Single logout, SP-initiated, front channel (saml-profiles 4.4).

1. An SP sends a LogoutRequest (HTTP-Redirect or HTTP-POST) to ``/saml/slo``. It is
   checked like an AuthnRequest (caps, no DTD, known SP, signature when the SP must
   sign, freshness, replay) and must name the NameID (and SessionIndex) this browser's
   session gave that SP; otherwise no session is ended.
2. The Unitgate session ends (:func:`idp.interaction.sessions.end`).
3. Every other SP of that session with a SingleLogoutService gets a signed
   LogoutRequest in turn, through the browser; each answers with a LogoutResponse to
   ``/saml/slo`` that carries the chain's state id as RelayState.
4. Finally the initiating SP gets a signed LogoutResponse: ``Success``, or
   ``PartialLogout`` when another SP reported a failure.

The chain's state lives in the ephemeral store (10 minutes) and is bound to the
browser that started it.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, render_template, request, url_for
from lxml import etree

from idp.crypto.primitives import random_token
from idp.interaction import rp_logout, sessions
from idp.saml import bounce, idp_metadata, logout_messages, messages, soap_logout
from idp.saml.blueprint import bp, refuse
from idp.saml.constants import (
    BINDING_REDIRECT,
    BINDING_SOAP,
    STATUS_PARTIAL_LOGOUT,
    STATUS_REQUESTER,
    STATUS_SUCCESS,
)
from idp.saml.post_form import post_form
from idp.saml.signatures import sign_xml
from idp.saml.xmlsafe import MalformedMessage
from idp.services import ephemeral, hasher, settings
from idp.store import saml_repo
from idp.store.models import SamlServiceProvider, utcnow
from idp.web.redirects import redirect

log = logging.getLogger("idp.saml")

STATE_TTL_SECONDS = 600
STATE_COOKIE = "ug_saml_slo"
STATUS_UNKNOWN_PRINCIPAL = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"


def _state_key(state_id: str) -> str:
    return f"saml:slo:{state_id}"


def _endpoint(sp: SamlServiceProvider) -> dict[str, Any] | None:
    """The SP's SLO endpoint for the browser, HTTP-Redirect preferred (a SOAP one is
    for the back channel: :mod:`idp.saml.soap_logout`)."""
    endpoints = [e for e in sp.slo_endpoints or [] if e.get("binding") != BINDING_SOAP]
    endpoints.sort(key=lambda e: e.get("binding") != BINDING_REDIRECT)
    return endpoints[0] if endpoints else None


def _send(
    endpoint: dict[str, Any],
    url: str,
    param: str,
    xml: etree._Element,
    relay_state: str | None,
    name: str,
) -> Response:
    """Send a message through the browser: signed query for HTTP-Redirect, signed
    XML in an auto-submitting form for HTTP-POST."""
    signer = idp_metadata.signer()
    if endpoint.get("binding") == BINDING_REDIRECT:
        target = messages.redirect_url(url, param, etree.tostring(xml), relay_state, signer)
        resp = redirect(target, 302)
        resp.headers["Cache-Control"] = "no-store"
        return resp
    signed = etree.tostring(sign_xml(xml, signer))
    fields = {param: messages.post_value(signed)}
    if relay_state:
        fields["RelayState"] = relay_state
    return post_form(url, fields, title=name, target_name=name)


def _signed_out_page(frames: list[rp_logout.Frame] | None = None,
                     continue_to: str | None = None) -> Response:
    resp = Response(render_template("saml/signed_out.html", logout_frames=frames or [],
                                    continue_to=continue_to), mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/slo", methods=["GET", "POST"])
def slo() -> Response:
    """The single logout service: LogoutRequests from SPs, and the LogoutResponses of
    SPs this IdP asked to log out."""
    posted = None
    if "bounce" in request.args:
        posted = bounce.redelivered()
        if posted is None:
            return refuse("This logout has expired; please start again.")
    elif bounce.needed():
        return bounce.bounce("saml.slo") or refuse("The SAML message is too large.")
    source: Any = (
        posted
        if posted is not None
        else (request.args if request.method == "GET" else request.form)
    )
    if "SAMLRequest" in source:
        return _logout_request(posted)
    if "SAMLResponse" in source:
        return _logout_response(posted)
    return refuse("SAMLRequest or SAMLResponse is missing.")


def _logout_request(posted: dict[str, list[str]] | None) -> Response:
    try:
        msg = messages.receive(request, "SAMLRequest", posted)
    except MalformedMessage as exc:
        return refuse(str(exc))
    sp = saml_repo.by_entity_id(msg.issuer)
    if sp is None:
        return refuse("This service provider is not registered with Unitgate.")
    try:
        messages.verify_signature(msg, sp.signing_certificates or [], sp.require_signed_requests)
        req = logout_messages.read_request(msg, idp_metadata.slo_url(), utcnow())
    except MalformedMessage as exc:
        log.info("saml logout request refused sp=%s: %s", sp.entity_id, exc)
        return refuse(str(exc))
    if not ephemeral().add(f"saml:logout:{sp.id}:{req.id}", 1, logout_messages.REPLAY_TTL_SECONDS):
        return refuse("This logout request was already used.")

    row = sessions.current()
    status, sub_status = STATUS_SUCCESS, None
    ended = rp_logout.Ended()
    if row is not None:
        mine = saml_repo.participant(row.id_hash, sp.id)
        matches = (
            mine is not None
            and mine.name_id == req.name_id
            and (not req.session_indexes or mine.session_index in req.session_indexes)
        )
        if matches:
            ended = sessions.end(answered_sp=sp.id)
            log.info("saml single logout sp=%s others=%d frames=%d", sp.entity_id,
                     len(ended.saml), len(ended.frames))
        else:
            status, sub_status = STATUS_REQUESTER, STATUS_UNKNOWN_PRINCIPAL
    state = {
        "initiator": sp.id,
        "request_id": req.id,
        "relay_state": msg.relay_state,
        "binding": msg.binding,
        "status": status,
        "sub_status": sub_status,
        "pending": ended.saml,
        "current": None,
        "partial": False,
    }
    state_id = random_token(24)
    if not ended.frames:
        return _continue(state_id, state, new_browser_binding=True)
    # The session's OIDC relying parties with a front-channel URI first: their frames,
    # then on with the chain (rp_logout.finish, as every logout page).
    state["awaiting_frames"] = True
    _save(state_id, state)
    resp = rp_logout.finish(
        rp_logout.Ended(frames=ended.frames),
        url_for("saml.slo_resume", state_id=state_id),
        lambda frames, next_url: _signed_out_page(frames, next_url),
    )
    return _bind(resp, state_id, True)


@bp.get("/slo/resume/<state_id>")
def slo_resume(state_id: str) -> Response:
    """Go on with a Single Logout chain once its page rendered the front-channel
    frames: only in the browser that started it, and only once."""
    if not _bound(state_id):
        return refuse("This logout has expired or was started in another browser.")
    state = ephemeral().take(_state_key(state_id))
    if not isinstance(state, dict) or not state.pop("awaiting_frames", False):
        return refuse("This logout has expired.")
    return _continue(state_id, state)


@bp.get("/slo/start/<chain_id>")
def slo_start(chain_id: str) -> Response:
    """IdP-initiated Single Logout after the session ended elsewhere (an OIDC RP's
    logout, the dashboard's sign-out): send each SAML SP of that session a signed
    LogoutRequest in turn through the browser (steps 3 of the SP-initiated chain),
    then go on to where the logout began wants (stored server-side with the chain)."""
    chain = rp_logout.take_saml_chain(chain_id)
    if chain is None:
        return refuse("This logout has expired; you are signed out of Unitgate.")
    pending = chain.get("pending")
    state = {
        "initiator": None,
        "then": str(chain.get("then") or ""),
        "pending": list(pending) if isinstance(pending, list) else [],
        "current": None,
        "partial": False,
    }
    return _continue(random_token(24), state, new_browser_binding=True)


def _save(state_id: str, state: dict[str, Any]) -> None:
    ephemeral().put(_state_key(state_id), state, STATE_TTL_SECONDS)


def _continue(state_id: str, state: dict[str, Any], new_browser_binding: bool = False) -> Response:
    """Send the next LogoutRequest of the chain, or the final LogoutResponse."""
    issuer = idp_metadata.entity_id()
    while state["pending"]:
        entry = state["pending"].pop(0)
        other = saml_repo.by_id(entry["sp_id"])
        endpoint = _endpoint(other) if other is not None else None
        if other is None or endpoint is None:
            continue
        xml = soap_logout.logout_request(entry, other.entity_id, endpoint["url"])
        state["current"] = {"sp_id": other.id, "request_id": xml.get("ID")}
        _save(state_id, state)
        resp = _send(endpoint, endpoint["url"], "SAMLRequest", xml, state_id, other.name)
        return _bind(resp, state_id, new_browser_binding)
    ephemeral().delete(_state_key(state_id))
    ephemeral().delete(f"saml:slo-browser:{state_id}")
    if state.get("initiator") is None:  # IdP-initiated: on to where the logout began
        then = state.get("then") or ""
        if not then:
            return _unbind(_signed_out_page())
        done = redirect(then, 303)
        done.headers["Cache-Control"] = "no-store"
        return _unbind(done)
    initiator = saml_repo.by_id(state["initiator"])
    endpoint = _endpoint(initiator) if initiator is not None else None
    if initiator is None or endpoint is None:
        return _unbind(_signed_out_page())
    status = state["status"]
    sub_status = state["sub_status"]
    if status == STATUS_SUCCESS and state["partial"]:
        sub_status = STATUS_PARTIAL_LOGOUT
    xml = logout_messages.build_response(
        issuer=issuer,
        destination=endpoint["response_url"],
        in_response_to=state["request_id"],
        now=utcnow(),
        status=status,
        sub_status=sub_status,
    )
    resp = _send(
        endpoint,
        endpoint["response_url"],
        "SAMLResponse",
        xml,
        state["relay_state"],
        initiator.name,
    )
    return _unbind(resp)


def _bind(resp: Response, state_id: str, new: bool) -> Response:
    if new:
        token = random_token(24)
        resp.set_cookie(
            STATE_COOKIE,
            token,
            max_age=STATE_TTL_SECONDS,
            httponly=True,
            secure=settings().secure_cookies,
            samesite="Lax",
            path="/saml/slo",
        )
        ephemeral().put(
            f"saml:slo-browser:{state_id}", hasher().hash(token, "saml-slo"), STATE_TTL_SECONDS
        )
    return resp


def _bound(state_id: str) -> bool:
    """This browser started the chain ``state_id`` (its cookie matches)."""
    binding = ephemeral().get(f"saml:slo-browser:{state_id}") if 0 < len(state_id) <= 64 else None
    return hasher().verify(request.cookies.get(STATE_COOKIE, ""), "saml-slo", binding)


def _unbind(resp: Response) -> Response:
    if request.cookies.get(STATE_COOKIE):
        resp.delete_cookie(STATE_COOKIE, path="/saml/slo")
    return resp


def _logout_response(posted: dict[str, list[str]] | None) -> Response:
    try:
        msg = messages.receive(request, "SAMLResponse", posted)
    except MalformedMessage as exc:
        return refuse(str(exc))
    state_id = msg.relay_state or ""
    if not _bound(state_id):
        return refuse("This logout has expired or was started in another browser.")
    state = ephemeral().take(_state_key(state_id))
    if state is None:
        return refuse("This logout has expired.")
    current = state.get("current") or {}
    sp = saml_repo.by_id(current.get("sp_id", ""))
    if sp is None or sp.entity_id != msg.issuer:
        return refuse("Unexpected logout response.")
    try:
        messages.verify_signature(msg, sp.signing_certificates or [], sp.require_signed_requests)
        in_response_to, status = logout_messages.read_response_status(
            msg, idp_metadata.slo_url(), utcnow()
        )
    except MalformedMessage as exc:
        return refuse(str(exc))
    if in_response_to != current.get("request_id"):
        return refuse("The logout response does not answer this logout.")
    if status != STATUS_SUCCESS:
        state["partial"] = True
        log.info("saml logout at sp=%s answered %s", sp.entity_id, status)
    state["current"] = None
    return _continue(state_id, state)
