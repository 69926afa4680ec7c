"""The unit's accesses in the console: the list with its filter bar and keyset pages
(:func:`idp.accounts.access_admin.page`, :data:`PAGE_SIZE` rows, one query plus the
guard's), the same service the administration API lists with."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_babel import lazy_gettext as _l

from idp.accounts import access_admin
from idp.console import nav
from idp.console.blueprint import bp
from idp.console.guard import UnitPage, unit_page
from idp.store.access_lists_repo import Filter
from idp.store.models import AccessStatus
from idp.units import registry as units

PAGE_SIZE = 50
MAX_Q = 100
MAX_ID = 64

STATUS_LABELS: dict[str, Any] = {
    AccessStatus.INVITED.value: _l("Invited"),
    AccessStatus.ACTIVE.value: _l("Active"),
    AccessStatus.SUSPENDED.value: _l("Suspended"),
    AccessStatus.REMOVED.value: _l("Removed"),
}
ROLE_LABELS: dict[str, Any] = {
    "main_user": _l("Main user"),
    "commercial_contact": _l("Commercial contact"),
    "operational_contact": _l("Operational contact"),
    "employee": _l("Employee"),
}

nav.register("accesses", _l("Accesses"), "console.accesses", "users.read", order=10)


def role_label(role: str) -> str:
    """A built-in role in the reader's language; a permission group by its name."""
    return str(ROLE_LABELS.get(role, role))


def list_filter(page: UnitPage, args: Any) -> tuple[Filter, dict[str, str]]:
    """The list's filter from the query string (values outside the choices are
    ignored) and the values to show in the filter bar."""
    status = args.get("status", "")
    status = status if status in STATUS_LABELS else ""
    role = args.get("role", "")
    role = role if role in units.roles_for(page.unit) else ""
    q = args.get("q", "").strip()[:MAX_Q].replace("\x00", "")
    f = Filter(
        unit_ids=frozenset({page.unit.id}), status=status or None, role=role or None,
        q=q or None,
    )
    return f, {"status": status, "role": role, "q": q}


def _after(page: UnitPage, value: str) -> tuple[str | None, str] | None:
    """The keyset after the access ``value`` of this unit (the last row shown)."""
    if not value or len(value) > MAX_ID or not value.isalnum():
        return None
    try:
        row = access_admin.get(page.unit.id, value)
    except access_admin.Refused:
        return None
    return (row.account.email, row.id)


@bp.get("/units/<unit>/accesses")
@unit_page("users.read")
def accesses(page: UnitPage) -> Response:
    """The list: filter bar (status, role, text), :data:`PAGE_SIZE` per page in
    address order (``?after=<access id>`` continues), one row per access."""
    f, shown = list_filter(page, request.args)
    rows, more = access_admin.page(f, _after(page, request.args.get("after", "")), PAGE_SIZE)
    return page.render(
        "console/accesses.html", current="accesses", rows=rows, more=more, filters=shown,
        statuses=STATUS_LABELS, roles=units.roles_for(page.unit), role_label=role_label,
        next_after=rows[-1].id if more and rows else None,
    )
