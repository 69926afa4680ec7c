"""Which claims a merchant receives for which scopes (OpenID Connect Core 1.0 §5.4).

Standard scopes map to the standard claims of §5.1; ``wallet`` releases the employer
facts of the unit chosen for the sign-in (cost centre, personnel number and the extra
fields that unit defines, under ``wallet_fields``), read from the person's access to
that unit; ``org`` releases that unit and the person's roles there. Only a granting
access (active, not ended) releases anything; without a chosen unit (several
accesses, none chosen) neither scope releases anything. ``purchases`` releases the
buyer's budget, approval threshold and payment methods in the chosen unit
(:mod:`idp.purchases.offer`).
Claims without a value are left out, never sent empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from idp.purchases import offer
from idp.release import items
from idp.store import claims_repo
from idp.store.models import Access, Account, utcnow
from idp.units import field_types

SCOPE_CLAIMS: dict[str, list[str]] = {
    "openid": ["sub"],
    "profile": ["name", "given_name", "family_name", "locale", "updated_at"],
    "email": ["email", "email_verified"],
    "phone": ["phone_number"],
    "wallet": ["cost_centre", "personnel_number", "wallet_fields"],
    "org": ["org_id", "org_name", "roles"],
    "offline_access": [],
    "purchases": ["budget", "approval_required_above", "payment_methods"],
}

SUPPORTED_SCOPES: tuple[str, ...] = tuple(SCOPE_CLAIMS)
SUPPORTED_CLAIMS: tuple[str, ...] = tuple(
    dict.fromkeys(claim for claims in SCOPE_CLAIMS.values() for claim in claims)
)


def claims_for_scopes(scopes: Iterable[str]) -> list[str]:
    """Claim names released for ``scopes`` (unknown scopes release nothing), in a
    stable order without duplicates."""
    wanted = set(scopes)
    return [
        claim
        for scope, claims in SCOPE_CLAIMS.items()
        if scope in wanted
        for claim in claims
    ]


def access_for(account_id: str, unit_id: str | None) -> Access | None:
    """The granting access (active, not ended) to ``unit_id``; without a unit, the
    only granting access (None when the account has several and none was chosen). A
    suspended or ended access releases nothing."""
    now = utcnow()
    rows = [a for a in claims_repo.accesses(account_id) if a.grants(now)]
    if unit_id:
        return next((m for m in rows if m.unit_id == unit_id), None)
    return rows[0] if len(rows) == 1 else None


def released_claims(
    account: Account, scopes: Iterable[str], unit_id: str | None, withheld: Iterable[str] = ()
) -> dict[str, Any]:
    """The claims of ``account`` released for ``scopes``: always ``sub`` (the stable
    account id), plus the claims of every granted scope that have a value, without
    the items the employee's consent left out (``withheld``, :mod:`idp.release.items`)."""
    wanted = set(scopes)
    out: dict[str, Any] = {"sub": account.id}
    if "profile" in wanted:
        _put(out, "name", account.name)
        _put(out, "given_name", account.given_name)
        _put(out, "family_name", account.family_name)
        _put(out, "locale", account.locale)
        if account.updated_at is not None:
            out["updated_at"] = int(account.updated_at.timestamp())
    if "email" in wanted and account.email is not None:  # none: omitted, not null
        out["email"] = account.email
        out["email_verified"] = bool(account.email_verified)
    if "phone" in wanted:
        _put(out, "phone_number", account.phone_number)
    access = None
    if wanted & {"wallet", "org"}:
        access = access_for(account.id, unit_id)
    if "wallet" in wanted and access is not None:  # the chosen unit's facts only
        _put(out, "cost_centre", access.cost_centre)
        _put(out, "personnel_number", access.personnel_number)
        fields = _wallet_fields(access)
        if fields:
            out["wallet_fields"] = fields
    if "org" in wanted and access is not None:
        out["org_id"] = access.unit_id
        out["org_name"] = access.unit.name
        out["roles"] = list(access.roles or [])
    if "purchases" in wanted:  # queries only with the scope (issue 17)
        out.update(offer.claims(account.id, unit_id))
    return items.leave_out(out, withheld)


def _wallet_fields(access: Access) -> dict[str, Any]:
    """The unit-defined extra fields with a value, from the access to that unit
    (``Access.extra`` maps field name to value), each as its typed value
    (:func:`idp.units.field_types.claim_value`: a number as a JSON number, money as
    ``{"amount": "12.50", "currency": "EUR"}``, a date as an ISO string); a stored
    value that does not fit its field's type is left out."""
    extra = access.extra or {}
    out: dict[str, Any] = {}
    for field in claims_repo.profile_fields(access.unit_id):
        value = field_types.claim_value(field, extra.get(field.name))
        if value is not None:
            out[field.name] = value
    return out


def _put(out: dict[str, Any], name: str, value: Any) -> None:
    if value not in (None, ""):
        out[name] = value
