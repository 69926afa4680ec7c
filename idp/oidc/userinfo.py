"""The UserInfo endpoint (OIDC Core §5.3), GET and POST, bearer token in the
``Authorization`` header or (POST only) the form body (RFC 6750 §2.1, §2.2), or a
DPoP-bound token with ``Authorization: DPoP`` and a proof (RFC 9449 §7,
:func:`idp.oidc.dpop.check_presentation`): a bound token presented as Bearer is
``invalid_token``.

The token must be one of our access tokens (verified per SECURITY.md "JOSE"), still
live (not revoked, grant live, account allowed to sign in) and carry ``openid``.
Claims are released per the token's scopes (:func:`idp.release.claims.released_claims`),
plus the claims the authorization's ``claims`` parameter asked for UserInfo
(:mod:`idp.release.claims_request`).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from idp.oidc import dpop, liveness
from idp.oidc.verification import verify_access_token
from idp.release import claims_request
from idp.release.claims import released_claims

bp = Blueprint("userinfo", __name__)


def _bearer_error(
    status: int, error: str | None, description: str = "", *, dpop_too: bool = False
) -> Response:
    """An RFC 6750 §3 error; ``dpop_too`` adds the RFC 9449 §7.1 DPoP challenge."""
    body = {"error": error or "invalid_request", "error_description": description}
    resp = jsonify(body)
    resp.status_code = status
    challenge = 'Bearer realm="userinfo"'
    if error and not (dpop_too and error in ("invalid_dpop_proof", "use_dpop_nonce")):
        challenge += f', error="{error}"'
    resp.headers["WWW-Authenticate"] = challenge
    if dpop_too:
        resp.headers.add(
            "WWW-Authenticate",
            dpop.challenge(error if error in ("invalid_dpop_proof", "use_dpop_nonce") else None),
        )
        resp.headers.update(dpop.nonce_headers())
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _presented_token() -> tuple[str | None, str, Response | None]:
    """The token, its scheme (``bearer`` or ``dpop``), or the error to answer."""
    presented = dpop.authorization(request.headers.get("Authorization", ""))
    scheme = presented[0] if presented is not None else "bearer"
    from_header = presented[1] if presented is not None else None
    from_body = None
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        from_body = request.form.get("access_token")
    if from_header and from_body:
        return None, scheme, _bearer_error(
            400, "invalid_request", "Send the token in one place only."
        )
    token = from_header or from_body
    if not token:
        return None, scheme, _bearer_error(
            401, None, "An access token is required.", dpop_too=True
        )
    return token, scheme, None


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    token, scheme, problem = _presented_token()
    if problem is not None or token is None:
        return problem or _bearer_error(401, None)
    verified = verify_access_token(token)
    live = liveness.access_token_active(verified) if verified is not None else None
    if verified is None or live is None or live.account is None or live.grant is None:
        return _bearer_error(401, "invalid_token", "The access token is invalid or revoked.")
    try:
        dpop.check_presentation(
            verified.jkt, scheme, token, request.headers.getlist("DPoP"), request.method,
            "/userinfo",
        )
    except dpop.WrongScheme as exc:
        return _bearer_error(401, "invalid_token", str(exc), dpop_too=True)
    except dpop.InvalidProof as exc:
        return _bearer_error(401, dpop.error_code(exc), str(exc), dpop_too=True)
    if "openid" not in live.token.scopes:
        return _bearer_error(403, "insufficient_scope", "The token lacks the openid scope.")
    withheld = list(live.grant.withheld or [])  # the consent's choice (idp.release.items)
    claims = released_claims(live.account, live.token.scopes, live.grant.unit_id, withheld)
    if live.grant.claims_request:  # OIDC Core §5.5: individually requested claims
        extra = claims_request.release(
            live.grant.claims_request, "userinfo", live.account, live.grant.unit_id, withheld
        )
        claims.update({k: v for k, v in extra.items() if k not in claims})
    if live.act_sub:  # RFC 8693 §4.1: who acts as the subject (impersonation)
        claims["act"] = {"sub": live.act_sub}
    resp = jsonify(claims)
    resp.headers["Cache-Control"] = "no-store"
    return resp
