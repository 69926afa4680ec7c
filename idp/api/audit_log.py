"""Reading the audit log: the whole log (operator) and a unit's (the unit and its
sub-units), paged by the events' sequence numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from idp import audit
from idp.api import bp, pages
from idp.api.endpoint import Call, endpoint
from idp.api.pages import Page, PageQuery
from idp.api.types import Instant
from idp.units import registry as units


class AuditQuery(PageQuery):
    """Filters of the audit log."""

    model_config = ConfigDict(extra="forbid")

    actor_kind: str | None = Field(
        None, max_length=20, description="account, staff, client, scim..."
    )
    actor_id: str | None = Field(None, max_length=200)
    action: str | None = Field(
        None, max_length=100, description="An action, or a prefix ending in '.' (access.)"
    )
    since: Instant | None = Field(None, description="At or after this instant")
    until: Instant | None = Field(None, description="Before this instant")


class AuditActor(BaseModel):
    kind: str
    id: str | None
    on_behalf_of: str | None
    display: str


class AuditEventOut(BaseModel):
    """One event; details name what changed, not personal values."""

    seq: int
    id: str
    at: datetime
    actor: AuditActor
    unit_id: str | None
    action: str
    target: str | None
    details: dict[str, Any]
    request_id: str | None


def _page(query: AuditQuery, unit_ids: set[str] | None) -> Page[AuditEventOut]:
    key = pages.decode(query.cursor, (int,))
    after = key[0] if key else 0
    rows = audit.search(
        after, query.limit + 1, unit_ids, query.actor_kind, query.actor_id, query.action,
        query.since, query.until,
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = [AuditEventOut.model_validate(audit.describe(row)) for row in rows]
    cursor = pages.encode([rows[-1].seq]) if more and rows else None
    return Page[AuditEventOut](items=items, next_cursor=cursor, total=None)


@endpoint(
    bp, "GET", "/audit", summary="The whole audit log", tag="audit", query=AuditQuery,
    response=Page[AuditEventOut],
)
def list_audit(call: Call) -> Page[AuditEventOut]:
    """Every unit's events and the platform's own, oldest first. Operator only
    (an operator client or the system): needs `audit.read` platform-wide."""
    call.require("audit.read", None)
    return _page(call.query, None)


@endpoint(
    bp, "GET", "/units/{unit_id}/audit", summary="A unit's audit log", tag="audit",
    query=AuditQuery, response=Page[AuditEventOut], permission="audit.read",
)
def list_unit_audit(call: Call, unit_id: str) -> Page[AuditEventOut]:
    """The events of the unit and its sub-units, oldest first."""
    return _page(call.query, {unit_id, *units.descendant_ids(unit_id)})
