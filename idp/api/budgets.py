"""Budgets (issue 17, item 1): set, list and remove a unit's budgets. The rules
live in :mod:`idp.purchases.budgets`; this module validates, authorises and answers.
Amounts are decimal strings ("100.00") in the currency's minor-unit precision."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from idp.api import bp, pages
from idp.api.endpoint import Call, endpoint
from idp.api.pages import Page, PageQuery
from idp.api.problems import Problem, not_found
from idp.purchases import budgets
from idp.purchases.budgets import BudgetError, BudgetInput

AMOUNT = r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,3})?$"


class BudgetIn(BaseModel):
    """A budget to create or replace (one per scope and subject in a unit)."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["access", "group", "role", "unit"] = Field(
        description="access: one person; group/role: each holder; unit: the unit's pool"
    )
    subject: str | None = Field(
        None, max_length=320,
        description="access: access id or e-mail; group/role: its name; unit: null",
    )
    period: Literal["month", "quarter", "year"]
    amount: str = Field(pattern=AMOUNT, description="Decimal string, e.g. 100.00")
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217 code")
    per_order: str | None = Field(None, pattern=AMOUNT, description="Per-order limit")
    include_subunits: bool = Field(False, description="Applies in the sub-units too")


class BudgetOut(BaseModel):
    """A budget as set."""

    id: str
    unit_id: str
    scope: str
    subject: str | None
    period: str
    currency: str
    amount: str
    per_order: str | None
    include_subunits: bool
    updated_at: str


def _refused(exc: BudgetError) -> Problem:
    errors = [{"pointer": f"/body/{exc.field}", "detail": exc.detail}] if exc.field else None
    return Problem(422, exc.code, exc.detail, errors=errors)


@endpoint(
    bp, "POST", "/units/{unit_id}/budgets", summary="Set a budget", tag="budgets",
    body=BudgetIn, response=BudgetOut, permission="budgets.manage",
)
def set_budget(call: Call, unit_id: str) -> BudgetOut:
    """Creates or replaces the budget of `scope` and `subject` in the unit (what the
    running period used so far is kept). One currency per unit."""
    body: BudgetIn = call.body
    data = BudgetInput(
        scope=body.scope, subject=body.subject, period=body.period, amount=body.amount,
        currency=body.currency, per_order=body.per_order,
        include_subunits=body.include_subunits,
    )
    try:
        row = budgets.set_budget(call.actor, unit_id, data)
    except BudgetError as exc:
        raise _refused(exc) from exc
    return BudgetOut.model_validate(budgets.describe(row))


@endpoint(
    bp, "GET", "/units/{unit_id}/budgets", summary="List the unit's budgets",
    tag="budgets", query=PageQuery, response=Page[BudgetOut], permission="budgets.manage",
)
def list_budgets(call: Call, unit_id: str) -> Page[BudgetOut]:
    """The unit's own budgets (not its ancestors'), by scope and subject."""
    query: PageQuery = call.query
    key = pages.decode(query.cursor, (str, str, str))
    after = (key[0], key[1], key[2]) if key and None not in key else None
    rows = budgets.list_budgets(call.actor, unit_id, after, query.limit + 1)
    more, rows = len(rows) > query.limit, rows[: query.limit]
    cursor = pages.encode([rows[-1].scope, rows[-1].subject, rows[-1].id]) if more else None
    return Page[BudgetOut](
        items=[BudgetOut.model_validate(budgets.describe(r)) for r in rows], next_cursor=cursor
    )


@endpoint(
    bp, "DELETE", "/units/{unit_id}/budgets/{budget_id}", summary="Remove a budget",
    tag="budgets", permission="budgets.manage",
)
def remove_budget(call: Call, unit_id: str, budget_id: str) -> None:
    """Removes the budget; reservations made under it are not given back to anything."""
    if not budgets.remove_budget(call.actor, unit_id, budget_id):
        raise not_found("budget")


class TimeZoneIn(BaseModel):
    """The unit's IANA time zone."""

    model_config = ConfigDict(extra="forbid")

    time_zone: str = Field(min_length=1, max_length=64, description="e.g. Europe/Berlin")


class TimeZoneOut(BaseModel):
    unit_id: str
    time_zone: str


@endpoint(
    bp, "PUT", "/units/{unit_id}/time-zone", summary="Set the unit's time zone",
    tag="budgets", body=TimeZoneIn, response=TimeZoneOut, permission="budgets.manage",
)
def set_time_zone(call: Call, unit_id: str) -> TimeZoneOut:
    """The calendar of the unit's budget periods (an IANA name; default `UTC`)."""
    body: TimeZoneIn = call.body
    try:
        unit = budgets.set_time_zone(call.actor, unit_id, body.time_zone)
    except BudgetError as exc:
        raise _refused(exc) from exc
    return TimeZoneOut(unit_id=unit.id, time_zone=unit.time_zone)


# --- payment methods (issue 17, item 5) --------------------------------------------


class AddressIn(BaseModel):
    """The invoice address."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    street: str = Field(min_length=1, max_length=200)
    postal_code: str = Field(min_length=1, max_length=20)
    city: str = Field(min_length=1, max_length=200)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")


class PaymentMethodIn(BaseModel):
    """A payment method the unit allows (details by kind)."""

    model_config = ConfigDict(extra="forbid")

    address: AddressIn | None = Field(None, description="invoice: the invoice address")
    reference: str | None = Field(
        None, max_length=200,
        description="company_card: the card programme's reference or token (never a card "
        "number: 13-19 digits passing the Luhn check are refused)",
    )
    roles: list[str] = Field(default_factory=list, max_length=50,
                             description="Only holders of these roles or groups; empty: all")
    min_budget: str | None = Field(None, pattern=AMOUNT)
    max_budget: str | None = Field(None, pattern=AMOUNT)
    currency: str | None = Field(None, min_length=3, max_length=3,
                                 description="Currency of the budget bounds")


class PaymentMethodOut(BaseModel):
    """A payment method as set."""

    model_config = ConfigDict(extra="allow")

    kind: str
    unit_id: str
    roles: list[str]
    min_budget: str | int | None
    max_budget: str | int | None


@endpoint(
    bp, "PUT", "/units/{unit_id}/payment-methods/{kind}", summary="Allow a payment method",
    tag="budgets", body=PaymentMethodIn, response=PaymentMethodOut,
    permission="budgets.manage",
)
def set_payment_method(call: Call, unit_id: str, kind: str) -> PaymentMethodOut:
    """Creates or replaces the unit's payment method of `kind` (invoice,
    purchase_order, company_card, cost_centre)."""
    from idp.purchases import payment_methods

    body: PaymentMethodIn = call.body
    data = payment_methods.MethodInput(
        kind=kind, address=body.address.model_dump(exclude_none=True) if body.address else {},
        reference=body.reference, roles=body.roles, min_budget=body.min_budget,
        max_budget=body.max_budget, currency=body.currency,
    )
    try:
        row = payment_methods.set_method(call.actor, unit_id, data)
    except BudgetError as exc:
        if exc.code == "invalid_kind":
            raise not_found("payment method kind") from exc
        raise _refused(exc) from exc
    return PaymentMethodOut.model_validate(payment_methods.describe(row, body.currency))


@endpoint(
    bp, "GET", "/units/{unit_id}/payment-methods", summary="List the unit's payment methods",
    tag="budgets", query=PageQuery, response=Page[PaymentMethodOut],
    permission="budgets.manage",
)
def list_payment_methods(call: Call, unit_id: str) -> Page[PaymentMethodOut]:
    """The unit's own methods: at most one per kind, so one page. Budget bounds in
    minor units."""
    from idp.purchases import payment_methods

    rows = payment_methods.list_methods(call.actor, unit_id)
    return Page[PaymentMethodOut](
        items=[PaymentMethodOut.model_validate(payment_methods.describe(r)) for r in rows],
        next_cursor=None,
    )


@endpoint(
    bp, "DELETE", "/units/{unit_id}/payment-methods/{kind}", summary="Remove a payment method",
    tag="budgets", permission="budgets.manage",
)
def remove_payment_method(call: Call, unit_id: str, kind: str) -> None:
    """Stops allowing the method in the unit."""
    from idp.purchases import payment_methods

    if not payment_methods.remove_method(call.actor, unit_id, kind):
        raise not_found("payment method")
