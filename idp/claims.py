"""Which claims a merchant receives for which scopes (OpenID Connect Core 1.0 §5.4).

Standard scopes map to the standard claims of §5.1; ``wallet`` releases the corporate
wallet (cost centre, personnel number and the extra fields the employee's business unit
defines, under ``wallet_fields``); ``org`` releases the business unit and the
employee's roles there. Claims without a value are left out, never sent empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from idp.store import claims_repo
from idp.store.models import Account, Membership

SCOPE_CLAIMS: dict[str, list[str]] = {
    "openid": ["sub"],
    "profile": ["name", "given_name", "family_name", "locale", "updated_at"],
    "email": ["email", "email_verified"],
    "phone": ["phone_number"],
    "wallet": ["cost_centre", "personnel_number", "wallet_fields"],
    "org": ["org_id", "org_name", "roles"],
    "offline_access": [],
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


def membership_for(account_id: str, unit_id: str | None) -> Membership | None:
    """The membership of ``unit_id``; without a unit, the only membership (None when
    the account belongs to several units and none was chosen)."""
    rows = claims_repo.memberships(account_id)
    if unit_id:
        return next((m for m in rows if m.unit_id == unit_id), None)
    return rows[0] if len(rows) == 1 else None


def released_claims(account: Account, scopes: Iterable[str], unit_id: str | None) -> dict[str, Any]:
    """The claims of ``account`` released for ``scopes``: always ``sub`` (the stable
    account id), plus the claims of every granted scope that have a value."""
    wanted = set(scopes)
    out: dict[str, Any] = {"sub": account.id}
    if "profile" in wanted:
        _put(out, "name", account.name)
        _put(out, "given_name", account.given_name)
        _put(out, "family_name", account.family_name)
        _put(out, "locale", account.locale)
        if account.updated_at is not None:
            out["updated_at"] = int(account.updated_at.timestamp())
    if "email" in wanted:
        out["email"] = account.email
        out["email_verified"] = bool(account.email_verified)
    if "phone" in wanted:
        _put(out, "phone_number", account.phone_number)
    membership = None
    if wanted & {"wallet", "org"}:
        membership = membership_for(account.id, unit_id)
    if "wallet" in wanted:
        _put(out, "cost_centre", account.cost_centre)
        _put(out, "personnel_number", account.personnel_number)
        if membership is not None:
            fields = _wallet_fields(account, membership.unit_id)
            if fields:
                out["wallet_fields"] = fields
    if "org" in wanted and membership is not None:
        out["org_id"] = membership.unit_id
        out["org_name"] = membership.unit.name
        out["roles"] = list(membership.roles or [])
    return out


def _wallet_fields(account: Account, unit_id: str) -> dict[str, Any]:
    """The unit-defined extra fields with a value; ``Account.extra`` maps field name to
    value."""
    extra = account.extra or {}
    return {
        name: extra[name]
        for name in claims_repo.profile_field_names(unit_id)
        if extra.get(name) not in (None, "")
    }


def _put(out: dict[str, Any], name: str, value: Any) -> None:
    if value not in (None, ""):
        out[name] = value
