"""Authentication context classes (OIDC Core §2 ``acr``, §3.1.2.1 ``acr_values``;
saml-authn-context) and step-up.

Unitgate achieves one of two levels:

* :data:`ACR_EMAIL` - one factor: an e-mail code (or an LDAP password).
* :data:`ACR_MFA` - that plus a TOTP code (:mod:`idp.factors.totp`), or an upstream SSO
  login whose ``amr`` already says ``mfa``.

A merchant asks for the stronger one with ``acr_values`` (OIDC) or a
RequestedAuthnContext (SAML); the login then ends with a TOTP code even when no unit
requires it. ``acr`` is a voluntary claim (OIDC Core §5.5.1.1): values not in
:data:`SUPPORTED` are ignored, and asking only for :data:`ACR_EMAIL` forces nothing.
"""

from __future__ import annotations

ACR_EMAIL = "urn:unitgate:acr:email"
ACR_MFA = "urn:unitgate:acr:mfa"
SUPPORTED = (ACR_EMAIL, ACR_MFA)
AMR_FEDERATED = "fed"


def wants_mfa(acr_values: str | None) -> bool:
    """True when the space-separated ``acr_values`` (OIDC Core §3.1.2.1) names
    :data:`ACR_MFA`; unknown values and :data:`ACR_EMAIL` alone ask for nothing."""
    if not acr_values or not isinstance(acr_values, str):
        return False
    return ACR_MFA in acr_values.split()


def has_mfa(amr: list[str], acr: str | None = None) -> bool:
    """True when a login with methods ``amr`` (RFC 8176) and ``acr`` reached
    :data:`ACR_MFA`."""
    return "mfa" in amr or acr == ACR_MFA


def achieved(amr: list[str], acr: str | None = None) -> str | None:
    """The ``acr`` a login with methods ``amr`` reached: :data:`ACR_MFA` with a
    second factor, an explicit ``acr`` when given, :data:`ACR_EMAIL` for an e-mail
    code or password, and None for an upstream SSO login without ``mfa`` (the
    upstream IdP's level is not ours to name)."""
    if has_mfa(amr, acr):
        return ACR_MFA
    if acr:
        return acr
    if AMR_FEDERATED in amr or not amr:
        return None
    return ACR_EMAIL
