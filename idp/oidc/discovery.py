"""OpenID Connect Discovery 1.0 metadata and the JWKS."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from idp.services import keyring

bp = Blueprint("discovery", __name__)


@bp.get("/jwks")
def jwks() -> Response:
    resp = jsonify(keyring().jwks())
    resp.headers["Cache-Control"] = "public, max-age=60"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp
