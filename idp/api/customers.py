"""Customers: create, read, update, list and delete the top-level units of kind
``company`` or ``person`` (:mod:`idp.units.customers`).

Who may do what (docs/admin-api.md, "Customers"):

* create: platform-wide ``units.manage``, i.e. the operator's clients (and the
  system) only; anyone else gets 403;
* read and list: ``users.read`` in the customer; the list shows the customers the
  caller may read (the operator all, staff their assigned ones);
* update: ``units.manage`` in the customer; changing ``status`` and deleting are
  the operator's side only (operator clients and assigned staff holding
  ``units.manage``), never the customer's own people or clients.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from idp.api import bp, pages
from idp.api.endpoint import Call, endpoint
from idp.api.pages import Page, PageQuery
from idp.api.problems import Problem, forbidden, invalid, not_found
from idp.api.types import Instant
from idp.rights import may
from idp.rights.authorization import audit_actor, visible_customers
from idp.store.models import Unit
from idp.units import customers
from idp.units.customers import CustomerError, Filters

READ = "users.read"
MANAGE = "units.manage"

Kind = Literal["company", "person"]
Status = Literal["active", "blocked"]
Activity = Literal["active", "dormant", "never"]


class Address(BaseModel):
    """A company's postal address; ``country`` is a two-letter code."""

    model_config = ConfigDict(extra="forbid")

    street: str | None = Field(None, max_length=200)
    postal_code: str | None = Field(None, max_length=200)
    city: str | None = Field(None, max_length=200)
    country: str | None = Field(None, max_length=2, description="ISO 3166-1 alpha-2")


class CustomerCreate(BaseModel):
    """A new customer. A company takes ``name``, ``address`` and ``vat_id``; a person
    ``given_name`` and ``family_name`` (their name is derived). A field of the other
    kind is refused (422 ``field_not_for_kind``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    name: str | None = Field(None, max_length=200)
    address: Address | None = None
    vat_id: str | None = Field(
        None, max_length=40, description="Two-letter country prefix and 2-13 letters or digits"
    )
    given_name: str | None = Field(None, max_length=200)
    family_name: str | None = Field(None, max_length=200)
    slug: str | None = Field(None, max_length=100, description="Derived from the name if omitted")


class CustomerUpdate(BaseModel):
    """The fields to change; ``address`` or ``vat_id`` null clears it. ``status`` is
    for the operator's side only."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    address: Address | None = None
    vat_id: str | None = Field(None, max_length=40)
    given_name: str | None = Field(None, max_length=200)
    family_name: str | None = Field(None, max_length=200)
    slug: str | None = Field(None, max_length=100)
    status: Status | None = None


class CustomerDelete(BaseModel):
    """The confirmation of a deletion: the customer's exact name."""

    model_config = ConfigDict(extra="forbid")

    confirm: str | None = Field(None, max_length=200, description="The customer's exact name")


class CustomerOut(BaseModel):
    """A customer. Company fields are null for a person and the other way round."""

    id: str
    kind: Kind
    slug: str
    name: str
    status: Status
    activity: Activity = Field(
        description="active: a sign-in in the last 90 days; dormant: older; never"
    )
    last_signin_at: datetime | None
    address: dict[str, str] | None
    vat_id: str | None
    given_name: str | None
    family_name: str | None
    created_at: datetime | None


class CustomerQuery(PageQuery):
    """Filters of the customer list (all optional, combined with AND)."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind | None = None
    status: Status | None = None
    activity: Activity | None = None
    q: str | None = Field(
        None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Part of the name, slug or VAT id",
    )
    created_before: Instant | None = Field(
        None, description="Before this instant (with its UTC offset)"
    )
    created_after: Instant | None = Field(
        None, description="At or after this instant (with its UTC offset)"
    )
    with_total: bool = Field(
        False,
        description="Count the matches (one more query; with an activity filter it "
        "reads every customer's sign-ins). A list that fits on its first page always "
        "has its total",
    )


class Removed(BaseModel):
    units: int
    accesses: int
    grants: int
    sign_ins: int
    sessions: int
    admin_clients: int


class CustomerDeleted(BaseModel):
    """What deleting the customer removed (counts)."""

    id: str
    removed: Removed


# Ids and slugs are visible ASCII. Anything else (a NUL byte, which PostgreSQL
# refuses in text) cannot name a resource: 404 before any query.
_PATH_VALUE = re.compile(r"^[\x21-\x7e]{1,64}$")


def known_shape(*values: str) -> None:
    """404 unless every path value could be an id or slug."""
    if not all(_PATH_VALUE.match(v) for v in values):
        raise not_found()


def text_key(cursor: str | None) -> tuple[str, str] | None:
    """The (text, id) sort key of a list cursor (:func:`idp.api.pages.decode`); a key
    with a NUL byte is no key a list gave (400)."""
    key = pages.decode(cursor, (str, str))
    if key is None:
        return None
    if any("\x00" in part for part in key):
        raise Problem(400, "invalid_cursor", "The cursor is not one this list gave.")
    return key[0], key[1]


def _refusal(exc: CustomerError) -> Problem:
    if exc.code == "not_found":
        return not_found("customer")
    if exc.code == "slug_taken":
        return Problem(409, exc.code, str(exc))
    return invalid(exc.code, str(exc), f"/body/{exc.field}" if exc.field else None)


def _customer(call: Call, customer_id: str, permission: str) -> Unit:
    known_shape(customer_id)
    call.require(permission, customer_id)
    try:
        return customers.get(customer_id)
    except CustomerError as exc:  # a sub-unit is not a customer
        raise not_found("customer") from exc


def _operator_side(call: Call, what: str) -> None:
    """Only the operator's side may block, unblock and delete: the system, staff
    (their assignment already checked) and operator clients."""
    if call.actor.kind in ("staff", "system") or may(call.actor, MANAGE, None):
        return
    raise Problem(403, "forbidden", f"Only the operator's staff may {what} a customer.")


def _out(unit: Unit) -> CustomerOut:
    return CustomerOut.model_validate(customers.describe(unit, customers.last_signin(unit)))


@endpoint(
    bp, "POST", "/customers", summary="Create a customer", tag="customers",
    body=CustomerCreate, response=CustomerOut, status=201, extra_statuses=(409,),
)
def create_customer(call: Call) -> CustomerOut:
    """A new customer (a top-level unit). Platform-wide: needs `units.manage` for the
    whole operator, which only operator clients hold; staff and the customers'
    own people and clients cannot create customers (403)."""
    if not may(call.actor, MANAGE, None):
        raise forbidden(MANAGE)
    body: CustomerCreate = call.body
    data = body.model_dump(exclude_unset=True, exclude={"kind"})
    try:
        unit = customers.create(body.kind, data, audit_actor(call.actor))
    except CustomerError as exc:
        raise _refusal(exc) from exc
    return _out(unit)


@endpoint(
    bp, "GET", "/customers", summary="List customers", tag="customers",
    query=CustomerQuery, response=Page[CustomerOut],
)
def list_customers(call: Call) -> Page[CustomerOut]:
    """The customers the caller may read (`users.read`), by name: the operator sees
    all, staff their assigned ones, a customer's people and clients their own.
    `total` only with `with_total=true`, or when the whole list is on the first page."""
    query: CustomerQuery = call.query
    visible = visible_customers(call.actor)
    if visible is not None:
        visible = {c for c in visible if may(call.actor, READ, c)}
    key = text_key(query.cursor)
    filters = Filters(
        ids=visible, kind=query.kind, status=query.status, activity=query.activity,
        active_since=customers.active_since(), q=query.q,
        created_before=query.created_before, created_after=query.created_after,
    )
    rows = customers.search(filters, key, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = [CustomerOut.model_validate(customers.describe(u, last)) for u, last in rows]
    cursor = pages.encode([rows[-1][0].name, rows[-1][0].id]) if more and rows else None
    total = None
    if not more and key is None:
        total = len(rows)  # the whole list is on this page
    elif query.with_total:
        total = customers.count(filters)
    return Page[CustomerOut](items=items, next_cursor=cursor, total=total)


@endpoint(
    bp, "GET", "/customers/{customer_id}", summary="A customer", tag="customers",
    response=CustomerOut,
)
def get_customer(call: Call, customer_id: str) -> CustomerOut:
    """The customer's data, status and activity. Needs `users.read` in it."""
    return _out(_customer(call, customer_id, READ))


@endpoint(
    bp, "PATCH", "/customers/{customer_id}", summary="Change a customer", tag="customers",
    body=CustomerUpdate, response=CustomerOut, extra_statuses=(409,),
)
def update_customer(call: Call, customer_id: str) -> CustomerOut:
    """Change the given fields. Needs `units.manage` in the customer; `status`
    (blocking: none of the customer's accesses grants anything, its live tokens are
    revoked) only for the operator's side."""
    _customer(call, customer_id, MANAGE)
    body: CustomerUpdate = call.body
    data = body.model_dump(exclude_unset=True)
    if "status" in data:
        _operator_side(call, "block or unblock")
        if data["status"] is None:
            raise invalid("invalid_status", "status: active or blocked", "/body/status")
    try:
        unit = customers.update(customer_id, data, audit_actor(call.actor))
    except CustomerError as exc:
        raise _refusal(exc) from exc
    return _out(unit)


@endpoint(
    bp, "DELETE", "/customers/{customer_id}", summary="Delete a customer", tag="customers",
    body=CustomerDelete, response=CustomerDeleted,
)
def delete_customer(call: Call, customer_id: str) -> CustomerDeleted:
    """Delete the customer permanently with its sub-units, accesses, grants (tokens
    stop at once), the sessions they were issued in, sign-in records and its
    configuration. People's accounts stay. The body must confirm the customer's
    exact name (`{"confirm": "<name>"}`, else 422 `confirmation_required`). Operator
    side only, with `units.manage` in the customer."""
    _customer(call, customer_id, MANAGE)
    _operator_side(call, "delete")
    body: CustomerDelete = call.body
    try:
        done = customers.delete(customer_id, body.confirm, audit_actor(call.actor))
    except CustomerError as exc:
        raise _refusal(exc) from exc
    removed = done.removed
    return CustomerDeleted(id=done.id, removed=Removed(
        units=removed.units, accesses=removed.accesses, grants=removed.grants,
        sign_ins=removed.sign_ins, sessions=removed.sessions,
        admin_clients=len(done.admin_clients),
    ))
