"""A unit's approval policy (issue 17, item 3): read, set and clear it. The rules
live in :mod:`idp.purchases.approval_policy`; this module validates, authorises
(``budgets.manage`` in the unit or an ancestor) and answers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from idp.api import bp
from idp.api.endpoint import Call, endpoint
from idp.api.problems import Problem, not_found
from idp.purchases import approval_policy
from idp.purchases.approval_policy import MAX_EXPIRY_HOURS, MAX_STEPS, StepInput
from idp.purchases.budgets import BudgetError, unit_for

AMOUNT = r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,3})?$"


class StepIn(BaseModel):
    """One step of the chain: orders above `above` need this step's approval."""

    model_config = ConfigDict(extra="forbid")

    above: str = Field(pattern=AMOUNT, description="Threshold, decimal string, e.g. 500.00")
    approvers: str = Field(
        min_length=1, max_length=120,
        description="`manager` (the buyer's manager from SCIM), `permission` (holders of "
        "approvals.decide in the unit or an ancestor) or `group:<name>`",
    )


class PolicyIn(BaseModel):
    """The unit's approval policy (replaces its own; sub-units without their own
    inherit it)."""

    model_config = ConfigDict(extra="forbid")

    steps: list[StepIn] = Field(min_length=1, max_length=MAX_STEPS,
                                description="In strictly ascending thresholds")
    currency: str | None = Field(None, min_length=3, max_length=3,
                                 description="ISO 4217; default the unit's budget currency")
    expiry_hours: int | None = Field(None, ge=1, le=MAX_EXPIRY_HOURS,
                                     description="Default: IDP_APPROVAL_HOURS")


class StepOut(BaseModel):
    above: str
    approvers: str


class PolicyOut(BaseModel):
    """The policy that applies in the unit (`inherited_from`: the ancestor that set
    it; null for the unit's own)."""

    unit_id: str
    inherited_from: str | None
    currency: str
    steps: list[StepOut]
    expiry_hours: int | None
    updated_at: str


def _refused(exc: BudgetError) -> Problem:
    if exc.code == "unit_not_found":
        return not_found("unit")
    errors = [{"pointer": f"/body/{exc.field}", "detail": exc.detail}] if exc.field else None
    return Problem(422, exc.code, exc.detail, errors=errors)


@endpoint(
    bp, "GET", "/units/{unit_id}/approval-policy", summary="Read the unit's approval policy",
    tag="budgets", response=PolicyOut, permission="budgets.manage",
)
def get_policy(call: Call, unit_id: str) -> PolicyOut:
    """The policy that applies in the unit: its own or the nearest ancestor's (404
    without one)."""
    try:
        row = approval_policy.show_policy(call.actor, unit_id)
        unit = unit_for(unit_id, call.actor)
    except BudgetError as exc:
        raise _refused(exc) from exc
    if row is None:
        raise not_found("approval policy")
    return PolicyOut.model_validate(approval_policy.describe(row, unit.id))


@endpoint(
    bp, "PUT", "/units/{unit_id}/approval-policy", summary="Set the unit's approval policy",
    tag="budgets", body=PolicyIn, response=PolicyOut, permission="budgets.manage",
)
def put_policy(call: Call, unit_id: str) -> PolicyOut:
    """Creates or replaces the unit's own policy. Thresholds strictly ascending, in
    the unit's budget currency; approvers `manager`, `permission` or `group:<name>`
    (a group of the unit or an ancestor). Approvals already open keep their chain."""
    body: PolicyIn = call.body
    steps = [StepInput(s.above, s.approvers) for s in body.steps]
    try:
        row = approval_policy.set_policy(call.actor, unit_id, steps, body.currency,
                                         body.expiry_hours)
    except BudgetError as exc:
        raise _refused(exc) from exc
    return PolicyOut.model_validate(approval_policy.describe(row, row.unit_id))


@endpoint(
    bp, "DELETE", "/units/{unit_id}/approval-policy", summary="Clear the unit's approval policy",
    tag="budgets", permission="budgets.manage",
)
def delete_policy(call: Call, unit_id: str) -> None:
    """Removes the unit's own policy (an ancestor's applies again); 404 without one."""
    try:
        removed = approval_policy.clear_policy(call.actor, unit_id)
    except BudgetError as exc:
        raise _refused(exc) from exc
    if not removed:
        raise not_found("approval policy")
