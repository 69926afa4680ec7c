"""Home-realm discovery at the login page: a typed address whose domain requires SSO
goes straight to the unit's connector, never to an e-mail code."""

from __future__ import annotations

from flask import Response

from idp.domains import rules as domain_rules
from idp.errors import error_response
from idp.federation.flow import start_sso
from idp.interaction import pending as interaction
from idp.store import connectors_repo


def redirect_for(ix: interaction.Interaction, email: str) -> Response | None:
    """The 303 to the upstream IdP when ``email``'s domain requires SSO, a 403 page
    when it requires SSO but no connector is usable (fail closed), None otherwise
    (the caller sends an e-mail code)."""
    method = domain_rules.login_method_for_email(email)
    if method == "email_code":
        return None
    if isinstance(method, tuple):
        row = connectors_repo.get(method[1])
        if row is not None and row.enabled:
            ix.email = email
            interaction.save(ix)
            return start_sso(ix, row)
    return error_response(403, "access_denied", "Your company requires its own sign-in, "
                          "which is not available right now. Please contact your administrator.")
