"""Who the assertion is about: the NameID per SP (saml-core 8.3) and the
authentication context class (saml-authn-context).

* ``persistent`` (default): pairwise, a keyed hash of the account id and the SP's
  entity ID; two merchants cannot correlate an employee by it, and it never changes
  for one merchant.
* ``email``: the account's e-mail address.
* ``transient``: a fresh random value for every assertion.
"""

from __future__ import annotations

from idp.crypto.primitives import random_token
from idp.saml.assertion import Subject
from idp.saml.constants import (
    AC_PASSWORD_PROTECTED,
    AC_REFEDS_MFA,
    AC_UNSPECIFIED,
    NAMEID_EMAIL,
    NAMEID_FORMATS,
    NAMEID_PERSISTENT,
    NAMEID_TRANSIENT,
)
from idp.services import hasher
from idp.store.models import Account, SamlServiceProvider


def format_uri(sp: SamlServiceProvider) -> str:
    """The NameID format URI configured for ``sp``."""
    return NAMEID_FORMATS.get(sp.nameid_format, NAMEID_PERSISTENT)


def pairwise_id(account_id: str, sp_entity_id: str) -> str:
    """The persistent pairwise NameID of an account at one SP."""
    return hasher().hash(f"{account_id}|{sp_entity_id}", "saml-persistent-nameid")


def subject_for(sp: SamlServiceProvider, account: Account, idp_entity_id: str) -> Subject:
    """The NameID of ``account`` for ``sp``."""
    fmt = format_uri(sp)
    if fmt == NAMEID_EMAIL:
        if account.email is None:  # the SSO endpoint answers InvalidNameIDPolicy first
            raise ValueError("the account has no e-mail address for an e-mail NameID")
        return Subject(account.email, fmt)
    if fmt == NAMEID_TRANSIENT:
        return Subject("_" + random_token(24), fmt, idp_entity_id, sp.entity_id)
    return Subject(pairwise_id(account.id, sp.entity_id), fmt, idp_entity_id, sp.entity_id)


MFA_METHODS = {"otp", "hwk", "swk", "fido", "webauthn", "mfa"}


def authn_context(amr: list[str]) -> str:
    """The AuthnContextClassRef for the methods of the login (RFC 8176 ``amr``):
    REFEDS MFA for two factors, PasswordProtectedTransport for a password (LDAP),
    ``unspecified`` for an e-mail code or an upstream SSO login."""
    methods = set(amr)
    if (
        "mfa" in methods
        or len(methods & MFA_METHODS) >= 2
        or ("pwd" in methods and methods & MFA_METHODS)
    ):
        return AC_REFEDS_MFA
    if "pwd" in methods:
        return AC_PASSWORD_PROTECTED
    return AC_UNSPECIFIED
