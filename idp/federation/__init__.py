"""Sign-in through upstream identity providers (SSO federation).

* :func:`setup_federation` registers the ``federation`` blueprint:
  ``/federation/<id>/callback`` (OIDC redirect URI), ``/federation/<id>/acs`` (SAML
  ACS), ``/federation/<id>/metadata`` (SAML SP metadata), ``/federation/<id>/start``.
* :func:`start_sso` is what the login page calls (home-realm discovery) to send a
  pending interaction to a connector.

The protocol work is in ``connectors/``; the account rules in
:mod:`idp.federation.accounts`; linking proof in :mod:`idp.federation.linking`.
"""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from idp.federation.flow import start_sso
from idp.federation.registry import CACHE_KEY, new_metadata_cache

__all__ = ["setup_federation", "start_sso"]


def setup_federation(app: Flask, csrf: CSRFProtect, allow_private: bool) -> None:
    """Register the blueprint; the SAML ACS is exempt from CSRF (the IdP posts it and
    the signed response, its InResponseTo and RelayState are the proof instead)."""
    from idp.federation.routes import acs, bp

    csrf.exempt(acs)
    app.register_blueprint(bp)
    app.extensions[CACHE_KEY] = new_metadata_cache(allow_private)
