"""Budgets: who sets them, and which ones apply to a person buying in a unit.

A budget lives in a unit and is *personal* (``access``: one person; ``group``: each
holder of a custom permission group; ``role``: each holder of a built-in role) or a
*unit* budget: one pool for the unit's people together (and its sub-units' people,
with ``include_subunits``). For a purchase by access A in unit U:

* the **personal budget** is the most specific one: A's own, else the most generous
  (largest amount) of the budgets of A's permission groups, else of A's built-in
  roles, looked up in U and then in U's ancestors whose budget includes sub-units
  (nearer units first within a kind);
* every **unit budget** of U, and of each ancestor of U that includes sub-units,
  caps the purchase too.

A purchase fits when it fits each applicable budget's per-order limit and what each
has left in its current period (see :mod:`idp.purchases.periods`). Only holders of
``budgets.manage`` in the unit (or an ancestor) set, list or remove budgets; every
change is audited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from idp import audit
from idp.process_cache import ProcessCache
from idp.purchases import money
from idp.purchases.periods import PERIODS, Period, TimeZoneError, period_at, zone
from idp.rights import Actor, require
from idp.rights.authorization import audit_actor
from idp.store import accounts_repo, purchases_repo, units_repo
from idp.store.models import Access, Budget, Unit, new_id, utcnow
from idp.store.purchases_repo import Usage
from idp.store.unit_of_work import atomic
from idp.units import registry
from idp.units.registry import BASE_ROLES

SCOPES = ("access", "group", "role", "unit")
SPECIFICITY = {"access": 0, "group": 1, "role": 2}
PERMISSION = "budgets.manage"


class BudgetError(ValueError):
    """A budget or payment-method request that is refused; ``code`` names why,
    ``field`` the input."""

    def __init__(self, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.field = field


@dataclass(frozen=True)
class BudgetInput:
    """A budget as asked for: ``scope`` one of :data:`SCOPES`; ``subject`` the access
    (id or e-mail), group or role name (None for a unit budget); amounts as decimal
    strings of ``currency``."""

    scope: str
    subject: str | None
    period: str
    amount: str
    currency: str
    per_order: str | None = None
    include_subunits: bool = False


def describe(row: Budget) -> dict[str, Any]:
    """A budget as the API and the CLI show it (amounts as decimal strings)."""
    return {
        "id": row.id,
        "unit_id": row.unit_id,
        "scope": row.scope,
        "subject": row.subject or None,
        "period": row.period,
        "currency": row.currency,
        "amount": money.format_minor(row.amount_minor, row.currency),
        "per_order": (
            money.format_minor(row.per_order_minor, row.currency)
            if row.per_order_minor is not None else None
        ),
        "include_subunits": bool(row.include_subunits),
        "updated_at": row.updated_at.isoformat(),
    }


def unit_for(ref: str, actor: Actor) -> Unit:
    unit = registry.find(ref)
    if unit is None:
        raise BudgetError("unit_not_found", f"no unit {ref!r}", "unit")
    require(actor, PERMISSION, unit.id)
    return unit


def _subject(unit: Unit, scope: str, subject: str | None) -> str:
    if scope == "unit":
        if subject:
            raise BudgetError("invalid_subject", "a unit budget names no subject", "subject")
        return ""
    if not subject or "\x00" in subject:  # no NUL reaches a query (PostgreSQL refuses it)
        raise BudgetError("invalid_subject", f"a {scope} budget needs its subject", "subject")
    if scope == "role":
        if subject not in BASE_ROLES:
            raise BudgetError("unknown_role", "role must be one of " + ", ".join(BASE_ROLES),
                              "subject")
        return subject
    if scope == "group":
        if subject not in registry.group_names(unit):
            raise BudgetError("unknown_group", f"no permission group {subject!r} in the unit",
                              "subject")
        return subject
    access: Access | None = None
    if "@" in subject:
        account = accounts_repo.by_email(subject.strip().lower())
        access = purchases_repo.access_of(account.id, unit.id) if account else None
    else:
        found = purchases_repo.access_of_id(subject)
        access = found if found is not None and found.unit_id == unit.id else None
    if access is None:
        raise BudgetError("access_not_found", "no access to this unit for that person",
                          "subject")
    return access.id


def _amounts(data: BudgetInput) -> tuple[str, int, int | None]:
    try:
        code = money.currency(data.currency)
    except money.MoneyError as exc:
        raise BudgetError(exc.code, exc.detail, "currency") from exc
    try:
        amount = money.parse(data.amount, code)
    except money.MoneyError as exc:
        raise BudgetError(exc.code, exc.detail, "amount") from exc
    per_order = None
    if data.per_order is not None:
        try:
            per_order = money.parse(data.per_order, code)
        except money.MoneyError as exc:
            raise BudgetError(exc.code, exc.detail, "per_order") from exc
    return code, amount, per_order


def set_budget(
    actor: Actor, unit_ref: str, data: BudgetInput, who: audit.Actor | None = None
) -> Budget:
    """Create or replace the budget of ``data.scope``/``data.subject`` in the unit.
    Its usage so far in the running period is kept. Refused (:class:`BudgetError`):
    unknown scope, period, subject, currency, an amount that is not a positive
    decimal string with the currency's places, or a currency other than the one the
    unit's other budgets use (one currency per unit)."""
    unit = unit_for(unit_ref, actor)
    if data.scope not in SCOPES:
        raise BudgetError("invalid_scope", "scope must be one of " + ", ".join(SCOPES), "scope")
    if data.period not in PERIODS:
        raise BudgetError("invalid_period", "period must be one of " + ", ".join(PERIODS),
                          "period")
    subject = _subject(unit, data.scope, data.subject)
    code, amount, per_order = _amounts(data)
    others = {b.currency for b in purchases_repo.budgets_of_units([unit.id])
              if not (b.scope == data.scope and b.subject == subject)}
    if others and others != {code}:
        raise BudgetError("currency_mismatch",
                          "the unit's budgets use " + ", ".join(sorted(others)), "currency")
    row = purchases_repo.budget(unit.id, data.scope, subject)
    created = row is None
    if row is None:
        row = Budget(id=new_id(), unit_id=unit.id, scope=data.scope, subject=subject)
    row.period, row.currency, row.amount_minor = data.period, code, amount
    row.per_order_minor, row.include_subunits = per_order, bool(data.include_subunits)
    row.updated_at, row.updated_by = utcnow(), (who or audit_actor(actor)).display
    with atomic():
        purchases_repo.add(row)
        audit.record(who or audit_actor(actor), "budget.set", row.id,
                     {"created": created, **describe_input(row)},
                     unit_id=unit.id)
    return row


def describe_input(row: Budget) -> dict[str, Any]:
    return {"scope": row.scope, "subject": row.subject or None, "period": row.period,
            "currency": row.currency, "amount_minor": row.amount_minor,
            "per_order_minor": row.per_order_minor,
            "include_subunits": bool(row.include_subunits)}


def list_budgets(
    actor: Actor, unit_ref: str, after: tuple[str, str, str] | None = None, limit: int = 200
) -> list[Budget]:
    """The unit's own budgets (not its ancestors'), by scope and subject."""
    unit = unit_for(unit_ref, actor)
    return purchases_repo.budgets_page(unit.id, after, limit)


def remove_budget(
    actor: Actor, unit_ref: str, budget_id: str, who: audit.Actor | None = None
) -> bool:
    """Remove a budget of the unit (False when the unit has no such budget)."""
    unit = unit_for(unit_ref, actor)
    row = purchases_repo.budget_by_id(budget_id)
    if row is None or row.unit_id != unit.id:
        return False
    with atomic():
        audit.record(who or audit_actor(actor), "budget.remove", row.id, describe_input(row),
                     unit_id=unit.id)
        purchases_repo.delete(row)
    return True


def set_time_zone(actor: Actor, unit_ref: str, name: str, who: audit.Actor | None = None) -> Unit:
    """Set the unit's IANA time zone (the calendar of its budget periods)."""
    unit = unit_for(unit_ref, actor)
    try:
        zone(name)
    except TimeZoneError as exc:
        raise BudgetError("invalid_time_zone", str(exc), "time_zone") from exc
    with atomic():
        unit.time_zone = name
        units_repo.stage(unit)
        audit.record(who or audit_actor(actor), "unit.time_zone", unit.id,
                     {"time_zone": name}, unit_id=unit.id)
    return unit


# --- which budgets apply --------------------------------------------------------


class UnitLike(Protocol):
    """What the budget rules read of a unit: a :class:`Unit` or a :class:`UnitRef`."""

    @property
    def id(self) -> str: ...

    @property
    def time_zone(self) -> str | None: ...


@dataclass(frozen=True)
class UnitRef:
    """An immutable copy of what the purchase hot path reads of a unit (cached)."""

    id: str
    parent_id: str | None
    time_zone: str | None


@dataclass(frozen=True)
class BudgetTerms:
    """An immutable copy of a budget's definition (cached per process, see
    :func:`budgets_of_chain`): what deciding a purchase reads of a :class:`Budget`."""

    id: str
    unit_id: str
    scope: str
    subject: str
    period: str
    currency: str
    amount_minor: int
    per_order_minor: int | None
    include_subunits: bool

    @classmethod
    def of(cls, b: Budget) -> BudgetTerms:
        return cls(b.id, b.unit_id, b.scope, b.subject or "", b.period, b.currency,
                   b.amount_minor, b.per_order_minor, bool(b.include_subunits))


# Per-process copies (idp.process_cache: at most 2 s old, emptied by any commit here
# that changes a unit or budget): the unit chain of a unit and the budgets defined
# in a chain. The purchase hot path reads them on every authorisation.
CHAINS: ProcessCache[tuple[UnitRef, ...]] = ProcessCache("purchase_unit_chains", (Unit,), 4096)
BUDGETS: ProcessCache[tuple[BudgetTerms, ...]] = ProcessCache(
    "purchase_budgets", (Budget, Unit), 4096
)


def chain_refs(unit_id: str) -> tuple[UnitRef, ...]:
    """The unit and its ancestors, nearest first, as :class:`UnitRef` (cached);
    empty for an unknown unit."""
    def load() -> tuple[UnitRef, ...] | None:
        unit = purchases_repo.unit(unit_id)
        if unit is None:
            return None
        return tuple(UnitRef(u.id, u.parent_id, u.time_zone) for u in chain(unit))

    return CHAINS.get_or_load(unit_id, load) or ()


def budgets_of_chain(unit_ids: Sequence[str]) -> tuple[BudgetTerms, ...]:
    """The budgets defined in any of ``unit_ids`` (cached per chain)."""
    key = tuple(unit_ids)

    def load() -> tuple[BudgetTerms, ...]:
        return tuple(BudgetTerms.of(b) for b in purchases_repo.budgets_of_units(key))

    found = BUDGETS.get_or_load(key, load)
    return found if found is not None else ()


@dataclass(frozen=True)
class Applied:
    """One budget applying to a purchase, in its current period: the usage key is
    (budget id, access id or "" for a unit pool, period key)."""

    budget: BudgetTerms
    period: Period
    access_key: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.budget.id, self.access_key, self.period.key)


def chain(unit: Unit) -> list[Unit]:
    """``unit`` and its ancestors, nearest first."""
    return [unit, *registry.ancestors(unit)]


def applicable(
    units: Sequence[UnitLike], access: Access, now: datetime | None = None
) -> list[Applied]:
    """The budgets that apply to a purchase through ``access`` in ``units[0]``
    (``units`` is :func:`chain` or :func:`chain_refs`), personal budget first, then
    the unit caps (see the module). The budgets' definitions come from
    :func:`budgets_of_chain` (at most one query)."""
    now = now or utcnow()
    home = units[0]
    by_unit = {u.id: i for i, u in enumerate(units)}
    rows = [
        b for b in budgets_of_chain(list(by_unit))
        if b.unit_id == home.id or b.include_subunits
    ]
    roles = set(access.roles or [])
    personal: list[tuple[int, int, int, BudgetTerms]] = []
    caps: list[BudgetTerms] = []
    for b in rows:
        if b.scope == "unit":
            caps.append(b)
        elif (b.scope == "access" and b.subject == access.id) or (
            b.scope in ("group", "role") and b.subject in roles
        ):
            personal.append((SPECIFICITY[b.scope], by_unit[b.unit_id], -b.amount_minor, b))
    tz = home.time_zone or "UTC"
    out: list[Applied] = []
    if personal:
        best = min(personal, key=lambda t: (t[0], t[1], t[2], t[3].id))[3]
        out.append(Applied(best, period_at(best.period, now, tz), access.id))
    for b in sorted(caps, key=lambda b: (by_unit[b.unit_id], b.id)):
        out.append(Applied(b, period_at(b.period, now, tz), ""))
    return out


@dataclass(frozen=True)
class Standing:
    """What a person has left under the budgets that apply (minor units)."""

    currency: str
    remaining: int
    per_order_limit: int | None
    period_ends: datetime


def standing(
    applied: list[Applied], used: Mapping[tuple[str, str, str], Usage]
) -> Standing | None:
    """The tightest remaining amount and per-order limit across ``applied``, with
    the earliest period end; None when no budget applies."""
    if not applied:
        return None
    remaining = min(
        a.budget.amount_minor - (used[a.key].used_minor if a.key in used else 0) for a in applied
    )
    limits = [a.budget.per_order_minor for a in applied if a.budget.per_order_minor is not None]
    return Standing(
        currency=applied[0].budget.currency,
        remaining=max(0, remaining),
        per_order_limit=min(limits) if limits else None,
        period_ends=min(a.period.ends_at for a in applied),
    )
