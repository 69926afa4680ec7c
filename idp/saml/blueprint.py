"""The ``saml`` blueprint and the IdP metadata endpoint."""

from __future__ import annotations

from flask import Blueprint, Response

from idp.errors import error_response
from idp.saml import idp_metadata

bp = Blueprint("saml", __name__, url_prefix="/saml")


def refuse(description: str, status: int = 400, error: str = "invalid_saml_request") -> Response:
    """The error page for a request that cannot be answered to an SP safely (unknown
    SP, unregistered ACS URL, bad signature, ...): nothing is posted anywhere."""
    return error_response(status, error, description)


@bp.get("/metadata")
def metadata() -> Response:
    """The IdP's SAML 2.0 metadata (saml-metadata 2.4.3)."""
    resp = Response(idp_metadata.metadata_xml(), mimetype="application/samlmetadata+xml")
    resp.headers["Cache-Control"] = "public, max-age=300"
    resp.headers["Content-Disposition"] = 'inline; filename="unitgate-idp-metadata.xml"'
    return resp
