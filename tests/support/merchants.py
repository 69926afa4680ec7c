"""The merchant behind a registered OIDC client or SAML SP, for tests that record
consents and sign-ins through the services (which take merchant ids)."""

from __future__ import annotations

from flask import Flask

from idp.release import merchants


def merchant_id(app: Flask, ref: str) -> str:
    """The id of the merchant behind OIDC ``client_id`` or SAML entity ID ``ref``."""
    with app.app_context():
        found = merchants.of_client(ref) or merchants.of_service_provider(ref)
        assert found is not None, f"no client or SP {ref!r}"
        return found.id
