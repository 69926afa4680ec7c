"""Re-delivering cross-site HTTP-POST messages so the browser's cookies come along.

Unitgate's cookies are ``SameSite=Lax``: a browser does not send them with a POST
from another site, which is exactly how an SP delivers HTTP-POST binding messages.
Without them the IdP would not see the live session (no SSO, and single logout would
not find the session) nor the logout chain's browser binding. So a POST that arrives
without any of Unitgate's cookies (all named ``ug_*``; other cookies on the host, such
as a load balancer's ``SameSite=None`` one, may still come along) is stored for two
minutes under a random key and the
browser is sent (303) to the same endpoint with ``?bounce=<key>``: a top-level GET
navigation, which carries Lax cookies. The message is then processed exactly as if
it had been posted (same POST-binding checks and signature).
"""

from __future__ import annotations

from flask import Response, request, url_for

from idp.crypto.primitives import random_token
from idp.saml.xmlsafe import MAX_BASE64_CHARS
from idp.services import ephemeral
from idp.web.redirects import redirect

TTL_SECONDS = 120
FIELDS = ("SAMLRequest", "SAMLResponse", "RelayState")


OWN_COOKIE_PREFIX = "ug_"


def needed() -> bool:
    """True for a POST that carries none of Unitgate's own cookies."""
    return request.method == "POST" and not any(
        name.startswith(OWN_COOKIE_PREFIX) for name in request.cookies
    )


def bounce(endpoint: str) -> Response | None:
    """Store this POST's SAML fields and redirect to ``endpoint`` with the key; None
    when the fields are too large to be a SAML message (the caller refuses them)."""
    posted = {k: request.form.getlist(k) for k in FIELDS if k in request.form}
    if any(len(v) > MAX_BASE64_CHARS for values in posted.values() for v in values):
        return None
    key = random_token(24)
    ephemeral().put(f"saml:bounce:{key}", posted, TTL_SECONDS)
    resp = redirect(url_for(endpoint, bounce=key), 303)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def redelivered() -> dict[str, list[str]] | None:
    """The stored form of ``?bounce=<key>`` (single use), or None."""
    key = request.args.get("bounce", "")
    if request.method != "GET" or not key or len(key) > 64:
        return None
    data = ephemeral().take(f"saml:bounce:{key}")
    return data if isinstance(data, dict) else None
