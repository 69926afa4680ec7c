"""The auto-submitting form of the HTTP-POST binding (saml-bindings 3.5.4).

The page carries its own Content-Security-Policy: scripts only with this response's
nonce, and ``form-action`` limited to the origin of the one endpoint it posts to.
A plain button stays visible for browsers without JavaScript.
"""

from __future__ import annotations

import secrets
import urllib.parse

from flask import Response, render_template


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def post_form(action: str, fields: dict[str, str], title: str, target_name: str) -> Response:
    """A page that POSTs ``fields`` to ``action`` at once (``action`` must already be
    validated against the SP's metadata)."""
    nonce = secrets.token_urlsafe(16)
    html = render_template(
        "saml/post.html",
        action=action,
        fields=fields,
        nonce=nonce,
        title=title,
        target_name=target_name,
    )
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; img-src 'self'; "
        f"form-action {_origin(action)}; frame-ancestors 'none'; base-uri 'none'"
    )
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp
