"""Business units: companies, their sub-units, roles and extra profile fields.

A unit has a display ``name``, a unique ``slug`` (stable key for configuration files
and URLs), a ``kind`` (``company`` or ``person`` for a sole trader), an optional
``parent`` (a department or subsidiary hangs under its company), and its own custom
permission groups (rows of ``permission_groups``, see :mod:`idp.rights`). An account
may belong to several units (``Access``); its ``roles`` there come from the base
vocabulary :data:`BASE_ROLES` plus the unit's permission groups. See
``docs/companies.md``.

Every change is validated first and written in one transaction with its audit event.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from idp import audit
from idp.store import customers_repo, rights_repo, units_repo
from idp.store.models import PermissionGroup, Unit, UnitProfileField, new_id
from idp.store.unit_of_work import Conflict, atomic
from idp.units import field_types

BASE_ROLES: tuple[str, ...] = (
    "main_user",
    "commercial_contact",
    "operational_contact",
    "employee",
)
KINDS: tuple[str, ...] = ("company", "person")

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
HEX_ID_RE = re.compile(r"^[0-9a-f]{32}$")
GROUP_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
FIELD_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Account columns a unit may not shadow with an extra profile field.
RESERVED_FIELDS = frozenset(
    [
        "id",
        "sub",
        "email",
        "email_verified",
        "name",
        "given_name",
        "family_name",
        "phone_number",
        "locale",
        "cost_centre",
        "personnel_number",
        "department",
        "status",
        "roles",
        "org_id",
        "org_name",
        "wallet_fields",
    ]
)
MAX_DEPTH = 10


class UnitError(ValueError):
    """A unit change is refused; ``code`` says why (``not_found``, ``invalid_name``,
    ``slug_taken``, ``has_children``, ``cycle``, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _clean_text(value: Any, field: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise UnitError(f"invalid_{field}", f"{field}: must be text")
    text = value.strip()
    if not text or len(text) > max_len:
        raise UnitError(f"invalid_{field}", f"{field}: 1 to {max_len} characters")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise UnitError(f"invalid_{field}", f"{field}: control characters are not allowed")
    return text


def validate_name(name: Any) -> str:
    """A unit's display name, stripped: 1 to 200 characters without control
    characters; else :class:`UnitError` ``invalid_name``."""
    return _clean_text(name, "name", 200)


def slugify(name: str) -> str:
    """A slug proposal for ``name``: ASCII letters and digits joined by hyphens
    ("Müller & Söhne GmbH" -> "muller-sohne-gmbh"); ``unit`` when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].strip("-")
    return slug or "unit"


def validate_slug(slug: Any) -> str:
    """``slug`` if it is a valid unit slug (lower-case letters, digits and inner
    hyphens, at most 100 characters, not shaped like a unit id), else :class:`UnitError`."""
    if not isinstance(slug, str) or not SLUG_RE.match(slug) or HEX_ID_RE.match(slug):
        raise UnitError(
            "invalid_slug",
            "slug: lower-case letters, digits and inner hyphens, at most 100 characters",
        )
    return slug


def free_slug(base: str) -> str:
    """``base`` if no unit has it as slug, else the first free ``base-2``, ``base-3``..."""
    taken = units_repo.slugs_like(base)
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def validate_groups(groups: Iterable[Any]) -> list[str]:
    """Permission group names, deduplicated in order; each lower-case
    ``[a-z][a-z0-9_.-]*`` (at most 64) and not one of :data:`BASE_ROLES`."""
    out: list[str] = []
    for group in groups:
        if not isinstance(group, str) or not GROUP_RE.match(group):
            raise UnitError("invalid_group", f"permission group {group!r}: use [a-z0-9_.-]")
        if group in BASE_ROLES:
            raise UnitError("invalid_group", f"permission group {group!r} is a base role")
        if group not in out:
            out.append(group)
    return out


def find(ref: str) -> Unit | None:
    """The unit whose id or slug is ``ref``, or None (never raises)."""
    if not isinstance(ref, str):
        return None
    return units_repo.by_id(ref) or units_repo.by_slug(ref)


def get(ref: str) -> Unit:
    """The unit whose id or slug is ``ref``; :class:`UnitError` ``not_found`` otherwise."""
    unit = find(ref)
    if unit is None:
        raise UnitError("not_found", f"no business unit {ref!r}")
    return unit


def list_units() -> list[Unit]:
    """Every unit, ordered by slug."""
    return units_repo.all_units()


def ancestors(unit: Unit) -> list[Unit]:
    """The chain of parents of ``unit``, nearest first."""
    out: list[Unit] = []
    seen = {unit.id}
    current = unit
    while current.parent_id and len(out) <= MAX_DEPTH:
        parent = units_repo.by_id(current.parent_id)
        if parent is None or parent.id in seen:
            break
        out.append(parent)
        seen.add(parent.id)
        current = parent
    return out


def children(unit: Unit) -> list[Unit]:
    """The sub-units directly below ``unit``."""
    return units_repo.children(unit.id)


def descendant_ids(unit_id: str) -> set[str]:
    """Ids of every unit below ``unit_id`` (not including it)."""
    out: set[str] = set()
    frontier = [unit_id]
    while frontier:
        nxt: list[str] = []
        for uid in frontier:
            for child in units_repo.children(uid):
                if child.id not in out and child.id != unit_id:
                    out.add(child.id)
                    nxt.append(child.id)
        frontier = nxt
    return out


def group_names(unit: Unit) -> list[str]:
    """The names of the unit's custom permission groups, sorted."""
    return rights_repo.group_names(unit.id) if unit.id else []


def roles_for(unit: Unit) -> tuple[str, ...]:
    """The roles an account can hold in ``unit``: the base roles, then its custom
    permission groups (sorted by name)."""
    return BASE_ROLES + tuple(group_names(unit))


def validate_roles(unit: Unit, roles: Iterable[Any]) -> list[str]:
    """``roles`` deduplicated, each one of :func:`roles_for` ``unit``; else :class:`UnitError`."""
    allowed = roles_for(unit)
    out: list[str] = []
    for role in roles:
        if role not in allowed:
            raise UnitError(
                "invalid_role",
                f"role {role!r} is not defined in unit {unit.slug!r}; one of " + ", ".join(allowed),
            )
        if role not in out:
            out.append(role)
    return out


def _resolve_parent(parent: str | None, unit: Unit | None) -> Unit | None:
    if parent is None or parent == "":
        return None
    found = get(parent)
    if unit is not None and (found.id == unit.id or found.id in descendant_ids(unit.id)):
        raise UnitError("cycle", f"unit {unit.slug!r} cannot be placed under {found.slug!r}")
    if len(ancestors(found)) + 1 >= MAX_DEPTH:
        raise UnitError("too_deep", f"units nest at most {MAX_DEPTH} levels")
    return found


def create(
    name: str,
    parent: str | None = None,
    kind: str = "company",
    slug: str | None = None,
    permission_groups: Sequence[str] = (),
    actor: str = "system",
) -> Unit:
    """Create a unit and return it. Without ``slug`` one is derived from ``name``
    (suffixed ``-2``, ``-3``, ... when taken); an explicit slug that is taken raises
    :class:`UnitError` ``slug_taken``. ``parent`` is an id or slug."""
    clean_name = _clean_text(name, "name", 200)
    if kind not in KINDS:
        raise UnitError("invalid_kind", f"type: one of {', '.join(KINDS)}")
    parent_unit = _resolve_parent(parent, None)
    groups = validate_groups(permission_groups)
    if slug is not None:
        chosen = validate_slug(slug)
        if units_repo.by_slug(chosen) is not None:
            raise UnitError("slug_taken", f"slug {chosen!r} is taken")
    else:
        chosen = free_slug(slugify(clean_name))
    unit = Unit(
        id=new_id(),
        name=clean_name,
        slug=chosen,
        kind=kind,
        parent_id=parent_unit.id if parent_unit else None,
        # a sub-unit shares its customer's status (a blocked customer's new sub-unit
        # is blocked too; ``idp.units.customers``)
        status=parent_unit.status if parent_unit else "active",
        permission_group_rows=[PermissionGroup(name=g, permissions=[]) for g in groups],
    )
    event = audit.event(
        actor, "unit.create", chosen, {"kind": kind, "parent": parent_unit and parent_unit.slug},
        unit_id=unit.id,
    )
    try:
        with atomic():
            units_repo.stage(unit, event)
    except Conflict as exc:
        raise UnitError("slug_taken", f"slug {chosen!r} is taken") from exc
    return unit


_UNSET: Any = object()


def update(
    ref: str,
    name: str | None = None,
    parent: str | None = _UNSET,
    kind: str | None = None,
    permission_groups: Sequence[str] | None = None,
    actor: str = "system",
) -> Unit:
    """Change the given attributes of a unit (``parent=None`` makes it top-level);
    returns the unit. ``permission_groups`` replaces the set of custom group names:
    new names become groups without permissions, kept ones keep theirs. Refuses
    parent cycles and removing a permission group that members still hold."""
    unit = get(ref)
    changed: dict[str, Any] = {}
    if name is not None:
        clean = _clean_text(name, "name", 200)
        if clean != unit.name:
            unit.name = clean
            changed["name"] = True
    if kind is not None and kind != unit.kind:
        if kind not in KINDS:
            raise UnitError("invalid_kind", f"type: one of {', '.join(KINDS)}")
        unit.kind = kind
        changed["kind"] = kind
    if parent is not _UNSET:
        parent_unit = _resolve_parent(parent, unit)
        new_parent = parent_unit.id if parent_unit else None
        if new_parent != unit.parent_id:
            unit.parent_id = new_parent
            changed["parent"] = parent_unit.slug if parent_unit else None
            if parent_unit is not None and parent_unit.status != unit.status:
                # moved into another customer: the unit and its sub-units take its status
                unit.status = parent_unit.status
                customers_repo.set_status(descendant_ids(unit.id), parent_unit.status)
    if permission_groups is not None:
        groups = validate_groups(permission_groups)
        current = {row.name: row for row in rights_repo.groups(unit.id)}
        dropped = set(current) - set(groups)
        held = dropped & units_repo.roles_held(unit.id)
        if held:
            raise UnitError(
                "group_in_use",
                f"permission group(s) {', '.join(sorted(held))} still held by members",
            )
        if set(groups) != set(current):
            unit.permission_group_rows = [
                current.get(g) or PermissionGroup(unit_id=unit.id, name=g, permissions=[])
                for g in groups
            ]
            changed["permission_groups"] = sorted(groups)
    if changed:
        with atomic():
            units_repo.stage(unit, audit.event(actor, "unit.update", unit.slug, changed, unit.id))
    return unit


def delete(ref: str, actor: str = "system") -> Unit:
    """Delete a unit with its memberships, profile fields, domains and connectors.
    A unit that still has sub-units is refused (``has_children``)."""
    unit = get(ref)
    kids = units_repo.children(unit.id)
    if kids:
        raise UnitError(
            "has_children",
            f"unit {unit.slug!r} has sub-units ({', '.join(sorted(k.slug for k in kids))}); "
            "delete or move them first",
        )
    members = units_repo.member_count(unit.id)
    with atomic():
        units_repo.delete(unit, audit.event(
            actor, "unit.delete", unit.slug, {"members": members}, unit.id
        ))
    return unit


def validate_field_name(name: Any) -> str:
    """A profile field name: ``[a-z][a-z0-9_]*`` (at most 64), not an account column."""
    if not isinstance(name, str) or not FIELD_RE.match(name):
        raise UnitError("invalid_field", "field name: lower-case [a-z][a-z0-9_]*, at most 64")
    if name in RESERVED_FIELDS:
        raise UnitError("invalid_field", f"field name {name!r} is a built-in account field")
    return name


def add_field(
    ref: str,
    name: str,
    label: str | None = None,
    required: bool = False,
    position: int | None = None,
    actor: str = "system",
    *,
    type_: str | None = None,
    currency: str | None = None,
    choices: Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
    help_: dict[str, str] | None = None,
    set_by: str | None = None,
) -> UnitProfileField:
    """Add (or, when ``name`` exists, change) an extra profile field of the unit that
    its employees fill in their wallet (or, ``set_by`` ``company``, that only the
    company's HR system or directory sets); released to merchants under
    ``wallet_fields``. ``type_``, ``currency``, ``choices``, ``labels`` and ``help_``
    (:mod:`idp.units.field_types`) keep their current value when None on a change
    (text, employee-set, no translations on a new field)."""
    unit = get(ref)
    clean_name = validate_field_name(name)
    clean_label = _clean_text(label if label is not None else clean_name, "label", 200)
    existing = units_repo.field(unit.id, clean_name)
    if position is None:
        position = existing.position if existing else len(units_repo.fields(unit.id))
    if not isinstance(position, int) or not 0 <= position <= 10_000:
        raise UnitError("invalid_position", "position: 0 to 10000")
    kind = type_ if type_ is not None else (existing.type if existing else "text")
    try:
        typed = field_types.definition(
            kind,
            currency if currency is not None or type_ is not None
            else (existing.currency if existing else None),
            list(choices) if choices is not None
            else (list(existing.choices or []) if existing and type_ in (None, "choice") else []),
            labels if labels is not None else (dict(existing.labels or {}) if existing else {}),
            help_ if help_ is not None else (dict(existing.help or {}) if existing else {}),
            set_by if set_by is not None else (existing.set_by if existing else "employee"),
        )
    except field_types.DefinitionError as exc:
        raise UnitError("invalid_field_type", str(exc)) from exc
    row = existing or UnitProfileField(unit_id=unit.id, name=clean_name)
    row.label = clean_label
    row.required = bool(required)
    row.position = position
    row.type = typed.type
    row.currency = typed.currency
    row.choices = typed.choices
    row.labels = typed.labels
    row.help = typed.help
    row.set_by = typed.set_by
    event = audit.event(
        actor,
        "unit.field.update" if existing else "unit.field.add",
        f"{unit.slug}/{clean_name}",
        {"required": row.required, "type": row.type, "set_by": row.set_by},
        unit.id,
    )
    try:
        with atomic():
            units_repo.stage(row, event)
    except Conflict as exc:
        raise UnitError("field_taken", f"field {clean_name!r} exists") from exc
    return row


def remove_field(ref: str, name: str, actor: str = "system") -> bool:
    """Remove the unit's profile field ``name``; True when it existed. Values already
    stored in wallets stay until the employee edits them."""
    unit = get(ref)
    row = units_repo.field(unit.id, name) if isinstance(name, str) else None
    if row is None:
        return False
    with atomic():
        units_repo.delete(row, audit.event(
            actor, "unit.field.remove", f"{unit.slug}/{name}", unit_id=unit.id
        ))
    return True


def fields(ref: str) -> list[UnitProfileField]:
    """The unit's extra profile fields in display order."""
    return units_repo.fields(get(ref).id)


def field_to_dict(row: UnitProfileField) -> dict[str, Any]:
    """A profile field as plain data (the ``idp apply`` format)."""
    out: dict[str, Any] = {"name": row.name, "label": row.label, "required": row.required,
                           "type": row.type or "text"}
    if row.currency:
        out["currency"] = row.currency
    if row.choices:
        out["choices"] = list(row.choices)
    if row.labels:
        out["labels"] = dict(row.labels)
    if row.help:
        out["help"] = dict(row.help)
    if (row.set_by or "employee") != "employee":
        out["set_by"] = row.set_by
    return out


def describe(unit: Unit) -> dict[str, Any]:
    """A unit as plain data for the CLI and admin views."""
    parent = units_repo.by_id(unit.parent_id) if unit.parent_id else None
    return {
        "id": unit.id,
        "slug": unit.slug,
        "name": unit.name,
        "type": unit.kind,
        "parent": parent.slug if parent else None,
        "parent_id": unit.parent_id,
        "permission_groups": group_names(unit),
        "roles": list(roles_for(unit)),
        "profile_fields": [field_to_dict(f) for f in units_repo.fields(unit.id)],
        "members": units_repo.member_count(unit.id),
        "created_at": unit.created_at.isoformat() if unit.created_at else None,
    }
