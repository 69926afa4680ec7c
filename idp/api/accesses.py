"""Accesses (issue 12, items 4 and 7): link an existing person to a unit, read and
change an access (roles, permission groups, platform access, notifications),
suspend, reactivate, remove; search people; list with filters; act in bulk.

Adding a *new* person (with an invitation) belongs to the invitations. The rules
(who may see whom, the last main user, bulk batches) live in
:mod:`idp.accounts.access_admin`; this module validates, authorises and answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from idp.accounts import access_admin, notifications
from idp.accounts.access_admin import Refused
from idp.api import bp, pages
from idp.api.endpoint import Call, endpoint
from idp.api.pages import Page, PageQuery
from idp.api.problems import Problem, forbidden, not_found
from idp.api.types import Instant
from idp.store.access_lists_repo import Filter
from idp.store.models import Access

RoleName = Literal["main_user", "commercial_contact", "operational_contact", "employee"]
GroupName = str
EventName = str
STATUSES = Literal["invited", "active", "suspended", "removed"]
NAME = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.-]{0,63}$")


def _refused(exc: Refused) -> Problem:
    if exc.code == "not_found":
        return not_found("access")
    if exc.code == "access_exists":
        return Problem(409, exc.code, str(exc))
    if exc.code == "forbidden":
        return Problem(403, exc.code, str(exc))
    errors = [{"pointer": f"/body/{exc.field}", "detail": str(exc)}] if exc.field else None
    return Problem(422, exc.code, str(exc), errors=errors)


# -- models ------------------------------------------------------------------------


class AccessOut(BaseModel):
    """A person's access to a unit as an administrator sees it."""

    id: str
    unit_id: str
    unit_name: str
    account_id: str
    email: str | None = Field(description="None for a person provisioned without an address")
    given_name: str
    family_name: str
    status: str = Field(description="invited, active, suspended")
    roles: list[str] = Field(description="Built-in roles")
    permission_groups: list[str] = Field(description="The unit's custom permission groups")
    platform_access: bool = Field(description="False: receives notifications, cannot sign in")
    notifications: list[str] = Field(description="Events that send this person an e-mail")
    notifications_default: bool = Field(description="True: the defaults of the roles")
    created_at: datetime
    ends_at: datetime | None
    last_signin_at: datetime | None
    details_sent_at: datetime | None
    password_status: Literal["initial", "reset_by_staff", "set_by_user"] | None = Field(
        None, description="The person's password: initial (generated and sent), "
        "reset_by_staff, set_by_user; null: none. Never the password itself",
    )


def _out(row: Any) -> AccessOut:
    return AccessOut.model_validate(access_admin.describe(row))


class AccessLink(BaseModel):
    """Link an existing person: by ``email`` or by ``account_id`` (exactly one)."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(None, max_length=320)
    account_id: str | None = Field(None, max_length=32)
    roles: list[RoleName] = Field(default_factory=list, max_length=4)
    permission_groups: list[GroupName] = Field(default_factory=list, max_length=50)
    platform_access: bool = True
    notifications: list[EventName] | None = Field(
        None, max_length=notifications.MAX_EVENTS * 2,
        description="Event names; null: the defaults of the roles",
    )

    @model_validator(mode="after")
    def _one_way(self) -> AccessLink:
        if (self.email is None) == (self.account_id is None):
            raise ValueError("give exactly one of email and account_id")
        return self


class AccessPatch(BaseModel):
    """What to change; absent fields stay. ``notifications`` null: back to the
    defaults of the roles."""

    model_config = ConfigDict(extra="forbid")

    roles: list[RoleName] | None = Field(None, max_length=4)
    permission_groups: list[GroupName] | None = Field(None, max_length=50)
    platform_access: bool | None = None
    notifications: list[EventName] | None = Field(None, max_length=notifications.MAX_EVENTS * 2)


class PersonOut(BaseModel):
    """A person found by the type-ahead search."""

    account_id: str
    email: str | None = Field(description="None for a person provisioned without an address")
    given_name: str
    family_name: str


class PeopleQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str = Field(min_length=2, max_length=100, description="A prefix of address or name")
    limit: int = Field(10, ge=1, le=access_admin.SEARCH_LIMIT)


class PeopleOut(BaseModel):
    items: list[PersonOut]


class EventOut(BaseModel):
    name: str
    description: str
    default_for: list[str] = Field(description="Roles that receive it by default")


class ListFilter(BaseModel):
    """The filters of access lists and bulk actions."""

    model_config = ConfigDict(extra="forbid")

    status: STATUSES | None = None
    role: RoleName | None = None
    permission_group: str | None = Field(None, max_length=64)
    email_domain: str | None = Field(
        None, min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.-]+$",
        description="Addresses ending in @<this>",
    )
    q: str | None = Field(
        None, min_length=1, max_length=100,
        description="A prefix of the address, the given or the family name",
    )
    signed_in_before: Instant | None = None
    signed_in_after: Instant | None = None
    never_signed_in: bool = False


class AccessListQuery(PageQuery, ListFilter):
    model_config = ConfigDict(extra="forbid")

    with_total: bool | None = Field(
        None,
        description="Count the matches (one more query). Default: true for a unit's "
        "list, false across customers (a count reads every match; a single page "
        "still gives its total)",
    )


class UnitAccessListQuery(AccessListQuery):
    model_config = ConfigDict(extra="forbid")

    include_sub_units: bool = False


def _filter(f: ListFilter, bounds: Filter) -> Filter:
    return Filter(
        unit_ids=bounds.unit_ids, status=f.status, role=f.role, group=f.permission_group,
        domain=f.email_domain, q=f.q, signed_in_before=f.signed_in_before,
        signed_in_after=f.signed_in_after, never_signed_in=f.never_signed_in,
    )


def _list(query: AccessListQuery, bounds: Filter, count_by_default: bool) -> Page[AccessOut]:
    key = pages.decode(query.cursor, (str, str))
    # an address of None: the accounts without one, which come last
    after = (key[0], key[1]) if key and key[1] is not None else None
    f = _filter(query, bounds)
    rows, more = access_admin.page(f, after, query.limit)
    cursor = pages.encode([rows[-1].email, rows[-1].id]) if more and rows else None
    counting = count_by_default if query.with_total is None else query.with_total
    total = None
    if counting:
        total = access_admin.count(f) if more or after is not None else len(rows)
    elif not more and after is None:
        total = len(rows)  # the whole list is on this page
    return Page[AccessOut](items=[_out(r) for r in rows], next_cursor=cursor, total=total)


class Selection(BaseModel):
    """Exactly one of: the access ids (at most 1000), or a filter."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(None, min_length=1, max_length=access_admin.MAX_IDS)
    filter: ListFilter | None = None

    @model_validator(mode="after")
    def _one(self) -> Selection:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give exactly one of ids and filter")
        if self.ids is not None and any(not 0 < len(i) <= 64 for i in self.ids):
            raise ValueError("ids are 1 to 64 characters")
        return self


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["suspend", "reactivate", "remove", "resend", "reset_password"]
    selection: Selection


class BulkItem(BaseModel):
    id: str
    outcome: Literal["done", "unchanged", "refused"]
    code: str | None = Field(
        description="Why: last_main_user, not_found, not_invited, forbidden..."
    )


class BulkOut(BaseModel):
    """Counts per outcome; ``items`` lists every access whose outcome was not
    ``done`` (at most 1000; ``omitted`` counts the rest)."""

    counts: dict[str, int]
    items: list[BulkItem]
    omitted: int


def _bulk(call: Call, bounds: Filter) -> BulkOut:
    body: BulkIn = call.body
    sel = body.selection
    f = _filter(sel.filter, bounds) if sel.filter is not None else None
    result = access_admin.bulk(call.actor, body.action, bounds, sel.ids, f)
    return BulkOut(
        counts=result.counts,
        items=[BulkItem.model_validate(i) for i in result.items],
        omitted=result.omitted,
    )


# -- one access --------------------------------------------------------------------


@endpoint(
    bp, "POST", "/units/{unit_id}/accesses", summary="Link an existing person",
    tag="accesses", body=AccessLink, response=AccessOut, status=201,
    permission="users.manage", extra_statuses=(409,),
)
def link_access(call: Call, unit_id: str) -> AccessOut:
    """Give a person who already has a Unitgate account an access to the unit, by
    e-mail address or account id. Only people who already hold an access in a unit
    you manage can be found this way: anyone else (with or without an account)
    answers 422 `no_such_person`, so the answer tells nothing about other units'
    people. 409 `access_exists` when they already have one here."""
    body: AccessLink = call.body
    try:
        row = access_admin.link(
            call.actor, unit_id, email=body.email, account_id=body.account_id,
            roles=list(body.roles), groups=list(body.permission_groups),
            platform_access=body.platform_access, events=body.notifications,
        )
    except Refused as exc:
        raise _refused(exc) from exc
    return _out(access_admin.get(unit_id, row.id))


def _get(unit_id: str, access_id: str) -> Access:
    try:
        return access_admin.get(unit_id, access_id)
    except Refused as exc:
        raise _refused(exc) from exc


@endpoint(
    bp, "GET", "/units/{unit_id}/accesses/{access_id}", summary="An access",
    tag="accesses", response=AccessOut, permission="users.read",
)
def get_access(call: Call, unit_id: str, access_id: str) -> AccessOut:
    """The access, addressed under its own unit (a sub-unit's access under the
    sub-unit's id)."""
    return _out(_get(unit_id, access_id))


@endpoint(
    bp, "PATCH", "/units/{unit_id}/accesses/{access_id}", summary="Change an access",
    tag="accesses", body=AccessPatch, response=AccessOut, permission="users.manage",
)
def update_access(call: Call, unit_id: str, access_id: str) -> AccessOut:
    """Change roles, permission groups (each list replaces its half), platform
    access and notifications. Taking the customer's last main user away (the role,
    or platform access) is 422 `last_main_user`."""
    body: AccessPatch = call.body
    row = _get(unit_id, access_id)
    sent = body.model_fields_set
    try:
        access_admin.update(
            call.actor, row,
            roles=list(body.roles) if body.roles is not None else None,
            groups=list(body.permission_groups) if body.permission_groups is not None else None,
            platform_access=body.platform_access,
            events=body.notifications,
            reset_events="notifications" in sent and body.notifications is None,
        )
    except Refused as exc:
        raise _refused(exc) from exc
    return _out(_get(unit_id, access_id))


def _act(call: Call, unit_id: str, access_id: str, action: str) -> AccessOut:
    row = _get(unit_id, access_id)
    outcome = access_admin.act(call.actor, action, row)
    if outcome.code == "forbidden":
        raise Problem(403, "forbidden", "Reactivating this access hands out roles granting "
                      "permissions you do not hold here.")
    if outcome.outcome == "refused":
        raise Problem(422, outcome.code or "refused",
                      "The customer's last main user cannot be suspended or removed."
                      if outcome.code == "last_main_user" else "Refused.")
    return _out(_get(unit_id, access_id))


@endpoint(
    bp, "POST", "/units/{unit_id}/accesses/{access_id}/suspend", summary="Suspend an access",
    tag="accesses", response=AccessOut, permission="users.manage",
)
def suspend_access(call: Call, unit_id: str, access_id: str) -> AccessOut:
    """Suspend: roles kept, the unit's tokens revoked, nothing granted until
    reactivated. 422 `last_main_user` for the customer's last main user."""
    return _act(call, unit_id, access_id, "suspend")


@endpoint(
    bp, "POST", "/units/{unit_id}/accesses/{access_id}/reactivate",
    summary="Reactivate an access", tag="accesses", response=AccessOut,
    permission="users.manage",
)
def reactivate_access(call: Call, unit_id: str, access_id: str) -> AccessOut:
    """A suspended access becomes active again with its kept roles."""
    return _act(call, unit_id, access_id, "reactivate")


@endpoint(
    bp, "POST", "/units/{unit_id}/accesses/{access_id}/reset-password",
    summary="Reset the person's password", tag="accesses", response=AccessOut,
    permission="users.manage",
)
def reset_password(call: Call, unit_id: str, access_id: str) -> AccessOut:
    """A new generated password is e-mailed to the person (status `reset_by_staff`);
    the previous one stops working at once. The answer shows the status, never the
    password. 422 `passwords_not_allowed` unless the access is active in a unit whose
    policy allows passwords; 403 `forbidden` when the access holds roles granting
    permissions you do not hold here."""
    row = _get(unit_id, access_id)
    outcome = access_admin.act(call.actor, "reset_password", row)
    if outcome.code == "forbidden":
        raise Problem(403, "forbidden", "This person's roles grant permissions you do "
                      "not hold here.")
    if outcome.outcome == "refused":
        raise Problem(422, outcome.code or "refused",
                      "This access's unit does not allow passwords, or the access is "
                      "not active.")
    return _out(_get(unit_id, access_id))


@endpoint(
    bp, "DELETE", "/units/{unit_id}/accesses/{access_id}", summary="Remove an access",
    tag="accesses", response=None, permission="users.manage",
)
def remove_access(call: Call, unit_id: str, access_id: str) -> None:
    """Remove the access with its roles and facts (the person's account stays).
    422 `last_main_user` for the customer's last main user."""
    row = _get(unit_id, access_id)
    outcome = access_admin.act(call.actor, "remove", row)
    if outcome.outcome == "refused":
        raise Problem(422, outcome.code or "refused",
                      "The customer's last main user cannot be removed.")


# -- search, catalogue -------------------------------------------------------------


@endpoint(
    bp, "GET", "/units/{unit_id}/people/search", summary="Find people to link",
    tag="accesses", query=PeopleQuery, response=PeopleOut, permission="users.manage",
)
def search_people(call: Call, unit_id: str) -> PeopleOut:
    """Type-ahead for linking: people holding an access in a unit you administer
    (`users.manage`) whose address, given or family name starts with `q` (at least 2
    characters, at most 20 hits)."""
    query: PeopleQuery = call.query
    try:
        rows = access_admin.search_people(call.actor, query.q, query.limit)
    except Refused as exc:
        raise Problem(422, exc.code, str(exc)) from exc
    return PeopleOut(items=[
        PersonOut(account_id=r.id, email=r.email, given_name=r.given_name,
                  family_name=r.family_name) for r in rows
    ])


@endpoint(
    bp, "GET", "/notification-events", summary="Notification events",
    tag="accesses", response=list[EventOut],
)
def list_notification_events(call: Call) -> list[EventOut]:
    """The events an access can be notified of, and which roles get each by default
    (an access's `notifications` null means these defaults)."""
    return [EventOut.model_validate(e) for e in notifications.describe()]


# -- lists and bulk ----------------------------------------------------------------


@endpoint(
    bp, "GET", "/units/{unit_id}/accesses", summary="A unit's accesses", tag="accesses",
    query=UnitAccessListQuery, response=Page[AccessOut], permission="users.read",
)
def list_unit_accesses(call: Call, unit_id: str) -> Page[AccessOut]:
    """The unit's accesses (with `include_sub_units`, its sub-units' too), ordered
    by e-mail address, filtered."""
    query: UnitAccessListQuery = call.query
    return _list(query, access_admin.scope(call.actor, "users.read", unit_id,
                                           query.include_sub_units), True)


def _platform_bounds(call: Call, permission: str) -> Filter:
    bounds = access_admin.scope(call.actor, permission, None, True)
    if bounds.unit_ids is not None and not bounds.unit_ids:
        raise forbidden(permission)
    return bounds


@endpoint(
    bp, "GET", "/accesses", summary="Accesses across customers", tag="accesses",
    query=AccessListQuery, response=Page[AccessOut],
)
def list_accesses(call: Call) -> Page[AccessOut]:
    """Every access the caller may read (`users.read`): all customers' for the
    operator, the assigned customers' for staff, the units where a person holds
    `users.read` for a session. 403 for a caller who may read none."""
    return _list(call.query, _platform_bounds(call, "users.read"), False)


@endpoint(
    bp, "POST", "/units/{unit_id}/accesses/bulk", summary="Act on many of a unit's accesses",
    tag="accesses", body=BulkIn, response=BulkOut, permission="users.manage",
)
def bulk_unit_accesses(call: Call, unit_id: str) -> BulkOut:
    """Suspend, reactivate, remove or resend access details for the selected
    accesses of the unit and its sub-units (ids, or every match of a filter). Runs in
    batches of 500, each its own transaction; reports the counts and every access
    whose outcome was not `done`."""
    return _bulk(call, access_admin.scope(call.actor, "users.manage", unit_id, True))


@endpoint(
    bp, "POST", "/accesses/bulk", summary="Act on accesses across customers",
    tag="accesses", body=BulkIn, response=BulkOut,
)
def bulk_accesses(call: Call) -> BulkOut:
    """The bulk action over every customer the caller may manage (`users.manage`):
    the operator's and staff's tool; each unit is authorised."""
    return _bulk(call, _platform_bounds(call, "users.manage"))

