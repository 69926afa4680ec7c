"""The operator console's pages about who may do what (issue 14 item 2), with the
rules of the administration API (``idp/api/staff.py``):

* **Authorisations** of a customer (``users.read`` in it): every access of the
  customer and its sub-units with its roles, the staff assigned and the customer's
  administration API clients; checkboxes remove a selection in one transaction
  (:func:`idp.units.customers.remove_authorisations`, confirmed by a ticked box):
  each access needs ``users.manage`` in its unit, a staff assignment the operator's
  platform-wide rights.
* **Staff**: every staff member with the customers assigned to them; assign (as
  administrator or as processor with named permissions) and unassign
  (:mod:`idp.rights.staff`). The operator's platform-wide rights only.
* **Merchants**: the OpenID Connect clients and SAML service providers, list and
  detail, read-only (registering and changing them stays with ``idp clients`` and
  ``idp saml sps``). The operator's platform-wide rights only.

Every decision is :func:`idp.rights.may` / :func:`idp.rights.require`; POSTs carry the
CSRF token and answer 303."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, request, url_for
from flask_babel import gettext as _

from idp.console.accesses import clean
from idp.console.blueprint import bp
from idp.console.guard import Viewer
from idp.console.structure import PERMISSION_LABELS
from idp.console.views_operator import (
    MANAGE_PEOPLE,
    OPERATOR,
    READ,
    customer_for,
    customer_page,
    operator_page,
    selected,
)
from idp.release import clients
from idp.rights import NotPermitted, RightsError, may, require, staff
from idp.rights import admin_clients as admin_client_registry
from idp.rights.authorization import ADMINISTRATOR, PROCESSOR, audit_actor
from idp.rights.catalogue import PERMISSIONS
from idp.store import saml_repo
from idp.units import customers
from idp.units.customers import CustomerError
from idp.web.redirects import redirect

PAGE_SIZE = 100
MAX_KEY = 320


# -- a customer's authorisations -------------------------------------------------------


def _after() -> tuple[str | None, str] | None:
    email, access_id = request.args.get("after_email"), request.args.get("after_id")
    if not access_id or not access_id.isalnum() or len(access_id) > 64:
        return None
    if email is not None and (len(email) > MAX_KEY or "\x00" in email):
        return None
    return (email or None), access_id


@bp.get("/operator/customers/<customer_id>/authorisations")
@operator_page()
def customer_authorisations(viewer: Viewer, customer_id: str) -> Response:
    """Who can access what in the customer, a page of accesses at a time."""
    unit = customer_for(viewer, customer_id, READ)
    view = customers.authorisations(unit, _after(), PAGE_SIZE)
    next_args = None
    if view.more and view.accesses:
        last = view.accesses[-1]
        next_args = {"after_email": last["email"] or "", "after_id": last["id"]}
    tree = set(customers.tree_ids(unit))
    bound = [c for c in admin_client_registry.describe_all() if c["unit_id"] in tree]
    return customer_page(
        viewer, unit, "console/operator/authorisations.html", "authorisations", view=view,
        next_args=next_args, admin_clients=bound,
        operator=may(viewer.actor, OPERATOR, None),
        manage=may(viewer.actor, MANAGE_PEOPLE, unit.id),
    )


@bp.post("/operator/customers/<customer_id>/authorisations/remove")
@operator_page()
def customer_authorisations_remove(viewer: Viewer, customer_id: str) -> Response:
    """Remove the ticked accesses and staff assignments, all or nothing, once the
    confirmation box is ticked."""
    unit = customer_for(viewer, customer_id, READ)
    back = redirect(url_for("console.customer_authorisations", customer_id=unit.id),
                    code=303)
    access_ids, staff_ids = selected("access"), selected("staff")
    if not access_ids and not staff_ids:
        viewer.remember(errors={"authorisations": _("Select at least one authorisation.")})
        return back
    if request.form.get("confirm") != "yes":
        viewer.remember(errors={"confirm-removal": _("Tick the box to confirm the removal.")})
        return back
    if staff_ids and not may(viewer.actor, OPERATOR, None):
        abort(403)
    try:
        for unit_id in customers.units_of_accesses(unit, access_ids):
            require(viewer.actor, MANAGE_PEOPLE, unit_id)
    except NotPermitted:
        abort(403)
    try:
        results = customers.remove_authorisations(unit, access_ids, staff_ids,
                                                  audit_actor(viewer.actor))
    except CustomerError as exc:
        text = (_("The customer's last main user cannot be removed: give another person "
                  "the main user role first.") if exc.code == "last_main_user"
                else _("Something selected is no longer this customer's. Nothing was removed."))
        viewer.remember(errors={"authorisations": text})
        return back
    viewer.remember(notice=_("%(count)d authorisations removed.", count=len(results)))
    return back


# -- staff assignments -------------------------------------------------------------------


@bp.get("/operator/staff")
@operator_page(platform=True)
def operator_staff(viewer: Viewer) -> Response:
    """Every staff member and their customers, with the assign form."""
    members = staff.describe_all()
    names = {}
    for member in members:
        for row in member["assignments"]:
            found = customers.find(row["customer_id"])
            names[row["customer_id"]] = found.name if found else row["customer"]
    return viewer.render(
        "console/operator/staff.html", current="staff", members=members,
        customer_names=names, permissions=sorted(PERMISSIONS),
        permission_labels=PERMISSION_LABELS,
        kinds={ADMINISTRATOR: _("Administrator: every permission"),
               PROCESSOR: _("Processor: the permissions ticked below")},
    )


ASSIGN_ERRORS = {
    "not_found": "staff-email",
    "not_staff": "staff-email",
    "invalid_assignment": "permissions",
    "unknown_permission": "permissions",
}


@bp.post("/operator/staff/assign")
@operator_page(platform=True)
def operator_staff_assign(viewer: Viewer) -> Response:
    """Assign a staff member (by e-mail address) to a customer (by id or slug);
    replaces an earlier assignment to the same customer."""
    email = clean(request.form.get("staff-email"), 320)
    customer = clean(request.form.get("staff-customer"), 100)
    kind = request.form.get("kind", "")
    wanted = [p for p in request.form.getlist("permissions") if p in PERMISSIONS]
    values = {"email": email, "customer": customer, "kind": kind}
    back = redirect(url_for("console.operator_staff"), code=303)
    unit = customers.find(customer) if customer else None
    if unit is None:
        viewer.remember(errors={"staff-customer": _("No customer with this id or slug.")},
                        values=values)
        return back
    try:
        staff.assign(email, unit.id, kind, wanted if kind == PROCESSOR else [],
                     actor=audit_actor(viewer.actor).display)
    except RightsError as exc:
        if exc.code == "invalid_assignment":
            text = _("Choose administrator, or processor with at least one permission.")
        else:
            text = _("No staff member with this e-mail address.")
        viewer.remember(errors={ASSIGN_ERRORS.get(exc.code, "staff-email"): text},
                        values=values)
        return back
    viewer.remember(notice=_("%(email)s is assigned to %(customer)s.", email=email,
                             customer=unit.name))
    return back


@bp.post("/operator/staff/unassign")
@operator_page(platform=True)
def operator_staff_unassign(viewer: Viewer) -> Response:
    """End one staff member's assignment to one customer."""
    account_id = request.form.get("account_id", "")
    customer_id = request.form.get("customer_id", "")
    email = staff.email_of(account_id) if account_id.isalnum() else None
    back = redirect(url_for("console.operator_staff"), code=303)
    if email is None or not customer_id.isalnum():
        viewer.remember(errors={"staff-list": _("That assignment had already ended.")})
        return back
    try:
        staff.unassign(email, customer_id, actor=audit_actor(viewer.actor))
    except RightsError:
        viewer.remember(errors={"staff-list": _("That assignment had already ended.")})
        return back
    viewer.remember(notice=_("The assignment ended."))
    return back


# -- merchants -----------------------------------------------------------------------------


def _merchant_clients() -> list[Any]:
    """The OpenID Connect clients of merchants (not the administration API's)."""
    admin = {c["client_id"] for c in admin_client_registry.describe_all()}
    return [c for c in clients.list_all() if c.client_id not in admin]


@bp.get("/operator/merchants")
@operator_page(platform=True)
def operator_merchants(viewer: Viewer) -> Response:
    """The merchants' OpenID Connect clients and SAML service providers."""
    return viewer.render(
        "console/operator/merchants.html", current="merchants",
        oidc_clients=sorted(_merchant_clients(), key=lambda c: c.name.casefold()),
        service_providers=sorted(saml_repo.listing(), key=lambda s: s.name.casefold()),
    )


@bp.get("/operator/merchants/oidc/<client_id>")
@operator_page(platform=True)
def operator_merchant_client(viewer: Viewer, client_id: str) -> Response:
    """One merchant's OpenID Connect client (never its secret)."""
    found = next((c for c in _merchant_clients() if c.client_id == client_id), None)
    if found is None:
        abort(404)
    return viewer.render("console/operator/merchant.html", current="merchants",
                         client=found, sp=None)


@bp.get("/operator/merchants/saml/<sp_id>")
@operator_page(platform=True)
def operator_merchant_sp(viewer: Viewer, sp_id: str) -> Response:
    """One SAML service provider (its metadata's endpoints and the release settings)."""
    found = saml_repo.by_id(sp_id) if sp_id.isalnum() and len(sp_id) <= 64 else None
    if found is None:
        abort(404)
    return viewer.render("console/operator/merchant.html", current="merchants",
                         client=None, sp=found)
