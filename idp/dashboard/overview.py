"""What the dashboard shows about one account: its companies, its sign-ins at
merchants (the transactions, newest first, a page at a time) and its consents, with
merchant names and claim labels resolved for display. Every query is keyed on the
account id of the caller's own session; nothing here takes another account's id
from the request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l

from idp.accounts import lifecycle as accounts
from idp.i18n import current_language
from idp.login.release import CLAIM_LABELS, SCOPE_TITLES, role_label
from idp.login.release import NOT_LISTED as NOT_ON_CONSENT_PAGE
from idp.release import consent, items, merchants
from idp.store import consent_repo, dashboard_repo
from idp.store.models import Consent, UnitProfileField
from idp.units import field_types

PAGE_SIZE = 50
MAX_PAGE = 10_000


@dataclass
class SignInRow:
    merchant: str
    protocol: str  # "OpenID Connect" | "SAML"
    at: datetime
    unit: str | None
    released: list[str]


@dataclass
class ConsentItem:
    """One item agreed to, as the dashboard's toggle shows it."""

    key: str  # idp.release.items: a claim name or wallet:<name>
    label: str
    required: bool  # the merchant requires it: shown, not a toggle
    shared: bool  # released (False: the employee left it out)


@dataclass
class ConsentRow:
    merchant_id: str
    merchant: str
    scopes: list[str]  # titles of the scopes agreed to
    claims: list[str]  # labels of the fields agreed to
    since: datetime
    items: list[ConsentItem] = field(default_factory=list)

    @property
    def optional(self) -> list[ConsentItem]:
        """The items the employee may switch on or off."""
        return [i for i in self.items if not i.required]

    @property
    def shared(self) -> list[str]:
        """What the merchant receives: the fields, or the scope titles without them."""
        return self.claims or self.scopes


@dataclass
class SignInPage:
    rows: list[SignInRow] = field(default_factory=list)
    page: int = 1
    has_older: bool = False

    @property
    def has_newer(self) -> bool:
        return self.page > 1


PROTOCOLS = {"oidc": "OpenID Connect", "saml": "SAML"}
# Always released, and says nothing about the employee: listing it is only noise.
NOT_LISTED = {"sub", "openid"}


def page_number(raw: str | None) -> int:
    """The requested page number (1 for anything that is not a sane positive int)."""
    if not raw or not raw.isdigit() or len(raw) > 6:
        return 1
    return min(max(1, int(raw)), MAX_PAGE)


def claim_label(name: str) -> str:
    """The translated label of a claim name (the name itself when unknown)."""
    label = CLAIM_LABELS.get(name)
    return str(label) if label is not None else name


def scope_title(name: str) -> str:
    """The translated title of a scope (the scope itself when unknown)."""
    title = SCOPE_TITLES.get(name)
    return str(title) if title is not None else name


def merchant_label(names: dict[str, merchants.MerchantName], merchant_id: str) -> str:
    """The merchant's name as listed; a merchant whose client or SP was deleted keeps
    its name, marked as no longer connected."""
    found = names.get(merchant_id)
    if found is None:
        return merchant_id
    if found.removed:
        return str(_l("%(name)s (no longer connected)", name=found.name))
    return found.name


def signins(account_id: str, page: int) -> SignInPage:
    """Page ``page`` (from 1) of the account's sign-ins, :data:`PAGE_SIZE` per page."""
    rows, has_older = dashboard_repo.signins_page(account_id, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    names = merchants.names(r.merchant_id for r in rows)
    units = dashboard_repo.unit_names(r.unit_id for r in rows)
    return SignInPage(
        rows=[
            SignInRow(
                merchant=merchant_label(names, r.merchant_id),
                protocol=PROTOCOLS.get(r.protocol, r.protocol),
                at=r.at,
                unit=units.get(r.unit_id or ""),
                released=[claim_label(c) for c in r.released or [] if c not in NOT_LISTED],
            )
            for r in rows
        ],
        page=page,
        has_older=has_older,
    )


def consents(account_id: str) -> list[ConsentRow]:
    """The account's consents, most recently changed first, each with its items
    (:func:`consent_items`)."""
    rows = consent_repo.for_account(account_id)
    names = merchants.names(r.merchant_id for r in rows)
    unit_fields = (
        accounts.unit_fields(account_id)
        if any("wallet_fields" in (r.claims or []) for r in rows) else []
    )
    return [
        ConsentRow(
            merchant_id=r.merchant_id,
            merchant=merchant_label(names, r.merchant_id),
            scopes=[scope_title(s) for s in r.scopes or [] if s not in NOT_LISTED],
            claims=[claim_label(c) for c in r.claims or [] if c not in NOT_LISTED],
            since=r.granted_at,
            items=consent_items(r, unit_fields),
        )
        for r in rows
    ]


def consent_items(row: Consent, unit_fields: list[UnitProfileField]) -> list[ConsentItem]:
    """The items of a consent as the consent page listed them: the claims agreed to
    (not the internal ones, the company's id stands behind its name; not the full
    name beside given and family name), each unit field of ``wallet_fields`` on its
    own, with the merchant's required ones marked and the left-out ones off."""
    needed = consent.required_items(row.merchant_id)
    gone = set(row.withheld or [])
    agreed = [c for c in row.claims or []
              if c not in NOT_LISTED and c not in NOT_ON_CONSENT_PAGE]
    if {"given_name", "family_name"} <= set(agreed):
        agreed = [c for c in agreed if c != "name"]
    language = current_language()
    out: list[ConsentItem] = []
    for claim in agreed:
        if claim == items.WALLET:
            for f in unit_fields:
                key = items.wallet_item(f.name)
                required = claim in needed or key in needed
                out.append(ConsentItem(key, field_types.label(f, language), required,
                                       required or key not in gone))
            continue
        required = claim in needed
        out.append(ConsentItem(claim, claim_label(claim), required, required or claim not in gone))
    return out


def companies(account_id: str) -> list[dict[str, Any]]:
    """The account's units with its roles in each (built-in roles translated), by
    unit name."""
    return [
        {"name": m.unit.name, "roles": [role_label(r) for r in m.roles or []],
         "unit_id": m.unit_id}
        for m in accounts.accesses(account_id)
    ]
