"""OpenID Provider (authlib): discovery, JWKS, authorize, token, userinfo, ..."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect


def setup_oidc(app: Flask, csrf: CSRFProtect) -> None:
    from idp.oidc.discovery import bp as discovery_bp

    app.register_blueprint(discovery_bp)
