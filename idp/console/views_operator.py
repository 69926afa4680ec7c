"""The operator console (``/admin/operator/``, issue 14 item 2): the pages the
operator's staff work with, on the same services and the same rights as the
administration API (``idp/api/customers.py``, ``contacts.py``, ``staff.py``).

* **Customers**: the customers the viewer may read
  (:func:`idp.rights.authorization.visible_customers`, then ``users.read`` in each:
  platform staff all, other staff their assigned ones) with a filter bar (name,
  kind, status, activity), a CSV export of the same selection
  (:mod:`idp.web.spreadsheet`) and "Send access details" for the selected customers
  (the invitations of their people still ``invited``, through
  :func:`idp.accounts.access_admin.bulk`, ``users.manage`` in each).
* **New customer**: a company (name, address, VAT id) or a person (given and family
  name), platform-wide ``units.manage`` (:mod:`idp.units.customers`); then straight
  to its first contact.
* **A customer**: its data, and the **contacts** tab (its people). Contacts are
  added with the company console's "Invite or link a contact" of the customer's
  unit (:func:`idp.console.accesses.invite`, ``users.manage``), the one contact
  form, where creating a customer leads.

Only staff reach these pages (an employee's account, even a main user's, gets 404:
the company console is theirs); every decision is :func:`idp.rights.may` /
:func:`idp.rights.require` with the customer of the URL (404 where the viewer holds
nothing, 403 where a permission is missing). Every POST carries the CSRF token and
answers 303."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

from flask import Response, abort, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.accounts import access_admin
from idp.console.accesses import STATUS_LABELS as ACCESS_STATUS_LABELS
from idp.console.accesses import clean, role_label
from idp.console.blueprint import bp
from idp.console.guard import View, Viewer, console_page
from idp.rights import NotPermitted, may, permissions, require
from idp.rights.authorization import audit_actor, visible_customers
from idp.store.access_lists_repo import Filter
from idp.store.models import Unit
from idp.units import customers
from idp.units.customers import CustomerError, Filters
from idp.web import spreadsheet
from idp.web.redirects import redirect

READ = "users.read"
MANAGE_PEOPLE = "users.manage"
MANAGE_UNITS = "units.manage"
PAGE_SIZE = 50
MAX_TEXT = 200
MAX_ID = 64
MAX_SELECTION = 200
EXPORT_LIMIT = 10_000

KIND_LABELS = {"company": _l("Company"), "person": _l("Person")}
STATUS_LABELS = {"active": _l("Active"), "blocked": _l("Blocked")}
ACTIVITY_LABELS = {
    "active": _l("Signed in within 90 days"), "dormant": _l("Dormant"),
    "never": _l("Never signed in"),
}
COMPANY_FIELDS = ("name", "street", "postal_code", "city", "country", "vat_id")
PERSON_FIELDS = ("given_name", "family_name")
# What the services' refusal codes mean for the person filling in the form.
REFUSALS = {
    "required": _l("This field is required."),
    "invalid_vat_id": _l("Enter a VAT id: two letters and 2 to 13 letters or digits."),
    "invalid_address": _l("Enter the country as two letters, such as DE."),
}


def refusal(code: str, detail: str = "") -> str:
    """A service's refusal as the form shows it."""
    text = REFUSALS.get(code)
    return str(text) if text is not None else (detail or _("This value cannot be used."))


def operator_viewer(viewer: Viewer) -> Viewer:
    """The viewer when they are the operator's staff; 404 for everyone else (the
    operator console is no page of theirs)."""
    if not viewer.is_staff:
        abort(404)
    return viewer


OPERATOR = "users.manage"  # asked platform-wide: the operator's side only


def operator_page(platform: bool = False) -> Callable[[View], View]:
    """:func:`idp.console.guard.console_page` for the operator's staff only (404 for
    anyone else); with ``platform`` also the operator's platform-wide rights
    (:func:`idp.rights.may` with no unit, as the API's staff endpoints ask: 403
    otherwise)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def checked(viewer: Viewer, **kwargs: Any) -> Response:
            operator_viewer(viewer)
            if platform and not may(viewer.actor, OPERATOR, None):
                abort(403)
            return view(viewer, **kwargs)

        return console_page(checked)

    return decorate


@bp.app_template_global("operator_platform")
def operator_platform(viewer: Viewer) -> bool:
    """Whether the viewer holds the operator's platform-wide rights (the Staff and
    Merchants pages; their views decide again)."""
    return may(viewer.actor, OPERATOR, None)


def customer_for(viewer: Viewer, customer_id: str, permission: str) -> Unit:
    """The customer of the URL when the viewer holds ``permission`` in it
    (:func:`idp.rights.require`): 404 where they hold nothing (or for no such
    customer, or a sub-unit), 403 where the permission is missing."""
    if not customer_id.isalnum() or len(customer_id) > MAX_ID:
        abort(404)
    try:
        require(viewer.actor, permission, customer_id)
    except NotPermitted as exc:
        abort(404 if exc.foreign else 403)
    try:
        return customers.get(customer_id)
    except CustomerError:
        abort(404)


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    return value if value in allowed else None


def filters_of(viewer: Viewer) -> tuple[Filters, dict[str, str]]:
    """The customer filters of the query string, bounded to the customers the viewer
    may read, and the filter bar's values."""
    visible = visible_customers(viewer.actor)
    if visible is not None:
        visible = {c for c in visible if may(viewer.actor, READ, c)}
    q = " ".join(clean(request.args.get("q"), MAX_TEXT).split())
    kind = _choice("kind", customers.KINDS)
    status = _choice("status", customers.STATUSES)
    activity = _choice("activity", customers.ACTIVITIES)
    shown = {"q": q, "kind": kind or "", "status": status or "", "activity": activity or ""}
    found = Filters(ids=visible, kind=kind, status=status, activity=activity,
                    active_since=customers.active_since(), q=q or None)
    return found, shown


def _after() -> tuple[str, str] | None:
    name, cid = request.args.get("after_name"), request.args.get("after_id")
    if not name or not cid or len(name) > MAX_TEXT or len(cid) > MAX_ID or "\x00" in name:
        return None
    return name, cid


def row_of(unit: Unit, last: Any) -> dict[str, Any]:
    """A customer as the list and the export show it."""
    data = customers.describe(unit, last)
    data["kind_label"] = str(KIND_LABELS.get(unit.kind, unit.kind))
    data["status_label"] = str(STATUS_LABELS.get(unit.status, unit.status))
    data["activity_label"] = str(ACTIVITY_LABELS.get(data["activity"], data["activity"]))
    data["last"] = last
    return data


@bp.get("/operator/")
@operator_page()
def operator_home(viewer: Viewer) -> Response:
    """The customers with the filter bar, a page of :data:`PAGE_SIZE` at a time."""
    found, shown = filters_of(viewer)
    rows = customers.search(found, _after(), PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_args = None
    if more and rows:
        next_args = {**{k: v for k, v in shown.items() if v},
                     "after_name": rows[-1][0].name, "after_id": rows[-1][0].id}
    return viewer.render(
        "console/operator/customers.html", current="customers",
        rows=[row_of(u, last) for u, last in rows], shown=shown, next_args=next_args,
        may_create=may(viewer.actor, MANAGE_UNITS, None),
        kinds=KIND_LABELS, statuses=STATUS_LABELS, activities=ACTIVITY_LABELS,
    )


EXPORT_HEADER = ("id", "kind", "name", "slug", "status", "activity", "last_signin_at",
                 "vat_id", "street", "postal_code", "city", "country", "created_at")


def _export_rows(found: Filters) -> Iterator[list[object]]:
    yield list(EXPORT_HEADER)
    after: tuple[str, str] | None = None
    sent = 0
    while sent < EXPORT_LIMIT:
        batch = customers.search(found, after, 500)
        for unit, last in batch:
            data = customers.describe(unit, last)
            address = data["address"] or {}
            yield [data["id"], data["kind"], data["name"], data["slug"], data["status"],
                   data["activity"], data["last_signin_at"] or "", data["vat_id"] or "",
                   address.get("street", ""), address.get("postal_code", ""),
                   address.get("city", ""), address.get("country", ""),
                   data["created_at"] or ""]
        sent += len(batch)
        if len(batch) < 500:
            return
        after = (batch[-1][0].name, batch[-1][0].id)


@bp.get("/operator/customers.csv")
@operator_page()
def operator_export(viewer: Viewer) -> Response:
    """The filtered customers as CSV (every cell defused against formulas; ``;``
    and a BOM with ``dialect=excel-de``)."""
    found, _shown = filters_of(viewer)
    dialect = request.args.get("dialect", "excel")
    delimiter = spreadsheet.DIALECTS.get(dialect, ",")
    body = spreadsheet.csv_lines(_export_rows(found), delimiter, bom=dialect == "excel-de")
    resp = Response(stream_with_context(body), mimetype="text/csv")
    resp.headers["Content-Disposition"] = 'attachment; filename="customers.csv"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


def selected(name: str) -> list[str]:
    """The ids ticked in the form's checkboxes ``name`` (well-formed ones, at most
    :data:`MAX_SELECTION`)."""
    ids = [v for v in request.form.getlist(name) if v.isalnum() and len(v) <= MAX_ID]
    return list(dict.fromkeys(ids))[:MAX_SELECTION]


@bp.post("/operator/send-details")
@operator_page()
def operator_send_details(viewer: Viewer) -> Response:
    """Send the access details again to the people of the selected customers whose
    access is still ``invited`` (a new invitation each; the customers' hourly budget
    applies). Customers where the viewer lacks ``users.manage`` are skipped."""
    chosen = selected("customer")
    back = redirect(url_for("console.operator_home"), code=303)
    if not chosen:
        viewer.remember(errors={"customer-list": _("Select at least one customer.")})
        return back
    sent = refused = skipped = 0
    for customer_id in chosen:
        if not may(viewer.actor, MANAGE_PEOPLE, customer_id):
            skipped += 1
            continue
        bounds = access_admin.scope(viewer.actor, MANAGE_PEOPLE, customer_id, sub_units=True)
        result = access_admin.bulk(viewer.actor, "resend", bounds, None,
                                   Filter(status="invited"))
        sent += result.counts.get("done", 0)
        refused += result.counts.get("refused", 0)
    viewer.remember(notice=_(
        "Access details sent to %(sent)d people; %(refused)d could not be sent; "
        "%(skipped)d customers skipped (no right to manage their people).",
        sent=sent, refused=refused, skipped=skipped))
    return back


# -- a new customer ------------------------------------------------------------------


@bp.get("/operator/customers/new")
@operator_page()
def customer_new(viewer: Viewer) -> Response:
    """The form for a new customer: a company or a person."""
    if not may(viewer.actor, MANAGE_UNITS, None):
        abort(403)
    return viewer.render("console/operator/customer_new.html", current="customers",
                         kinds=KIND_LABELS)


def _field(name: str) -> str:
    return clean(request.form.get(name), MAX_TEXT)


@bp.post("/operator/customers/new")
@operator_page()
def customer_create(viewer: Viewer) -> Response:
    """Create the customer (audited ``customer.create``), then 303 to the form for
    its first contact (:func:`first_contact`); refusals go back to the form with the
    values typed."""
    if not may(viewer.actor, MANAGE_UNITS, None):
        abort(403)
    kind = request.form.get("kind", "")
    values = {n: _field(n) for n in ("kind", *COMPANY_FIELDS, *PERSON_FIELDS)}
    data: dict[str, Any]
    if kind == "company":
        address = {k: values[k] for k in ("street", "postal_code", "city") if values[k]}
        if values["country"]:
            address["country"] = values["country"].upper()
        data = {"name": values["name"], "address": address or None,
                "vat_id": values["vat_id"] or None}
    else:
        data = {"given_name": values["given_name"], "family_name": values["family_name"]}
    errors: dict[str, str] = {}
    for name in (("name",) if kind == "company" else PERSON_FIELDS):
        if not values[name]:
            errors[name] = str(REFUSALS["required"])
    if kind not in customers.KINDS:
        errors["kind-company"] = _("Choose a company or a person.")
    if not errors:
        try:
            unit = customers.create(kind, data, audit_actor(viewer.actor))
        except CustomerError as exc:
            field = (exc.field or "name").removeprefix("address/")
            errors[field if field in values else "name"] = refusal(exc.code, str(exc))
        else:
            viewer.remember(notice=_("%(name)s was created. Now add its first contact.",
                                     name=unit.name))
            return redirect(first_contact(unit.id), code=303)
    viewer.remember(errors=errors, values=values)
    return redirect(url_for("console.customer_new"), code=303)


# -- one customer ----------------------------------------------------------------------


def first_contact(unit_id: str) -> str:
    """Where a customer's contacts are added: the company console's "Invite or link
    a contact" of its unit (:mod:`idp.console.accesses`, the one contact form)."""
    return url_for("console.accesses", unit=unit_id) + "#invite"


def customer_page(viewer: Viewer, unit: Unit, template: str, tab: str,
                  **context: Any) -> Response:
    """Render a page about one customer: its heading and tabs, and what the viewer
    may do there."""
    held = permissions(viewer.actor, unit.id)
    return viewer.render(
        template, current="customers", tab=tab,
        customer=row_of(unit, customers.last_signin(unit)),
        rights={"manage_people": MANAGE_PEOPLE in held, "read": READ in held},
        role_label=role_label, access_status=access_status, **context,
    )


@bp.get("/operator/customers/<customer_id>")
@operator_page()
def customer_detail(viewer: Viewer, customer_id: str) -> Response:
    """The customer's data, status and activity."""
    unit = customer_for(viewer, customer_id, READ)
    return customer_page(viewer, unit, "console/operator/customer.html", "overview")


@bp.get("/operator/customers/<customer_id>/contacts")
@operator_page()
def customer_contacts(viewer: Viewer, customer_id: str) -> Response:
    """The contacts tab: the people with an access to the customer itself."""
    unit = customer_for(viewer, customer_id, READ)
    rows, more = access_admin.page(Filter(unit_ids=frozenset({unit.id})), None, 200)
    return customer_page(viewer, unit, "console/operator/customer.html", "contacts",
                         contacts=[access_admin.describe(r) for r in rows], more=more)


def access_status(status: str) -> str:
    """An access's status in the reader's language."""
    return str(ACCESS_STATUS_LABELS.get(status, status))
