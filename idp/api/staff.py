"""The operator's staff, their assignments to customers, and a customer's
authorisations view (:mod:`idp.rights.staff`, :mod:`idp.units.customers`).

* ``/staff`` and the assignments under ``/customers/{customer_id}/staff``: the
  operator only (platform-wide rights: operator clients and the system); anyone
  else gets 403.
* ``/customers/{customer_id}/authorisations``: ``users.read`` in the customer
  (staff: an assignment that gives it); removing a selection needs ``users.manage``
  in each access's unit, and removing a staff assignment the operator.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from idp.api import bp, pages
from idp.api.customers import known_shape
from idp.api.endpoint import Call, endpoint
from idp.api.problems import Problem, forbidden, invalid, not_found
from idp.rights import RightsError, may, permissions, staff
from idp.rights.authorization import audit_actor
from idp.store.models import Unit
from idp.units import customers
from idp.units.customers import CustomerError

AnId = Annotated[str, Field(pattern=r"^[0-9a-zA-Z_-]{1,64}$")]
OPERATOR = "users.manage"  # asked platform-wide: only the operator holds it
MAX_SELECTION = 200


def _operator(call: Call) -> None:
    if not may(call.actor, OPERATOR, None):
        raise Problem(403, "forbidden", "Only the operator manages its staff.")


def _operator_in(call: Call, customer_id: str) -> None:
    """The operator only, but a customer the caller holds nothing in is a 404 (its
    existence does not leak), as everywhere under /customers/{customer_id}."""
    known_shape(customer_id)
    if not may(call.actor, OPERATOR, None) and not permissions(call.actor, customer_id):
        raise not_found("customer")
    _operator(call)


class AssignmentOut(BaseModel):
    customer_id: str
    customer: str = Field(description="The customer's slug")
    kind: Literal["administrator", "processor"]
    permissions: list[str]


class StaffOut(BaseModel):
    """A staff member with the customers assigned to them."""

    account_id: str
    email: str | None = Field(description="None for a person provisioned without an address")
    name: str
    added_at: datetime | None
    added_by: str
    assignments: list[AssignmentOut]


class StaffCreate(BaseModel):
    """An existing account to make a staff member."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^\x00-\x20\x7f]+$")


class AssignmentIn(BaseModel):
    """An administrator holds every permission in the customer (name none); a
    processor the named catalogue permissions (at least one)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["administrator", "processor"] | None = Field(
        None, description="Required; checked after the caller (a foreign customer is a 404)"
    )
    permissions: list[str] = Field(default_factory=list, max_length=50)


def _member(account_id: str) -> StaffOut:
    for row in staff.describe_all():
        if row["account_id"] == account_id:
            return StaffOut.model_validate(row)
    raise not_found("staff member")


def _rights_problem(exc: RightsError, pointer: str | None = None) -> Problem:
    if exc.code in ("not_found", "not_a_customer"):
        return not_found("customer or staff member")
    return invalid(exc.code, str(exc), pointer)


@endpoint(bp, "GET", "/staff", summary="List the staff", tag="staff", response=list[StaffOut])
def list_staff(call: Call) -> list[StaffOut]:
    """Every staff member with their assignments (operator only)."""
    _operator(call)
    return [StaffOut.model_validate(row) for row in staff.describe_all()]


@endpoint(
    bp, "POST", "/staff", summary="Make an account staff", tag="staff", body=StaffCreate,
    response=StaffOut, status=201,
)
def add_staff(call: Call) -> StaffOut:
    """Make the existing account of `email` a staff member, without customers yet;
    repeating it changes nothing (operator only)."""
    _operator(call)
    body: StaffCreate = call.body
    try:
        row = staff.add(body.email, actor=audit_actor(call.actor).display)
    except RightsError as exc:
        raise invalid("account_not_found", str(exc), "/body/email") from exc
    return _member(row.account_id)


@endpoint(bp, "DELETE", "/staff/{account_id}", summary="End a staff membership", tag="staff")
def remove_staff(call: Call, account_id: str) -> None:
    """End the membership with all its assignments (operator only)."""
    _operator(call)
    known_shape(account_id)
    email = staff.email_of(account_id)
    if email is None:
        raise not_found("staff member")
    staff.remove(email, actor=audit_actor(call.actor).display)


def _staff_email(account_id: str) -> str:
    known_shape(account_id)
    email = staff.email_of(account_id)
    if email is None:
        raise not_found("staff member")
    return email


@endpoint(
    bp, "PUT", "/customers/{customer_id}/staff/{account_id}", summary="Assign staff",
    tag="staff", body=AssignmentIn, response=AssignmentOut,
)
def assign_staff(call: Call, customer_id: str, account_id: str) -> AssignmentOut:
    """Assign the staff member to the customer as administrator or as processor with
    the named permissions; replaces an earlier assignment (operator only)."""
    _operator_in(call, customer_id)
    email = _staff_email(account_id)
    unit = _customer_unit(customer_id)
    body: AssignmentIn = call.body
    if body.kind is None:
        raise invalid("invalid_assignment", "kind: administrator or processor", "/body/kind")
    try:
        row = staff.assign(email, unit.id, body.kind, body.permissions,
                           actor=audit_actor(call.actor).display)
    except RightsError as exc:
        raise _rights_problem(exc, "/body/permissions") from exc
    return AssignmentOut.model_validate({
        "customer_id": unit.id, "customer": unit.slug, "kind": row.kind,
        "permissions": list(row.permissions or []),
    })


@endpoint(
    bp, "DELETE", "/customers/{customer_id}/staff/{account_id}", summary="Unassign staff",
    tag="staff",
)
def unassign_staff(call: Call, customer_id: str, account_id: str) -> None:
    """End the staff member's assignment to the customer (operator only)."""
    _operator_in(call, customer_id)
    email = _staff_email(account_id)
    unit = _customer_unit(customer_id)
    try:
        staff.unassign(email, unit.id, actor=audit_actor(call.actor))
    except RightsError as exc:
        raise not_found("assignment") from exc


def _customer_unit(customer_id: str) -> Unit:
    known_shape(customer_id)
    try:
        return customers.get(customer_id)
    except CustomerError as exc:
        raise not_found("customer") from exc


# --- the authorisations view --------------------------------------------------------


class AccessEntry(BaseModel):
    """An access of the customer or one of its sub-units."""

    id: str
    account_id: str
    email: str | None = Field(description="None for a person provisioned without an address")
    name: str
    unit_id: str
    unit_name: str
    roles: list[str]
    status: Literal["invited", "active", "suspended", "removed"]
    granting: bool = Field(description="Whether it gives anything now")
    platform_access: bool
    last_signin_at: datetime | None


class StaffEntry(BaseModel):
    account_id: str
    email: str | None = Field(description="None for a person provisioned without an address")
    name: str
    since: datetime | None


class ProcessorEntry(StaffEntry):
    permissions: list[str]


class AuthorisationsOut(BaseModel):
    """Who can access what in the customer. ``accesses`` is paged (by e-mail
    address); the staff lists are complete on every page."""

    customer_id: str
    accesses: list[AccessEntry]
    next_cursor: str | None
    total: int
    administrators: list[StaffEntry]
    processors: list[ProcessorEntry]


class AuthorisationsQuery(pages.PageQuery):
    model_config = ConfigDict(extra="forbid")


class Selection(BaseModel):
    """What to remove: access ids and staff members' account ids."""

    model_config = ConfigDict(extra="forbid")

    accesses: list[AnId] = Field(default_factory=list, max_length=MAX_SELECTION)
    staff: list[AnId] = Field(default_factory=list, max_length=MAX_SELECTION)


class RemovedItem(BaseModel):
    kind: Literal["access", "staff"]
    id: str
    result: Literal["removed"]


class RemovalOut(BaseModel):
    """One result per item; all were removed in one transaction."""

    items: list[RemovedItem]


def _viewed_customer(call: Call, customer_id: str, permission: str) -> Unit:
    known_shape(customer_id)
    call.require(permission, customer_id)
    return _customer_unit(customer_id)


def _access_key(cursor: str | None) -> tuple[str | None, str] | None:
    """The (e-mail address, access id) key of an authorisations cursor; the address
    is None for the people without one, who come last."""
    key = pages.decode(cursor, (str, str))
    if key is None:
        return None
    if key[1] is None or any(p is not None and "\x00" in p for p in key):
        raise Problem(400, "invalid_cursor", "The cursor is not one this list gave.")
    return key[0], key[1]


@endpoint(
    bp, "GET", "/customers/{customer_id}/authorisations", summary="Authorisations view",
    tag="staff", query=AuthorisationsQuery, response=AuthorisationsOut,
)
def get_authorisations(call: Call, customer_id: str) -> AuthorisationsOut:
    """Every access of the customer and its sub-units (person, unit, roles, status),
    every staff administrator and every additional processor with their
    permissions. Needs `users.read` in the customer."""
    unit = _viewed_customer(call, customer_id, "users.read")
    query: AuthorisationsQuery = call.query
    view = customers.authorisations(unit, _access_key(query.cursor), query.limit)
    cursor = None
    if view.more and view.accesses:
        last = view.accesses[-1]
        cursor = pages.encode([last["email"], last["id"]])
    return AuthorisationsOut(
        customer_id=unit.id,
        accesses=[AccessEntry.model_validate(a) for a in view.accesses],
        next_cursor=cursor,
        total=view.total,
        administrators=[StaffEntry.model_validate(a) for a in view.administrators],
        processors=[ProcessorEntry.model_validate(p) for p in view.processors],
    )


@endpoint(
    bp, "POST", "/customers/{customer_id}/authorisations/remove",
    summary="Remove a selection of authorisations", tag="staff", body=Selection,
    response=RemovalOut,
)
def remove_authorisations(call: Call, customer_id: str) -> RemovalOut:
    """Remove the selected accesses and staff assignments in one transaction, all or
    nothing. Each access needs `users.manage` in its unit; staff assignments need
    the operator. An item that is not the customer's, or the customer's last main
    user, refuses the whole call (422, the item named in `errors`)."""
    unit = _viewed_customer(call, customer_id, "users.read")
    body: Selection = call.body
    if not body.accesses and not body.staff:
        raise invalid("empty_selection", "Select at least one access or staff member.",
                      "/body/accesses")
    if body.staff and not may(call.actor, OPERATOR, None):
        raise forbidden("users.manage")
    for unit_id in customers.units_of_accesses(unit, body.accesses):
        call.require("users.manage", unit_id)
    try:
        results = customers.remove_authorisations(
            unit, body.accesses, body.staff, audit_actor(call.actor)
        )
    except CustomerError as exc:
        raise invalid(exc.code, str(exc), f"/body/{exc.field}" if exc.field else None) from exc
    return RemovalOut(items=[RemovedItem.model_validate(r) for r in results])
