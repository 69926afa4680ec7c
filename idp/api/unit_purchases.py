"""A unit's purchases for its admins (issue 17, item 4): a paged, filtered list
(``budgets.manage``) and a CSV export (``exports.read``), streamed page by page with
every cell defused against spreadsheet formulas (:func:`idp.web.spreadsheet.csv_lines`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import Response, stream_with_context
from pydantic import BaseModel, ConfigDict, Field

from idp.api import bp, caller, pages
from idp.api.endpoint import PATH_PARAM_RE, Call, _query, authorize, endpoint
from idp.api.pages import MAX_CURSOR, Page
from idp.api.problems import Problem
from idp.api.types import Instant
from idp.purchases import listing
from idp.purchases.listing import Filters
from idp.web.spreadsheet import csv_lines

Status = Literal["approved", "pending_approval", "refused", "confirmed", "cancelled"]


class PurchaseFilter(BaseModel):
    """Filters of a unit's purchases."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    account_id: str | None = Field(None, max_length=32)
    client_id: str | None = Field(None, max_length=100, description="The merchant's client")
    since: Instant | None = Field(None, description="Created at or after")
    until: Instant | None = Field(None, description="Created before")
    sub_units: bool = Field(False, description="Include the units below")


class PurchaseListQuery(PurchaseFilter):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=MAX_CURSOR)


class UnitPurchaseOut(BaseModel):
    """A purchase as the unit's admins see it."""

    id: str
    unit_id: str
    account_id: str
    client_id: str
    merchant: str
    order_ref: str
    status: str
    reason: str | None
    amount: str
    currency: str
    lines: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


def _filters(q: PurchaseFilter) -> Filters:
    return Filters(status=q.status, account_id=q.account_id, client_id=q.client_id,
                   since=q.since, until=q.until, sub_units=q.sub_units)


@endpoint(
    bp, "GET", "/units/{unit_id}/purchases", summary="List the unit's purchases",
    tag="budgets", query=PurchaseListQuery, response=Page[UnitPurchaseOut],
    permission="budgets.manage",
)
def list_unit_purchases(call: Call, unit_id: str) -> Page[UnitPurchaseOut]:
    """Newest first, filtered; `sub_units` includes the units below. The CSV of the
    same list: `GET /units/{unit_id}/purchases.csv` (needs `exports.read`)."""
    q: PurchaseListQuery = call.query
    key = pages.decode(q.cursor, (str, str))
    before = None
    if key and key[0] is not None and key[1] is not None:
        try:
            before = (datetime.fromisoformat(key[0]), key[1])
        except ValueError as exc:
            raise Problem(400, "invalid_cursor", "The cursor is not one this list gave.") from exc
    rows = listing.unit_page(unit_id, _filters(q), before, q.limit + 1)
    more, rows = len(rows) > q.limit, rows[: q.limit]
    cursor = pages.encode([rows[-1].created_at.isoformat(), rows[-1].id]) if more else None
    return Page[UnitPurchaseOut](
        items=[UnitPurchaseOut.model_validate(listing.describe(r)) for r in rows],
        next_cursor=cursor,
    )


@bp.route("/units/<unit_id>/purchases.csv", methods=["GET"])
def export_unit_purchases(unit_id: str) -> Response:
    """The unit's purchases as CSV (the list's filters), streamed."""
    if len(unit_id) > 64 or not PATH_PARAM_RE.match(unit_id):
        raise Problem(404, "not_found", "No such unit.")
    actor = caller.authenticate()
    authorize(actor, "exports.read", unit_id)
    q: PurchaseFilter = _query(PurchaseFilter)  # type: ignore[assignment]
    f = _filters(q)

    lines = csv_lines(listing.export_rows(unit_id, f), bom=True)
    resp = Response(stream_with_context(lines), mimetype="text/csv")
    resp.headers["Content-Disposition"] = 'attachment; filename="purchases.csv"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


