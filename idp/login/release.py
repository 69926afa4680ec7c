"""What a merchant will receive: the claims of the requested scopes (OpenID Connect
Core 1.0 §5.4, plus Unitgate's ``wallet`` and ``org``) and individually requested
claims (§5.5), with the employee's actual values, grouped by scope for the consent
page. Claims without a value are not released and not listed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.accounts import lifecycle as accounts
from idp.i18n import LANGUAGE_NAMES
from idp.interaction.pending import Interaction
from idp.release.claims import SCOPE_CLAIMS, SUPPORTED_CLAIMS, claims_for_scopes, released_claims
from idp.store.models import Account

SCOPE_TITLES = {
    "openid": _l("Sign-in identifier"),
    "profile": _l("Your name and profile"),
    "email": _l("Your e-mail address"),
    "phone": _l("Your phone number"),
    "wallet": _l("Your corporate wallet"),
    "org": _l("Your company and roles"),
    "offline_access": _l("Stay connected while you are away"),
}
CLAIM_LABELS = {
    "sub": _l("A pseudonymous identifier of your account"),
    "name": _l("Full name"),
    "given_name": _l("Given name"),
    "family_name": _l("Family name"),
    "locale": _l("Language"),
    "updated_at": _l("Last profile change"),
    "email": _l("E-mail address"),
    "email_verified": _l("E-mail address confirmed"),
    "phone_number": _l("Phone number"),
    "cost_centre": _l("Cost centre"),
    "personnel_number": _l("Personnel number"),
    "org_id": _l("Company identifier"),
    "org_name": _l("Company"),
    "roles": _l("Roles"),
}
NO_VALUE_SHOWN = {"sub"}


@dataclass
class Item:
    label: str
    value: str | None


@dataclass
class Group:
    scope: str
    title: str
    items: list[Item] = field(default_factory=list)


@dataclass
class Release:
    groups: list[Group]
    claim_names: list[str]  # every claim name the merchant asked for


def _show(name: str, value: Any) -> str:
    if name == "email_verified":
        return _("yes") if value else _("no")
    if name == "locale":
        return LANGUAGE_NAMES.get(str(value), str(value))
    if name == "updated_at":
        return format_datetime(datetime.fromtimestamp(int(value), UTC), "medium")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _scope_of(claim: str) -> str:
    return next((s for s, names in SCOPE_CLAIMS.items() if claim in names), "openid")


def release_for(ix: Interaction, account: Account) -> Release:
    """The groups of fields ``ix``'s merchant will receive from ``account`` in the
    chosen unit, and the names of all claims it asked for."""
    requested = list(
        dict.fromkeys(
            [*claims_for_scopes(ix.scopes), *(c for c in ix.claims if c in SUPPORTED_CLAIMS)]
        )
    )
    scopes = [s for s in SCOPE_CLAIMS if s in ix.scopes]
    for claim in requested:
        scope = _scope_of(claim)
        if scope not in scopes:
            scopes.append(scope)
    # Only the scopes listed here are read (no membership or wallet queries for a
    # merchant that asked for neither); every requested claim's scope is among them.
    values = released_claims(account, scopes, ix.unit_id)
    labels: dict[str, str] = (
        {f.name: f.label for f in accounts.unit_fields(account.id)}
        if "wallet_fields" in requested and "wallet_fields" in values
        else {}
    )
    groups: list[Group] = []
    for scope in scopes:
        group = Group(scope, str(SCOPE_TITLES.get(scope, scope)))
        for claim in SCOPE_CLAIMS[scope]:
            if claim not in requested or claim not in values:
                continue
            if claim == "wallet_fields":
                wallet: dict[str, Any] = dict(values[claim])
                for name, value in wallet.items():
                    group.items.append(Item(labels.get(name, name), str(value)))
                continue
            shown = None if claim in NO_VALUE_SHOWN else _show(claim, values[claim])
            group.items.append(Item(str(CLAIM_LABELS.get(claim, claim)), shown))
        if group.items or not SCOPE_CLAIMS[scope]:
            groups.append(group)
    return Release(groups=groups, claim_names=requested)
