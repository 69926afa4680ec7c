"""Customers: the top-level units (``parent_id`` None) of kind ``company`` or
``person``, with the data that fits their kind, a status and an activity status.

* A **company** has a ``name``, a postal ``address`` ({street, postal_code, city,
  country}) and a ``vat_id``. A **person** has a ``given_name`` and a
  ``family_name``; their ``name`` is derived from them. A field of the other kind is
  refused (``field_not_for_kind``).
* **Status** ``active`` or ``blocked``. Blocking a customer marks it and all its
  sub-units ``blocked``: from then on none of their accesses *grants*
  (:meth:`idp.store.models.Access.grants`, the one place that decides it): no
  roles, no rights, no org or wallet claims, no sign-in *for* the customer. Live
  grants (tokens) issued for its units are revoked at once. The people's accounts,
  their accesses (with their own statuses) and their other customers are
  untouched; unblocking restores what the accesses gave before. The operator's
  staff keep working in a blocked customer.
* **Activity** is computed from ``accesses.last_signin_at`` over the customer and
  its sub-units: ``active`` (a sign-in in the last :data:`ACTIVE_DAYS` days),
  ``dormant`` (older), ``never``.
* **Deleting** a customer (:func:`delete`) needs its exact name as confirmation.

Names and slugs follow :mod:`idp.units.registry`. Every change is validated first
and written in one transaction with its audit event; events name fields and
counts, never personal values (a person customer's name is personal data).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from idp import audit
from idp.accounts import accesses as access_service
from idp.release import clients
from idp.rights import staff
from idp.store import customers_repo, grants_repo, units_repo
from idp.store.customers_repo import Filters, Removed
from idp.store.models import UNIT_ACTIVE, UNIT_BLOCKED, Unit, new_id, utcnow
from idp.store.unit_of_work import Conflict, atomic
from idp.units import registry as units

KINDS: tuple[str, ...] = ("company", "person")
STATUSES: tuple[str, ...] = (UNIT_ACTIVE, UNIT_BLOCKED)
ACTIVITIES: tuple[str, ...] = ("active", "dormant", "never")
ACTIVE_DAYS = 90
ADDRESS_FIELDS: tuple[str, ...] = ("street", "postal_code", "city", "country")
COMPANY_ONLY: tuple[str, ...] = ("name", "address", "vat_id")
PERSON_ONLY: tuple[str, ...] = ("given_name", "family_name")
# Loosely: a two-letter country prefix and 2 to 13 letters or digits (spaces, dots
# and hyphens people type are dropped first; letters are upper-cased).
VAT_RE = re.compile(r"^[A-Z]{2}[A-Z0-9]{2,13}$")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


class CustomerError(ValueError):
    """A customer change is refused: ``code`` says why, ``field`` names the input
    at fault (for the API's JSON pointer), if one is."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


def _text(value: Any, name: str, max_len: int = 200, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise CustomerError(f"invalid_{name}", f"{name}: must be text", name)
    text = value.strip()
    if not text and not required:
        return None
    if not text or len(text) > max_len:
        raise CustomerError(f"invalid_{name}", f"{name}: 1 to {max_len} characters", name)
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise CustomerError(f"invalid_{name}", f"{name}: no control characters", name)
    return text


def validate_vat_id(value: Any) -> str | None:
    """A VAT id, normalised (upper case, without spaces, dots and hyphens), or None
    for none; else ``invalid_vat_id``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise CustomerError("invalid_vat_id", "vat_id: must be text", "vat_id")
    clean = re.sub(r"[\s.\-]", "", value).upper()
    if not clean:
        return None
    if not VAT_RE.match(clean):
        raise CustomerError(
            "invalid_vat_id",
            "vat_id: a two-letter country prefix and 2 to 13 letters or digits",
            "vat_id",
        )
    return clean


def validate_address(value: Any) -> dict[str, str]:
    """A postal address with only the fields of :data:`ADDRESS_FIELDS` (each text of
    at most 200 characters; ``country`` a two-letter code); empty fields left out."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CustomerError("invalid_address", "address: must be an object", "address")
    unknown = sorted(set(value) - set(ADDRESS_FIELDS))
    if unknown:
        raise CustomerError(
            "invalid_address", f"address: unknown field {unknown[0]!r}", f"address/{unknown[0]}"
        )
    out: dict[str, str] = {}
    for name in ADDRESS_FIELDS:
        try:
            text = _text(value.get(name), name, 200, required=False)
        except CustomerError as exc:
            raise CustomerError("invalid_address", f"address: {exc}", f"address/{name}") from exc
        if text is None:
            continue
        if name == "country":
            text = text.upper()
            if not COUNTRY_RE.match(text):
                raise CustomerError(
                    "invalid_address", "address: country is a two-letter code (DE, FR...)",
                    "address/country",
                )
        out[name] = text
    return out


def _refuse_other_kind(kind: str, data: dict[str, Any]) -> None:
    wrong = PERSON_ONLY if kind == "company" else COMPANY_ONLY
    for name in wrong:
        if name in data:
            raise CustomerError(
                "field_not_for_kind", f"{name}: not a field of a {kind} customer", name
            )


def person_name(given: str, family: str) -> str:
    """A person customer's display name."""
    return f"{given} {family}".strip()[:200]


def create(kind: Any, data: dict[str, Any], actor: audit.Actor | str = "system") -> Unit:
    """Create a customer of ``kind`` from ``data`` (company: ``name``, ``address``,
    ``vat_id``; person: ``given_name``, ``family_name``; either: ``slug``). Raises
    :class:`CustomerError`; writes nothing then."""
    if kind not in KINDS:
        raise CustomerError("invalid_kind", f"kind: one of {', '.join(KINDS)}", "kind")
    _refuse_other_kind(kind, data)
    unit = Unit(id=new_id(), kind=kind, parent_id=None, status=UNIT_ACTIVE)
    if kind == "company":
        unit.name = _text(data.get("name"), "name") or ""
        unit.address = validate_address(data.get("address"))
        unit.vat_id = validate_vat_id(data.get("vat_id"))
    else:
        unit.given_name = _text(data.get("given_name"), "given_name") or ""
        unit.family_name = _text(data.get("family_name"), "family_name") or ""
        unit.name = person_name(unit.given_name, unit.family_name)
    slug = data.get("slug")
    if slug is not None:
        try:
            unit.slug = units.validate_slug(slug)
        except units.UnitError as exc:
            raise CustomerError(exc.code, str(exc), "slug") from exc
        if units_repo.by_slug(unit.slug) is not None:
            raise CustomerError("slug_taken", f"slug {unit.slug!r} is taken", "slug")
    elif kind == "person":  # not derived from their name: slugs show in logs and URLs
        unit.slug = units.free_slug(f"person-{unit.id[:8]}")
    else:
        unit.slug = units.free_slug(units.slugify(unit.name))
    try:
        with atomic():
            units_repo.stage(unit)
            audit.record(actor, "customer.create", unit.id,
                         {"kind": kind, "fields": sorted(k for k in data if k != "slug")},
                         unit_id=unit.id)
    except Conflict as exc:
        raise CustomerError("slug_taken", f"slug {unit.slug!r} is taken", "slug") from exc
    return unit


def get(customer_id: str) -> Unit:
    """The customer with this id; ``not_found`` for none or a sub-unit."""
    unit = customers_repo.by_id(customer_id) if isinstance(customer_id, str) else None
    if unit is None:
        raise CustomerError("not_found", f"no customer {customer_id!r}")
    return unit


def find(ref: str) -> Unit | None:
    """The customer whose id or slug is ``ref`` (the CLI's reference), or None."""
    unit = units.find(ref)
    return unit if unit is not None and unit.parent_id is None else None


def tree_ids(unit: Unit) -> list[str]:
    """The customer's id and those of all its sub-units."""
    return [unit.id, *sorted(units.descendant_ids(unit.id))]


def update(
    customer_id: str, data: dict[str, Any], actor: audit.Actor | str = "system"
) -> Unit:
    """Change the fields of ``data`` (as for :func:`create`, plus ``status``; an
    ``address`` or ``vat_id`` of None clears it). Blocking revokes the live grants
    issued for the customer's units. Raises :class:`CustomerError`."""
    unit = get(customer_id)
    _refuse_other_kind(unit.kind, data)
    changed: list[str] = []
    details: dict[str, Any] = {}

    def put(name: str, value: Any) -> None:
        if getattr(unit, name) != value:
            setattr(unit, name, value)
            changed.append(name)

    if "name" in data:
        put("name", _text(data["name"], "name"))
    if "address" in data:
        put("address", validate_address(data["address"]))
    if "vat_id" in data:
        put("vat_id", validate_vat_id(data["vat_id"]))
    if "given_name" in data:
        put("given_name", _text(data["given_name"], "given_name"))
    if "family_name" in data:
        put("family_name", _text(data["family_name"], "family_name"))
    if unit.kind == "person" and {"given_name", "family_name"} & set(changed):
        put("name", person_name(unit.given_name, unit.family_name))
    if "slug" in data:
        try:
            slug = units.validate_slug(data["slug"])
        except units.UnitError as exc:
            raise CustomerError(exc.code, str(exc), "slug") from exc
        if slug != unit.slug:
            if units_repo.by_slug(slug) is not None:
                raise CustomerError("slug_taken", f"slug {slug!r} is taken", "slug")
            put("slug", slug)
    status = data.get("status")
    if "status" in data and status not in STATUSES:
        raise CustomerError("invalid_status", f"status: one of {', '.join(STATUSES)}", "status")
    if not changed and (status is None or status == unit.status):
        return unit
    try:
        with atomic():
            if status is not None and status != unit.status:
                ids = tree_ids(unit)
                customers_repo.set_status(ids, status)
                unit.status = status
                changed.append("status")
                details["status"] = status
                if status == UNIT_BLOCKED:
                    details["grants_revoked"] = grants_repo.revoke_for_units(ids)
            units_repo.stage(unit)
            audit.record(actor, "customer.update", unit.id,
                         {"fields": sorted(set(changed)), **details}, unit_id=unit.id)
    except Conflict as exc:
        raise CustomerError("slug_taken", "slug is taken", "slug") from exc
    return unit


@dataclass
class Deleted:
    """What deleting a customer removed (counts only)."""

    id: str
    removed: Removed
    admin_clients: list[str] = field(default_factory=list)


def delete(customer_id: str, confirm: Any, actor: audit.Actor | str = "system") -> Deleted:
    """Delete the customer permanently with its sub-units and everything that is
    theirs: accesses, grants issued for them (their tokens stop at once) and the
    browser sessions those grants were issued in, sign-in records, profile fields,
    permission groups, SCIM, LDAP, connectors, domains, staff assignments and admin
    clients. The people's accounts stay, with their other accesses; consents stay
    too (a consent is a person's, given to a merchant, not to a unit).

    ``confirm`` must be the customer's exact name (``confirmation_required``). The
    audit event records ids and counts only."""
    unit = get(customer_id)
    if not isinstance(confirm, str) or confirm != unit.name:
        raise CustomerError(
            "confirmation_required",
            "Deleting a customer needs its exact name as confirmation.",
            "confirm",
        )
    ids = tree_ids(unit)
    bound_clients = customers_repo.client_ids(ids)
    with atomic():
        removed = customers_repo.delete_everything(ids)
        audit.record(
            actor, "customer.delete", unit.id,
            {"kind": unit.kind, "units": removed.units, "accesses": removed.accesses,
             "grants": removed.grants, "sign_ins": removed.sign_ins,
             "sessions": removed.sessions, "admin_clients": len(bound_clients)},
            unit_id=unit.id,
        )
    # The admin clients' registrations went with the units (their tokens are refused
    # from now on); their OAuth client rows follow (counted in the event above).
    for client_id in bound_clients:
        client = clients.get(client_id)
        if client is not None:
            with atomic():
                clients.stage_removal(client)
    return Deleted(unit.id, removed, bound_clients)


def activity(last_signin_at: datetime | None, now: datetime | None = None) -> str:
    """``active``, ``dormant`` or ``never`` for a customer's newest sign-in."""
    if last_signin_at is None:
        return "never"
    since = (now or utcnow()) - timedelta(days=ACTIVE_DAYS)
    return "active" if last_signin_at >= since else "dormant"


def active_since(now: datetime | None = None) -> datetime:
    """The instant dividing ``active`` from ``dormant``."""
    return (now or utcnow()) - timedelta(days=ACTIVE_DAYS)


def last_signin(unit: Unit) -> datetime | None:
    """The customer's newest sign-in through any access of its tree."""
    return customers_repo.last_signin(tree_ids(unit))


def search(
    filters: Filters, after: tuple[str, str] | None, limit: int
) -> list[tuple[Unit, datetime | None]]:
    """A page of customers (see :func:`idp.store.customers_repo.page`)."""
    return customers_repo.page(filters, after, limit)


def count(filters: Filters) -> int:
    return customers_repo.count(filters)


def describe(unit: Unit, last: datetime | None) -> dict[str, Any]:
    """A customer as plain data (the API's and the CLI's form)."""
    company = unit.kind == "company"
    return {
        "id": unit.id,
        "kind": unit.kind,
        "slug": unit.slug,
        "name": unit.name,
        "status": unit.status,
        "activity": activity(last),
        "last_signin_at": last.isoformat() if last else None,
        "address": dict(unit.address or {}) if company else None,
        "vat_id": unit.vat_id if company else None,
        "given_name": None if company else unit.given_name,
        "family_name": None if company else unit.family_name,
        "created_at": unit.created_at.isoformat() if unit.created_at else None,
    }


# --- the authorisations view: who can access what in a customer -------------------


@dataclass
class Authorisations:
    """One page of a customer's accesses (its own and its sub-units'), with every
    staff administrator and additional processor assigned to it."""

    accesses: list[dict[str, Any]]
    more: bool
    total: int
    administrators: list[dict[str, Any]]
    processors: list[dict[str, Any]]


def authorisations(
    unit: Unit, after: tuple[str | None, str] | None, limit: int
) -> Authorisations:
    """The customer's authorisations (see :class:`Authorisations`); accesses by
    e-mail address, ``limit`` per page after the sort key ``after``."""
    ids = tree_ids(unit)
    rows = customers_repo.accesses_page(ids, after, limit + 1)
    more = len(rows) > limit
    names = {uid: units_repo.by_id(uid) for uid in {a.unit_id for a, _ in rows[:limit]}}
    items = []
    for access, account in rows[:limit]:
        in_unit = names.get(access.unit_id)
        items.append({
            "id": access.id,
            "account_id": account.id,
            "email": account.email,
            "name": account.name,
            "unit_id": access.unit_id,
            "unit_name": in_unit.name if in_unit else "",
            "roles": list(access.roles or []),
            "status": access.status,
            "granting": access.grants(),
            "platform_access": bool(access.platform_access),
            "last_signin_at": access.last_signin_at,
        })
    admins: list[dict[str, Any]] = []
    processors: list[dict[str, Any]] = []
    for row, account in customers_repo.staff_of(unit.id):
        entry = {"account_id": account.id, "email": account.email, "name": account.name,
                 "since": row.created_at}
        if row.kind == "administrator":
            admins.append(entry)
        else:
            processors.append({**entry, "permissions": list(row.permissions or [])})
    return Authorisations(items, more, customers_repo.accesses_count(ids), admins, processors)


def units_of_accesses(unit: Unit, access_ids: list[str]) -> set[str]:
    """The units (of the customer's tree) of the accesses ``access_ids``; ids of no
    access, or of another customer's, are left out (:func:`remove_authorisations`
    refuses them)."""
    tree = set(tree_ids(unit))
    out = set()
    for access_id in access_ids:
        row = customers_repo.access_by_id(access_id)
        if row is not None and row.unit_id in tree:
            out.add(row.unit_id)
    return out


def remove_authorisations(
    unit: Unit,
    access_ids: list[str],
    staff_ids: list[str],
    actor: audit.Actor | str = "system",
) -> list[dict[str, str]]:
    """Remove the selected accesses (of the customer or its sub-units, through
    :func:`idp.accounts.accesses.remove`) and staff assignments to the customer in
    one transaction; all or nothing. Refused (nothing written) when an item is not
    the customer's (``not_in_customer``) or would remove the customer's last main
    user (``last_main_user``); ``field`` names the item (``accesses/2``). Returns
    one result per item."""
    tree = set(tree_ids(unit))
    access_ids = list(dict.fromkeys(access_ids))
    staff_ids = list(dict.fromkeys(staff_ids))
    rows = []
    for i, access_id in enumerate(access_ids):
        row = customers_repo.access_by_id(access_id)
        if row is None or row.unit_id not in tree:
            raise CustomerError(
                "not_in_customer", f"access {access_id!r} is not one of the customer's",
                f"accesses/{i}",
            )
        rows.append(row)
    for i, account_id in enumerate(staff_ids):
        if not staff.is_assigned(account_id, unit.id):
            raise CustomerError(
                "not_in_customer", f"staff member {account_id!r} is not assigned to the customer",
                f"staff/{i}",
            )
    results: list[dict[str, str]] = []
    with atomic():
        access_service.lock_for_main_users(unit.id)  # no concurrent removal slips past
        for i, row in enumerate(rows):
            if row.unit_id == unit.id and access_service.is_last_main_user(
                row.account_id, unit.id
            ):
                raise CustomerError(
                    "last_main_user",
                    f"access {row.id!r} is the customer's last main user; give another "
                    "person the role main_user first",
                    f"accesses/{i}",
                )
            access_id = row.id
            access_service.remove(row.account_id, row.unit_id, actor)
            results.append({"kind": "access", "id": access_id, "result": "removed"})
        for account_id in staff_ids:
            staff.stage_unassign(account_id, unit.id, actor)
            results.append({"kind": "staff", "id": account_id, "result": "removed"})
        audit.record(actor, "customer.authorisations_removed", unit.id,
                     {"accesses": len(rows), "staff": len(staff_ids)}, unit_id=unit.id)
    return results
