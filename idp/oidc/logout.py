"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), the
``end_session_endpoint``.

* ``id_token_hint`` must be an ID token we signed (expired is fine, §2); a forged or
  foreign one gets an error page: no logout, no redirect.
* The client is the hint's audience or ``client_id`` (they must agree, §2). The
  browser is sent to ``post_logout_redirect_uri`` only when it is registered for that
  client (exact match, §3), with ``state`` echoed; otherwise a logged-out page.
* Without a valid hint, or when the hint names another account than the session's,
  the user confirms first on a page with a CSRF-protected form (§6: such requests
  could otherwise log users out from anywhere).
"""

from __future__ import annotations

from typing import Any

from authlib.common.urls import add_params_to_uri
from flask import Blueprint, Response, render_template, request, url_for
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms.validators import ValidationError

from idp.errors import error_response
from idp.interaction import rp_logout, sessions
from idp.oidc.server import wire_params
from idp.oidc.verification import audiences, verify_id_token_hint
from idp.release import clients

bp = Blueprint("oidc_logout", __name__)

MAX_PARAM_LENGTH = 2048


def _confirmed() -> bool:
    if request.method != "POST" or request.form.get("confirm") != "yes":
        return False
    try:
        validate_csrf(request.form.get("csrf_token"))
    except (ValidationError, CSRFError):
        return False
    return True


def _html(template: str, status: int = 200, **context: Any) -> Response:
    resp = Response(render_template(template, **context), status=status, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Response:
    params = wire_params()
    if any(len(v) > MAX_PARAM_LENGTH for v in params.values()):
        return error_response(400, "invalid_request", "A logout parameter is too long.")
    hint = params.get("id_token_hint")
    client_id = params.get("client_id")
    target = params.get("post_logout_redirect_uri")
    state = params.get("state")
    claims = None
    if hint:
        claims = verify_id_token_hint(hint)
        if claims is None:
            return error_response(400, "invalid_request", "The id_token_hint is not valid.")
        auds = audiences(claims)
        if client_id and client_id not in auds:
            return error_response(400, "invalid_request", "client_id does not match the hint.")
        client_id = client_id or (auds[0] if len(auds) == 1 else None)
    info = clients.lookup(client_id) if client_id else None
    redirect_to = target if target and info and info.post_logout_uri_registered(target) else None
    current = sessions.current()
    same_account = claims is not None and (current is None or current.account_id == claims["sub"])
    if not same_account and not _confirmed():
        return _html(
            "oidc/logout_confirm.html",
            client_name=info.name if info else None,
            fields={
                k: v
                for k, v in (
                    ("client_id", client_id),
                    ("post_logout_redirect_uri", target),
                    ("state", state),
                )
                if v
            },
        )
    ended = sessions.end()
    location = None
    if redirect_to:
        location = add_params_to_uri(redirect_to, [("state", state)]) if state else redirect_to
    # Front-channel frames first, then the SAML Single Logout chain of the session's
    # SPs, then on to the RP's post_logout_redirect_uri or the signed-out page.
    done = url_for("oidc_logout.logged_out", client_id=client_id) if info else url_for(
        "oidc_logout.logged_out")
    return rp_logout.finish(
        ended, location,
        lambda frames, next_url: _html("oidc/logged_out.html",
                                       client_name=info.name if info else None,
                                       logout_frames=frames, continue_to=next_url),
        chain_then=location or done,
    )


@bp.get("/logout/done")
def logged_out() -> Response:
    """The signed-out page at the end of a SAML Single Logout chain."""
    client_id = request.args.get("client_id", "")[:64]
    info = clients.lookup(client_id) if client_id else None
    return _html("oidc/logged_out.html", client_name=info.name if info else None)
