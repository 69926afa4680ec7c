"""Central payment methods: what a unit lets its people use at merchants.

Kinds: ``invoice`` (to the company, with the invoice address), ``purchase_order``
(the merchant must ask for a purchase-order number), ``company_card`` (a reference
or token of the company's card programme: anything that looks like a card number, a
run of 13 to 19 digits passing the Luhn check, is refused), ``cost_centre``
(charged to the person's cost centre, which the merchant receives with it).

Each method can be narrowed to holders of some roles or permission groups and to
people whose budget (the amount of the budget that applies to them, see
:mod:`idp.purchases.budgets`) lies between a minimum and a maximum; a person
without a budget passes no minimum and no maximum.

A unit without methods of its own uses those of its nearest ancestor that has some.
Set by holders of ``budgets.manage``; every change is audited.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from idp import audit
from idp.process_cache import ProcessCache
from idp.purchases import money
from idp.purchases.budgets import BudgetError, UnitLike, unit_for
from idp.rights import Actor
from idp.rights.authorization import audit_actor
from idp.store import purchases_repo
from idp.store.models import Access, PaymentMethod, Unit, new_id, utcnow
from idp.store.unit_of_work import atomic

KINDS = ("invoice", "purchase_order", "company_card", "cost_centre")
ADDRESS_FIELDS = ("name", "street", "postal_code", "city", "country")
_DIGIT_RUN = re.compile(r"\d[\d \-]{11,}\d")


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (only digits) passes the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def looks_like_pan(text: str) -> bool:
    """True when ``text`` holds a card number: a run of 13 to 19 digits (spaces and
    dashes between them ignored) that passes the Luhn check, anywhere in it."""
    for match in _DIGIT_RUN.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return True
    return False


@dataclass(frozen=True)
class MethodInput:
    """A method as asked for; ``min_budget``/``max_budget`` decimal strings in the
    currency of the unit's budgets (``currency``)."""

    kind: str
    address: dict[str, str] = field(default_factory=dict)
    reference: str | None = None
    roles: list[str] = field(default_factory=list)
    min_budget: str | None = None
    max_budget: str | None = None
    currency: str | None = None


def _details(data: MethodInput) -> dict[str, Any]:
    if data.kind == "invoice":
        address = {k: str(v).strip() for k, v in data.address.items() if k in ADDRESS_FIELDS}
        unknown = set(data.address) - set(ADDRESS_FIELDS)
        if unknown or not all(address.get(k) for k in ("street", "postal_code", "city",
                                                          "country")):
            raise BudgetError("invalid_address", "an invoice needs street, postal_code, city "
                              "and country (and may name the company)", "address")
        if any(len(v) > 200 for v in address.values()):
            raise BudgetError("invalid_address", "address fields are at most 200 characters",
                              "address")
        return {"address": address}
    if data.kind == "company_card":
        ref = (data.reference or "").strip()
        if not ref or len(ref) > 200:
            raise BudgetError("invalid_reference", "a company card needs its programme's "
                              "reference or token (1-200 characters)", "reference")
        if looks_like_pan(ref):
            raise BudgetError("card_number_refused", "give the card programme's reference or "
                              "token, never a card number", "reference")
        return {"reference": ref}
    if data.address or data.reference:
        raise BudgetError("invalid_details", f"{data.kind} takes no address or reference")
    return {}


def _bound(text: str | None, currency: str | None, name: str) -> int | None:
    if text is None:
        return None
    if currency is None:
        raise BudgetError("currency_required", "a budget bound needs the currency", "currency")
    try:
        return money.parse(text, currency)
    except money.MoneyError as exc:
        raise BudgetError(exc.code, exc.detail, name) from exc


def describe(row: PaymentMethod, currency: str | None = None) -> dict[str, Any]:
    """A method as admins see it (bounds in ``currency`` when known, else minor units)."""
    def shown(v: int | None) -> str | int | None:
        if v is None or currency is None:
            return v
        return money.format_minor(v, currency)

    return {"kind": row.kind, "unit_id": row.unit_id, **row.details,
            "roles": list(row.roles or []), "min_budget": shown(row.min_budget_minor),
            "max_budget": shown(row.max_budget_minor)}


def set_method(
    actor: Actor, unit_ref: str, data: MethodInput, who: audit.Actor | None = None
) -> PaymentMethod:
    """Create or replace the unit's method of ``data.kind``."""
    unit = unit_for(unit_ref, actor)
    if data.kind not in KINDS:
        raise BudgetError("invalid_kind", "kind must be one of " + ", ".join(KINDS), "kind")
    details = _details(data)
    from idp.units import registry

    allowed = set(registry.roles_for(unit))
    bad = [r for r in data.roles if r not in allowed]
    if bad:
        raise BudgetError("unknown_role", f"no role or permission group {bad[0]!r}", "roles")
    code = money.currency(data.currency) if data.currency else None
    low = _bound(data.min_budget, code, "min_budget")
    high = _bound(data.max_budget, code, "max_budget")
    row = purchases_repo.payment_method(unit.id, data.kind)
    if row is None:
        row = PaymentMethod(id=new_id(), unit_id=unit.id, kind=data.kind)
    row.details, row.roles = details, sorted(set(data.roles))
    row.min_budget_minor, row.max_budget_minor, row.updated_at = low, high, utcnow()
    with atomic():
        purchases_repo.add(row)
        audit.record(who or audit_actor(actor), "payment_method.set", row.id,
                     {"kind": row.kind, "roles": row.roles}, unit_id=unit.id)
    return row


def list_methods(actor: Actor, unit_ref: str) -> list[PaymentMethod]:
    """The unit's own methods (at most one per kind)."""
    unit = unit_for(unit_ref, actor)
    return purchases_repo.payment_methods_of_units([unit.id])


def remove_method(actor: Actor, unit_ref: str, kind: str, who: audit.Actor | None = None) -> bool:
    unit = unit_for(unit_ref, actor)
    row = purchases_repo.payment_method(unit.id, kind)
    if row is None:
        return False
    with atomic():
        audit.record(who or audit_actor(actor), "payment_method.remove", row.id,
                     {"kind": kind}, unit_id=unit.id)
        purchases_repo.delete(row)
    return True


@dataclass(frozen=True)
class MethodTerms:
    """An immutable copy of a payment method (cached per process, see
    :func:`allowed_for`)."""

    unit_id: str
    kind: str
    details: str  # JSON: each answer gets its own copy
    roles: frozenset[str]
    min_budget_minor: int | None
    max_budget_minor: int | None

    @classmethod
    def of(cls, row: PaymentMethod) -> MethodTerms:
        return cls(row.unit_id, row.kind, json.dumps(row.details or {}),
                   frozenset(row.roles or []), row.min_budget_minor, row.max_budget_minor)


# The payment methods defined in a unit chain (idp.process_cache: at most 2 s old,
# emptied by any commit here that changes a payment method or a unit).
METHODS: ProcessCache[tuple[MethodTerms, ...]] = ProcessCache(
    "purchase_payment_methods", (PaymentMethod, Unit), 4096
)


def _methods_of_chain(unit_ids: tuple[str, ...]) -> tuple[MethodTerms, ...]:
    def load() -> tuple[MethodTerms, ...]:
        return tuple(MethodTerms.of(r) for r in purchases_repo.payment_methods_of_units(unit_ids))

    found = METHODS.get_or_load(unit_ids, load)
    return found if found is not None else ()


def allowed_for(
    units: Sequence[UnitLike], access: Access, budget_amount: int | None
) -> list[dict[str, Any]]:
    """The methods ``access`` may use in ``units[0]`` (``units`` its chain): the
    nearest unit's methods that have any, narrowed by role and budget, as merchants
    receive them (``kind`` plus the address, reference or cost centre)."""
    order = {u.id: i for i, u in enumerate(units)}
    rows = _methods_of_chain(tuple(order))
    if not rows:
        return []
    nearest = min(order[r.unit_id] for r in rows)
    roles = set(access.roles or [])
    out: list[dict[str, Any]] = []
    for row in rows:
        if order[row.unit_id] != nearest:
            continue
        if row.roles and not roles & row.roles:
            continue
        if row.min_budget_minor is not None and (
            budget_amount is None or budget_amount < row.min_budget_minor
        ):
            continue
        if row.max_budget_minor is not None and (
            budget_amount is None or budget_amount > row.max_budget_minor
        ):
            continue
        item: dict[str, Any] = {"kind": row.kind, **json.loads(row.details)}
        if row.kind == "cost_centre":
            if not access.cost_centre:
                continue  # nothing to charge
            item["cost_centre"] = access.cost_centre
        out.append(item)
    return out
