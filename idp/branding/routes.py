"""Serving logos and a merchant's stylesheet, and what the templates ask about
branding.

* ``GET /branding/logos/<sha256>.<ext>``: a stored logo (or the default one) by the
  hash of its bytes: the URL changes with the content, so the answer is cached for a
  year (``immutable``) with the hash as its ``ETag``. Served with its exact media
  type, ``X-Content-Type-Options: nosniff`` and ``Content-Security-Policy:
  default-src 'none'`` (an image opened on its own runs nothing and loads nothing).
* ``GET /branding/merchants/<merchant_id>/<version>.css``: the merchant's colours as
  CSS custom properties. A stylesheet from our own origin is what the pages' CSP
  (``default-src 'self'``) allows without nonces or inline styles.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request, url_for

from idp.branding import colours, service
from idp.services import settings

bp = Blueprint("branding", __name__, url_prefix="/branding")

LOGO_NAME = re.compile(r"^([0-9a-f]{64})\.(png|jpg|webp|svg)$")
YEAR = 365 * 24 * 3600
IMAGE_CSP = "default-src 'none'"
DEFAULT_KEY = "idp_default_logo"


def default_logo() -> service.DefaultLogo:
    """This app's default logo (loaded once, when the app is set up)."""
    found: service.DefaultLogo = current_app.extensions[DEFAULT_KEY]
    return found


def _image(data: bytes, media_type: str, sha256: str) -> Response:
    etag = f'"{sha256}"'
    if etag in request.headers.get("If-None-Match", ""):
        resp = Response(status=304)
    else:
        resp = Response(data, mimetype=media_type)
    resp.headers["ETag"] = etag
    resp.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = IMAGE_CSP
    resp.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return resp


@bp.get("/logos/<name>")
def logo(name: str) -> Response:
    """A logo by content hash; 404 for anything else (also a wrong extension)."""
    m = LOGO_NAME.match(name)
    if m is None:
        abort(404)
    sha256 = m.group(1)
    fallback = default_logo()
    if sha256 == fallback.ref.sha256 and name == fallback.ref.file_name:
        return _image(fallback.data, fallback.ref.media_type, sha256)
    found = service.stored_logo(sha256)
    if found is None:
        abort(404)
    data, media_type = found
    if name != service.LogoRef(sha256, media_type, None).file_name:
        abort(404)
    return _image(data, media_type, sha256)


@bp.get("/merchants/<merchant_id>/<version>.css")
def stylesheet(merchant_id: str, version: str) -> Response:
    """The merchant's colours as custom properties (``--accent``, ``--bg``)."""
    look = service.merchant_look(merchant_id) if merchant_id.isalnum() else None
    if look is None or look.version is None:
        abort(404)
    rules = []
    if look.primary and colours.HEX.match(look.primary):
        rules.append(f"--accent: {look.primary};")
    if look.background and colours.HEX.match(look.background):
        rules.append(f"--bg: {look.background};")
    resp = Response(":root { " + " ".join(rules) + " }\n", mimetype="text/css")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    if version == look.version:
        resp.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
    else:  # an older page's URL: today's colours, not kept
        resp.headers["Cache-Control"] = "no-cache"
    return resp


def logo_view(ref: service.LogoRef | None) -> dict[str, Any]:
    """``src``, ``width`` and ``height`` of an ``<img>`` for a logo (None: the default)."""
    ref = ref or default_logo().ref
    return {
        "src": url_for("branding.logo", name=ref.file_name),
        "width": ref.width, "height": ref.height, "default": ref == default_logo().ref,
    }


def page_look(ix: Any = None) -> dict[str, Any]:
    """What ``base.html`` shows: the merchant's name, logo and stylesheet on the sign-in
    pages of an interaction that belongs to a merchant; Unitgate's otherwise."""
    merchant_id = getattr(ix, "merchant_id", "") or ""
    look = service.merchant_look(merchant_id) if merchant_id else None
    out: dict[str, Any] = {
        "name": getattr(ix, "client_name", "") if merchant_id else "",
        "logo": logo_view(look.logo if look else None),
        "stylesheet": None,
    }
    if look is not None and look.version is not None:
        out["stylesheet"] = url_for(
            "branding.stylesheet", merchant_id=merchant_id, version=look.version
        )
    return out


def company_logos(companies: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For the dashboard: each company's logo view by unit id (own or inherited logo;
    companies without one are absent, and show no logo)."""
    refs = service.company_logos([c["unit_id"] for c in companies if c.get("unit_id")])
    return {unit_id: logo_view(ref) for unit_id, ref in refs.items()}


def footer_links() -> list[tuple[str, str]]:
    """The footer's links, (kind, URL), for the settings that are set."""
    s = settings()
    return [(kind, url) for kind, url in (("privacy", s.privacy_url), ("help", s.help_url))
            if url]


def setup_branding(app: Flask, default_logo_path: str | None) -> None:
    """Load the default logo (``IDP_DEFAULT_LOGO``; a file that is no acceptable logo
    stops the start), mount the routes and the template helpers."""
    app.extensions[DEFAULT_KEY] = service.load_default(default_logo_path)
    app.register_blueprint(bp)
    app.add_template_global(page_look, "page_look")
    app.add_template_global(company_logos, "company_logos")
    app.add_template_global(footer_links, "footer_links")

