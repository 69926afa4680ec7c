"""The console's purchasing pages of a unit: budgets (``budgets.manage``: list, set,
remove), the orders waiting for the viewer's decision (approve, reject with a
reason), and the unit's purchases (``budgets.manage``, as the administration API's
list), through :mod:`idp.purchases.budgets`, :mod:`idp.purchases.approvals` and
:mod:`idp.purchases.listing`.

Who decides an order is the approvals service's rule (the step's approvers: holders of
``approvals.decide``, the buyer's manager, a named group; never the buyer): the
approvals page lists only the orders of this unit (and its sub-units) that wait for
the viewer, and a decision on any other is refused by the service as unknown."""

from __future__ import annotations

from flask import Response, abort, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.console import nav, time_cursor
from idp.console.accesses import clean, valid_id
from idp.console.blueprint import bp
from idp.console.guard import UnitPage, unit_page
from idp.purchases import approvals, budgets, listing
from idp.purchases.approvals import ApprovalError, Decision
from idp.purchases.budgets import BudgetError, BudgetInput
from idp.units import registry as units

BUDGETS = "budgets.manage"
DECIDE = "approvals.decide"
PAGE = 50
STATUSES = ("approved", "pending_approval", "refused", "confirmed", "cancelled")

nav.register("budgets", _l("Budgets"), "console.budgets", BUDGETS, order=90)
nav.register("approvals", _l("Approvals"), "console.approvals", DECIDE, order=91)
nav.register("purchases", _l("Purchases"), "console.purchases", BUDGETS, order=92)


@bp.get("/units/<unit>/budgets", endpoint="budgets")
@unit_page(BUDGETS)
def budgets_page(page: UnitPage) -> Response:
    rows = [budgets.describe(r) for r in budgets.list_budgets(page.actor, page.unit.id)]
    return page.render(
        "console/budgets.html",
        current="budgets",
        budgets=rows,
        roles=list(units.roles_for(page.unit)),
    )


@bp.post("/units/<unit>/budgets")
@unit_page(BUDGETS)
def budget_set(page: UnitPage) -> Response:
    """Create or replace a budget (one per scope and subject)."""
    form = request.form
    keep = {
        k: (form.get(k) or "").strip()[:320]
        for k in ("scope", "subject", "period", "amount", "currency", "per_order")
    }
    scope = keep["scope"] or "unit"
    data = BudgetInput(
        scope=scope,
        subject=keep["subject"] or None if scope != "unit" else None,
        period=keep["period"] or "month",
        amount=keep["amount"],
        currency=keep["currency"].upper(),
        per_order=keep["per_order"] or None,
        include_subunits=form.get("include_subunits") == "1",
    )
    try:
        budgets.set_budget(page.actor, page.unit.id, data)
    except BudgetError as exc:
        field = exc.field if exc.field in keep else "amount"
        page.remember(
            errors={field: _("The budget was not saved: %(why)s", why=exc.detail)}, values=keep
        )
        return page.see_other("console.budgets")
    page.remember(notice=_("The budget was saved."))
    return page.see_other("console.budgets")


@bp.post("/units/<unit>/budgets/<budget>/remove")
@unit_page(BUDGETS)
def budget_remove(page: UnitPage, budget: str) -> Response:
    if not valid_id(budget) or not budgets.remove_budget(page.actor, page.unit.id, budget):
        abort(404)
    page.remember(notice=_("The budget was removed."))
    return page.see_other("console.budgets")


def _waiting(page: UnitPage) -> list[dict[str, object]]:
    scope = {page.unit.id, *units.descendant_ids(page.unit.id)}
    return [a for a in listing.waiting_for(page.viewer.account.id, 200) if a["unit_id"] in scope]


@bp.get("/units/<unit>/approvals", endpoint="approvals")
@unit_page(DECIDE)
def approvals_page(page: UnitPage) -> Response:
    """The orders of the unit waiting for the viewer's decision."""
    return page.render("console/approvals.html", current="approvals", waiting=_waiting(page))


@bp.post("/units/<unit>/approvals/<approval>")
@unit_page(DECIDE)
def approval_decide(page: UnitPage, approval: str) -> Response:
    """Approve, or reject with a reason (``action``)."""
    if approval not in {str(a["approval_id"]) for a in _waiting(page)}:
        abort(404)
    action = request.form.get("action", "")
    reason = clean(request.form.get("reason"), 2000) or None
    if action not in ("approve", "reject"):
        abort(400)
    try:
        approvals.decide(page.viewer.account.id, approval, Decision(action=action, reason=reason))
    except ApprovalError as exc:
        if exc.code == "not_found":
            abort(404)
        if exc.code == "reason_required":
            page.remember(errors={f"reason-{approval}": _("Give a reason for the rejection.")})
        else:
            page.remember(
                errors={
                    f"reason-{approval}": _(
                        "The order could not be decided: %(why)s", why=exc.detail
                    )
                }
            )
        return page.see_other("console.approvals")
    page.remember(
        notice=_("The order was approved.") if action == "approve" else _("The order was rejected.")
    )
    return page.see_other("console.approvals")


@bp.get("/units/<unit>/purchases", endpoint="purchases")
@unit_page(BUDGETS)
def purchases_page(page: UnitPage) -> Response:
    """The unit's purchases, newest first (``status``, ``sub_units`` filters), paged."""
    status = request.args.get("status") or None
    if status not in STATUSES:
        status = None
    sub_units = request.args.get("sub_units") == "1"
    f = listing.Filters(status=status, sub_units=sub_units)
    rows = listing.unit_page(
        page.unit.id, f, time_cursor.decode(request.args.get("before")), PAGE + 1
    )
    rows, before = time_cursor.page_of(rows, PAGE)
    return page.render(
        "console/purchases.html",
        current="purchases",
        purchases=[listing.describe(r) for r in rows],
        chosen=status,
        sub_units=sub_units,
        statuses=STATUSES,
        before=before,
    )
