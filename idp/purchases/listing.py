"""Lists of purchases: the employee's own (dashboard), a unit's for its admins (API,
paged) and the CSV export (streamed in pages, cells defused against spreadsheet
formulas)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from idp.purchases import money
from idp.release import clients
from idp.rights import Actor
from idp.store import purchases_repo
from idp.store.models import Approval, Purchase
from idp.units import registry

EXPORT_PAGE = 500
CSV_COLUMNS = ("id", "created_at", "status", "reason", "order_ref", "amount", "currency",
               "merchant", "account_id", "unit_id")


@dataclass(frozen=True)
class Filters:
    """A unit's list: ``sub_units`` includes the units below; the other filters
    narrow it."""

    status: str | None = None
    account_id: str | None = None
    client_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    sub_units: bool = False


def merchant_name(client_id: str) -> str:
    info = clients.lookup(client_id)
    return info.name if info is not None else client_id


def describe(row: Purchase) -> dict[str, Any]:
    """A purchase as a unit's admins see it."""
    return {
        "id": row.id, "unit_id": row.unit_id, "account_id": row.account_id,
        "client_id": row.client_id, "merchant": merchant_name(row.client_id),
        "order_ref": row.order_ref, "status": row.status, "reason": row.reason,
        "amount": money.format_minor(row.amount_minor, row.currency), "currency": row.currency,
        "lines": list(row.lines or []), "created_at": row.created_at, "updated_at": row.updated_at,
    }


def _unit_ids(unit_id: str, sub_units: bool) -> list[str]:
    return [unit_id, *sorted(registry.descendant_ids(unit_id))] if sub_units else [unit_id]


def unit_page(
    unit_id: str, f: Filters, before: tuple[datetime, str] | None, limit: int
) -> list[Purchase]:
    """One page of the unit's purchases, newest first (the caller authorised)."""
    return purchases_repo.purchases_page(
        unit_ids=_unit_ids(unit_id, f.sub_units), account_id=f.account_id, status=f.status,
        client_id=f.client_id, since=f.since, until=f.until, before=before, limit=limit,
    )


def export_rows(unit_id: str, f: Filters) -> Iterator[list[str]]:
    """Every matching purchase as CSV cells (header first), read page by page; the
    writer defuses them (:func:`idp.web.spreadsheet.csv_lines`)."""
    yield list(CSV_COLUMNS)
    before: tuple[datetime, str] | None = None
    while True:
        rows = unit_page(unit_id, f, before, EXPORT_PAGE)
        for row in rows:
            d = describe(row)
            yield [d["created_at"].isoformat() if c == "created_at" else d[c]
                   for c in CSV_COLUMNS]
        if len(rows) < EXPORT_PAGE:
            return
        before = (rows[-1].created_at, rows[-1].id)


def mine(account_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The person's newest purchases for the dashboard."""
    return [describe(r) for r in purchases_repo.purchases_page(account_id=account_id,
                                                               limit=limit)]


def waiting_for(account_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """Orders waiting for this person's approval (in the units where they hold
    ``approvals.decide``), newest first; never their own orders."""
    from idp.accounts.access_admin import units_where

    where = units_where(Actor.account(account_id), "approvals.decide")
    if not where:
        return []
    out = []
    rows: list[Approval] = purchases_repo.pending_approvals(where, limit)
    for row in rows:
        purchase = purchases_repo.purchase(row.purchase_id)
        if purchase is None or purchase.account_id == account_id:
            continue
        if not _step_is_theirs(account_id, row, purchase):
            continue  # a chain's step for someone else (the manager, a group)
        out.append({"approval_id": row.id, "expires_at": row.expires_at, **describe(purchase)})
    return out


def _step_is_theirs(account_id: str, row: Approval, purchase: Purchase) -> bool:
    from idp.purchases import approvals
    from idp.purchases.budgets import chain

    unit = purchases_repo.unit(row.unit_id)
    if unit is None:
        return False
    return approvals.may_decide(account_id, purchase, chain(unit),
                                approvals.current_kind(row)[1])
