"""SAML 2.0 identity provider for merchants (OASIS SAML 2.0: core, bindings,
profiles, metadata).

* ``/saml/metadata``: IdP metadata (:mod:`idp.saml.idp_metadata`).
* ``/saml/sso``: web-browser SSO, HTTP-Redirect and HTTP-POST (:mod:`idp.saml.sso`);
  ``/saml/resume/<interaction_id>`` answers once the login pages finished.
* ``/saml/slo``: single logout, HTTP-Redirect and HTTP-POST (:mod:`idp.saml.slo`).
* Single logout without a browser: a signed LogoutRequest over SOAP to SPs that
  registered a SOAP SingleLogoutService (:mod:`idp.saml.soap_logout`).
* ``/saml/idp-initiated``: unsolicited SSO for SPs that allow it.

Service providers are registered with ``idp saml sps add`` (:mod:`idp.cli.saml`).
"""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect


def setup_saml(app: Flask, csrf: CSRFProtect) -> None:
    """Register the ``saml`` blueprint. Its POST endpoints receive messages posted by
    SPs from other sites; they carry their own integrity (signatures, the SP
    registry, replay checks), so CSRF tokens do not apply to them."""
    from idp.config import saml_sps as config_sps
    from idp.saml import registry, slo, soap_logout, sso  # noqa: F401  (routes and senders register on import)
    from idp.saml.blueprint import bp

    config_sps.use(registry)  # idp apply / idp export reach the SP registry through it

    csrf.exempt(bp)
    app.register_blueprint(bp)
