"""RequestedAuthnContext of an AuthnRequest (saml-core 3.3.2.2.1) and step-up.

Unitgate reaches three strengths (:mod:`idp.factors.acr`): ``0`` an upstream SSO login
without ``mfa`` (``unspecified``), ``1`` an e-mail code or LDAP password
(``urn:unitgate:acr:email``, PasswordProtectedTransport), ``2`` with a TOTP code
(``urn:unitgate:acr:mfa``; ``TimeSyncToken`` and REFEDS MFA are taken as equal).
Class references outside :data:`LEVELS` have no known strength.

* ``exact`` / ``minimum``: met without step-up when one known reference has strength
  ``<= 1``; when all known ones are mfa, the login must end with TOTP; with no known
  reference the request cannot be met.
* ``better``: must be stronger than every reference: strength ``1`` at most asks
  for mfa, ``0`` for nothing; an mfa or unknown reference cannot be met.
* ``maximum``: met by any login when a reference is known.

A request that cannot be met is answered with the status ``NoAuthnContext``
(saml-core 3.2.2.2). AuthnContextDeclRef is not supported (no known strength).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp.factors import acr
from idp.saml.constants import (
    AC_PASSWORD_PROTECTED,
    AC_REFEDS_MFA,
    AC_TIME_SYNC_TOKEN,
    AC_UNSPECIFIED,
    NS_SAML,
    NS_SAMLP,
)
from idp.saml.xmlsafe import MalformedMessage

COMPARISONS = ("exact", "minimum", "maximum", "better")
MFA_REFS = (acr.ACR_MFA, AC_TIME_SYNC_TOKEN, AC_REFEDS_MFA)
LEVELS: dict[str, int] = {
    AC_UNSPECIFIED: 0,
    acr.ACR_EMAIL: 1,
    AC_PASSWORD_PROTECTED: 1,
    **{ref: 2 for ref in MFA_REFS},
}
MAX_REFS = 20


@dataclass(frozen=True)
class Requested:
    """The comparison and the class references an SP asked for."""

    comparison: str
    refs: tuple[str, ...]

    def to_params(self) -> dict[str, Any]:
        """A JSON-safe form for the stored interaction."""
        return {"comparison": self.comparison, "refs": list(self.refs)}

    @classmethod
    def from_params(cls, value: Any) -> Requested | None:
        """The inverse of :meth:`to_params` (None for anything else)."""
        if not isinstance(value, dict):
            return None
        refs = value.get("refs")
        if not isinstance(refs, list) or value.get("comparison") not in COMPARISONS:
            return None
        return cls(str(value["comparison"]), tuple(str(r) for r in refs))


@dataclass(frozen=True)
class Decision:
    """Whether Unitgate can meet the request, and whether only with TOTP."""

    meetable: bool
    require_mfa: bool = False


def read(root: Any) -> Requested | None:
    """The RequestedAuthnContext of an AuthnRequest element, or None without one.
    Raises :class:`MalformedMessage` for an unknown Comparison or too many
    references."""
    element = root.find(f"{{{NS_SAMLP}}}RequestedAuthnContext")
    if element is None:
        return None
    comparison = element.get("Comparison") or "exact"
    if comparison not in COMPARISONS:
        raise MalformedMessage("unknown Comparison in RequestedAuthnContext")
    refs = [
        (child.text or "").strip()
        for child in element.findall(f"{{{NS_SAML}}}AuthnContextClassRef")
    ]
    if len(refs) > MAX_REFS:
        raise MalformedMessage("too many AuthnContextClassRef elements")
    return Requested(comparison, tuple(r for r in refs if r))


def decide(requested: Requested | None) -> Decision:
    """What ``requested`` means for the login (see the module docstring)."""
    if requested is None:
        return Decision(True)
    known = [LEVELS[r] for r in requested.refs if r in LEVELS]
    if requested.comparison == "better":
        if not known or len(known) < len(requested.refs) or max(known) >= 2:
            return Decision(False)
        return Decision(True, require_mfa=max(known) >= 1)
    if not known:
        return Decision(False)
    if requested.comparison == "maximum":
        return Decision(True)
    return Decision(True, require_mfa=min(known) >= 2)


def achieved_level(amr: list[str]) -> int:
    """The strength a login with methods ``amr`` reached (0, 1 or 2)."""
    reached = acr.achieved(amr)
    return 2 if reached == acr.ACR_MFA else 1 if reached == acr.ACR_EMAIL else 0


def met(requested: Requested | None, amr: list[str]) -> bool:
    """True when a login with methods ``amr`` satisfies ``requested``."""
    decision = decide(requested)
    if not decision.meetable:
        return False
    return not decision.require_mfa or achieved_level(amr) == 2


def class_ref(requested: Requested | None, amr: list[str], default: str) -> str:
    """The AuthnContextClassRef for the assertion: the SP's own reference for the
    strength reached when it asked for one of that strength (so ``TimeSyncToken``
    comes back as ``TimeSyncToken``), otherwise ``default``."""
    if requested is not None:
        level = achieved_level(amr)
        for ref in requested.refs:
            if LEVELS.get(ref) == level:
                return ref
    return default
