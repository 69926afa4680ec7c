"""What a merchant will receive: the claims of the requested scopes (OpenID Connect
Core 1.0 §5.4, plus Unitgate's ``wallet`` and ``org``) and individually requested
claims (§5.5), with the employee's actual values, grouped by scope for the consent
page. Claims without a value are not released and not listed.

Each listed item is *required* by the merchant (marked, with the reason) or
*optional*: a ticked box the employee may untick to leave it out
(:mod:`idp.release.items`); the choice is stored with the consent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.accounts import lifecycle as accounts
from idp.i18n import LANGUAGE_NAMES, current_language, format_when
from idp.interaction.pending import Interaction
from idp.release import consent, items
from idp.release.claims import SCOPE_CLAIMS, SUPPORTED_CLAIMS, claims_for_scopes, released_claims
from idp.store.models import Account
from idp.units import field_types

SCOPE_TITLES = {
    "openid": _l("Sign-in identifier"),
    "profile": _l("Your name and profile"),
    "email": _l("Your e-mail address"),
    "phone": _l("Your phone number"),
    "wallet": _l("Your corporate wallet"),
    "org": _l("Your company and roles"),
    "offline_access": _l("Stay connected while you are away"),
    "purchases": _l("Purchases on your company's account"),
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
    "wallet_fields": _l("Your company's own fields"),
    "budget": _l("Your budget left at your company"),
    "approval_required_above": _l("The amount above which an order needs approval"),
    "payment_methods": _l("The payment methods your company allows"),
}
NO_VALUE_SHOWN = {"sub", "budget", "approval_required_above", "payment_methods"}
# Released but not listed as data on the consent page: internal identifiers (the
# company's name stands for its id), metadata (when the profile last changed), and
# the full name when given and family name are listed anyway.
NOT_LISTED = {"org_id", "updated_at"}
# The built-in roles (idp.units.registry.BASE_ROLES) by their translated names; a
# unit's own permission groups are shown as they are named.
ROLE_LABELS = {
    "main_user": _l("Main user"),
    "commercial_contact": _l("Commercial contact"),
    "operational_contact": _l("Operational contact"),
    "employee": _l("Employee"),
}


def role_label(role: str) -> str:
    """The translated name of a built-in role, any other role as it is named."""
    label = ROLE_LABELS.get(role)
    return str(label) if label is not None else role


@dataclass
class Item:
    label: str
    value: str | None
    is_address: bool = False  # an e-mail address (kept on one line)
    key: str = ""  # the item (idp.release.items): a claim name or wallet:<name>
    required: bool = True  # the merchant requires it; else the employee may leave it out
    shared: bool = True  # ticked: released (an earlier choice may have left it out)


@dataclass
class Group:
    scope: str
    title: str
    items: list[Item] = field(default_factory=list)


@dataclass
class Release:
    groups: list[Group]
    claim_names: list[str]  # every claim name the merchant asked for

    @property
    def optional(self) -> list[str]:
        """The items the employee may leave out, as offered on the page."""
        return [i.key for g in self.groups for i in g.items if not i.required]

    @property
    def has_optional(self) -> bool:
        return bool(self.optional)


def _show(name: str, value: Any) -> str:
    if name == "email_verified":
        return _("yes") if value else _("no")
    if name == "locale":
        return LANGUAGE_NAMES.get(str(value), str(value))
    if name == "updated_at":
        return format_when(int(value))
    if name == "roles":
        return ", ".join(role_label(str(v)) for v in value or [])
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return field_types.saml_value(value)  # a typed unit field: 12.5, 12.50 EUR, 2026-12-31


def _scope_of(claim: str) -> str:
    return next((s for s, names in SCOPE_CLAIMS.items() if claim in names), "openid")


def release_for(
    ix: Interaction, account: Account, withheld: list[str] | None = None
) -> Release:
    """The groups of fields ``ix``'s merchant will receive from ``account`` in the
    chosen unit, and the names of all claims it asked for; each item marked required
    (:func:`idp.release.consent.required_items`) or optional, an optional one
    unticked when ``withheld`` (an earlier choice) leaves it out."""
    needed = consent.required_items(ix.merchant_id)
    gone = set(withheld or [])
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
    language = current_language()
    labels: dict[str, str] = (
        {f.name: field_types.label(f, language) for f in accounts.unit_fields(account.id)}
        if "wallet_fields" in requested and "wallet_fields" in values
        else {}
    )
    groups: list[Group] = []
    for scope in scopes:
        group = Group(scope, str(SCOPE_TITLES.get(scope, scope)))
        names_listed = {"given_name", "family_name"} <= set(requested) & set(values)
        for claim in SCOPE_CLAIMS[scope]:
            if claim not in requested or claim not in values or claim in NOT_LISTED:
                continue
            if claim == "name" and names_listed:
                continue
            if claim == "wallet_fields":
                wallet: dict[str, Any] = dict(values[claim])
                for name, value in wallet.items():
                    key = items.wallet_item(name)
                    required = claim in needed or key in needed
                    group.items.append(Item(
                        labels.get(name, name), _show(name, value), key=key,
                        required=required, shared=required or key not in gone,
                    ))
                continue
            shown = None if claim in NO_VALUE_SHOWN else _show(claim, values[claim])
            required = claim in needed
            group.items.append(Item(
                str(CLAIM_LABELS.get(claim, claim)), shown, is_address=claim == "email",
                key=claim, required=required, shared=required or claim not in gone,
            ))
        if group.items or not SCOPE_CLAIMS[scope]:
            groups.append(group)
    return Release(groups=groups, claim_names=requested)
