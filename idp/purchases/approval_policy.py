"""A unit's approval policy (issue 17, item 3): amount thresholds that define the
chain of approvers an order goes through, and how long an approval may wait.

A policy is a list of steps in ascending thresholds, e.g. ``above 500.00: the
manager``, ``above 5000.00: a holder of approvals.decide``. An order of amount A
needs every step whose threshold lies below A (``A > above``), decided one after the
other in ascending order; a rejection at any step ends it. Who decides a step
(``approvers``):

* ``manager``: the buyer's manager from SCIM (enterprise ``manager``);
* ``permission``: holders of ``approvals.decide`` in the order's unit, through a
  role or group in it or in an ancestor (the company decides for its locations);
* ``group:<name>``: holders of that permission group (defined in the unit or an
  ancestor) with an access in the unit's chain.

A unit without a policy of its own uses its nearest ancestor's. The thresholds are
in the unit's budget currency (or the currency given when setting it); an order in
another currency is refused with ``currency_mismatch`` while a policy applies.
``expiry_hours`` (1-2160) replaces ``IDP_APPROVAL_HOURS`` for approvals opened in
the unit. Only holders of ``budgets.manage`` in the unit (or an ancestor) and the
operator's CLI read, set or clear it; every change is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from idp import audit
from idp.process_cache import ProcessCache
from idp.purchases import money
from idp.purchases.budgets import BudgetError, unit_for
from idp.rights import Actor
from idp.rights.authorization import audit_actor
from idp.store import purchases_repo
from idp.store.models import ApprovalPolicy, Unit, utcnow
from idp.store.unit_of_work import atomic

MANAGER, PERMISSION_HOLDERS, ANY = "manager", "permission", "any"
GROUP_PREFIX = "group:"
MAX_STEPS = 10
MAX_EXPIRY_HOURS = 2160


@dataclass(frozen=True)
class StepInput:
    """One step as asked for: the threshold as a decimal string, and who decides."""

    above: str
    approvers: str


def parse_step(text: str) -> StepInput:
    """``above=500.00,approvers=manager`` (the CLI's ``--step``) as a :class:`StepInput`."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("above", "approvers") or key.strip() in fields:
            raise BudgetError("invalid_step",
                              f"a step is 'above=AMOUNT,approvers=WHO', not {text!r}", "steps")
        fields[key.strip()] = value.strip()
    if set(fields) != {"above", "approvers"}:
        raise BudgetError("invalid_step", "a step needs above= and approvers=", "steps")
    return StepInput(fields["above"], fields["approvers"])


def _approvers(units: list[Unit], text: str, index: int) -> str:
    if text in (MANAGER, PERMISSION_HOLDERS):
        return text
    if text.startswith(GROUP_PREFIX):
        name = text[len(GROUP_PREFIX):]
        if name and name in purchases_repo.group_names([u.id for u in units]):
            return GROUP_PREFIX + name
        raise BudgetError("unknown_group", f"step {index + 1}: no permission group {name!r} "
                          "in the unit or its ancestors", f"steps/{index}/approvers")
    raise BudgetError("invalid_approvers", f"step {index + 1}: approvers must be 'manager', "
                      "'permission' or 'group:<name>'", f"steps/{index}/approvers")


def _currency(unit: Unit, given: str | None) -> str:
    used = {b.currency for b in purchases_repo.budgets_of_units([unit.id])}
    if given is not None:
        try:
            code = money.currency(given)
        except money.MoneyError as exc:
            raise BudgetError(exc.code, exc.detail, "currency") from exc
        if used and used != {code}:
            raise BudgetError("currency_mismatch",
                              "the unit's budgets use " + ", ".join(sorted(used)), "currency")
        return code
    if len(used) == 1:
        return used.pop()
    raise BudgetError("currency_required",
                      "the unit has no budget currency: give the currency", "currency")


def set_policy(
    actor: Actor, unit_ref: str, steps: list[StepInput], currency: str | None = None,
    expiry_hours: int | None = None, who: audit.Actor | None = None,
) -> ApprovalPolicy:
    """Create or replace the unit's own policy (see the module). Refused
    (:class:`BudgetError`): no steps or more than :data:`MAX_STEPS`, thresholds not
    strictly ascending or not amounts of the currency, unknown approvers or group,
    a currency other than the unit's budgets', expiry outside 1-2160 hours."""
    from idp.purchases.budgets import chain

    unit = unit_for(unit_ref, actor)
    if not steps or len(steps) > MAX_STEPS:
        raise BudgetError("invalid_steps", f"give 1 to {MAX_STEPS} steps", "steps")
    if expiry_hours is not None and not 1 <= expiry_hours <= MAX_EXPIRY_HOURS:
        raise BudgetError("invalid_expiry", f"expiry_hours must be 1 to {MAX_EXPIRY_HOURS}",
                          "expiry_hours")
    code = _currency(unit, currency)
    units = chain(unit)
    out: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        if step.above in ("0", "0.00", "0.0", "0.000"):
            above = 0  # "every order" is a valid threshold
        else:
            try:
                above = money.parse(step.above, code)
            except money.MoneyError as exc:
                raise BudgetError(exc.code, f"step {i + 1}: {exc.detail}",
                                  f"steps/{i}/above") from exc
        if out and above <= out[-1]["above_minor"]:
            raise BudgetError("thresholds_not_ascending",
                              "each step's threshold must be above the previous one",
                              f"steps/{i}/above")
        out.append({"above_minor": above, "approvers": _approvers(units, step.approvers, i)})
    row = purchases_repo.approval_policies([unit.id]).get(unit.id)
    created = row is None
    if row is None:
        row = ApprovalPolicy(unit_id=unit.id)
    row.currency, row.steps, row.expiry_hours = code, out, expiry_hours
    row.updated_at, row.updated_by = utcnow(), (who or audit_actor(actor)).display
    with atomic():
        purchases_repo.add(row)
        audit.record(who or audit_actor(actor), "approval_policy.set", unit.id,
                     {"created": created, "currency": code, "steps": out,
                      "expiry_hours": expiry_hours}, unit_id=unit.id)
    return row


def effective(units: list[Unit]) -> ApprovalPolicy | None:
    """The policy that applies in ``units[0]`` (``units`` its chain): its own, else
    the nearest ancestor's (one query)."""
    found = purchases_repo.approval_policies(u.id for u in units)
    for unit in units:
        if unit.id in found:
            return found[unit.id]
    return None


def show_policy(actor: Actor, unit_ref: str) -> ApprovalPolicy | None:
    """The policy that applies in the unit (its own or inherited), None without one."""
    from idp.purchases.budgets import chain

    return effective(chain(unit_for(unit_ref, actor)))


def clear_policy(actor: Actor, unit_ref: str, who: audit.Actor | None = None) -> bool:
    """Remove the unit's own policy (an ancestor's applies again); False without one."""
    unit = unit_for(unit_ref, actor)
    row = purchases_repo.approval_policies([unit.id]).get(unit.id)
    if row is None:
        return False
    with atomic():
        audit.record(who or audit_actor(actor), "approval_policy.clear", unit.id,
                     {"currency": row.currency, "steps": row.steps}, unit_id=unit.id)
        purchases_repo.delete(row)
    return True


def describe(row: ApprovalPolicy, unit_id: str) -> dict[str, Any]:
    """The policy as the API and CLI show it for ``unit_id`` (``inherited_from``:
    the ancestor that set it, None for the unit's own)."""
    return {
        "unit_id": unit_id,
        "inherited_from": row.unit_id if row.unit_id != unit_id else None,
        "currency": row.currency,
        "steps": [{"above": money.format_minor(s["above_minor"], row.currency),
                   "approvers": s["approvers"]} for s in row.steps],
        "expiry_hours": row.expiry_hours,
        "updated_at": row.updated_at.isoformat(),
    }


@dataclass(frozen=True)
class PolicyTerms:
    """An immutable copy of what deciding a purchase reads of an
    :class:`ApprovalPolicy` (cached per process, :func:`effective_terms`)."""

    unit_id: str
    currency: str
    steps: tuple[dict[str, Any], ...]
    expiry_hours: int | None

    @classmethod
    def of(cls, row: ApprovalPolicy) -> PolicyTerms:
        return cls(row.unit_id, row.currency, tuple(dict(s) for s in row.steps or ()),
                   row.expiry_hours)


# Per-process copies (idp.process_cache: at most 2 s old, emptied by any commit here
# that changes a policy), keyed by the unit chain: the purchase hot path reads the
# policy of the buyer's unit on every authorisation and in the claims.
POLICIES: ProcessCache[tuple[PolicyTerms, ...]] = ProcessCache(
    "purchase_approval_policies", (ApprovalPolicy,), 4096
)


def effective_terms(unit_ids: Sequence[str]) -> PolicyTerms | None:
    """:func:`effective` for the chain ``unit_ids`` (nearest first) from the
    per-process cache: the nearest unit's own policy, else None."""
    key = tuple(unit_ids)

    def load() -> tuple[PolicyTerms, ...]:
        found = purchases_repo.approval_policies(key)
        return tuple(PolicyTerms.of(found[u]) for u in key if u in found)

    terms = POLICIES.get_or_load(key, load)
    return terms[0] if terms else None


def required(row: ApprovalPolicy | PolicyTerms, amount_minor: int) -> list[dict[str, Any]]:
    """The steps an order of ``amount_minor`` needs, in order (empty: none)."""
    return [dict(s) for s in row.steps if amount_minor > int(s["above_minor"])]


def lowest_threshold(row: ApprovalPolicy | PolicyTerms | None) -> int | None:
    """The smallest threshold: an order above it needs approval (None: no policy)."""
    if row is None or not row.steps:
        return None
    return min(int(s["above_minor"]) for s in row.steps)
