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
