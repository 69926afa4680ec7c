"""The console's audit log of a unit (``/admin/units/<unit>/audit``, ``audit.read``):
the events of the unit and its sub-units in the order they were committed, filtered
by action (a prefix ending in ``.``), actor kind and days, paged by sequence number
(:func:`idp.audit.search`, the administration API's reading)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp import audit
from idp.console import nav
from idp.console.accesses import clean
from idp.console.blueprint import bp
from idp.console.guard import UnitPage, unit_page
from idp.units import registry as units

PERMISSION = "audit.read"
PAGE = 50
MAX_SEQ = 2**63 - 1

nav.register("audit", _l("Audit log"), "console.audit_log", PERMISSION, order=80)


def _day(text: str | None) -> datetime | None:
    if not text or len(text) > 10:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


def _filters(args: Any) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The search's filters, the values to show again, and field errors."""
    shown = {
        k: clean(args.get(k), 100) for k in ("action", "actor_kind", "since", "until")
    }
    errors: dict[str, str] = {}
    kind = shown["actor_kind"] or None
    if kind is not None and kind not in audit.KINDS:
        errors["actor_kind"] = _("Choose a kind of actor from the list.")
        kind = None
    since, until = _day(shown["since"]), _day(shown["until"])
    if shown["since"] and since is None:
        errors["since"] = _("Enter a date as YYYY-MM-DD.")
    if shown["until"] and until is None:
        errors["until"] = _("Enter a date as YYYY-MM-DD.")
    filters = {
        "action": shown["action"] or None,
        "actor_kind": kind,
        "since": since,
        "until": until + timedelta(days=1) if until else None,
    }
    return filters, shown, errors


@bp.get("/units/<unit>/audit")
@unit_page(PERMISSION)
def audit_log(page: UnitPage) -> Response:
    """One page of the unit's events (oldest first from the cursor ``after``)."""
    filters, shown, errors = _filters(request.args)
    try:
        after = max(0, min(int(request.args.get("after", "0")[:20] or 0), MAX_SEQ))
    except ValueError:
        after = 0
    scope = {page.unit.id, *units.descendant_ids(page.unit.id)}
    rows = audit.search(
        after,
        PAGE + 1,
        scope,
        filters["actor_kind"],
        None,
        filters["action"],
        filters["since"],
        filters["until"],
    )
    more = len(rows) > PAGE
    rows = list(rows[:PAGE])
    next_args = (
        {**{k: v for k, v in shown.items() if v}, "after": str(rows[-1].seq)}
        if more and rows
        else None
    )
    return page.render(
        "console/audit.html",
        current="audit",
        events=rows,
        shown=shown,
        filter_errors=errors,
        kinds=audit.KINDS,
        next_args=next_args,
    )
