"""What a merchant may tell the buyer before checkout: the ``purchases`` claims of
ID tokens and UserInfo, and the same facts in each purchase answer.

* ``budget``: ``{"currency", "remaining", "per_order_limit", "period_ends"}``
  (decimal strings, an RFC 3339 instant) for the unit chosen at sign-in; left out
  when no budget applies;
* ``approval_required_above``: the amount above which an order needs approval: the
  smaller of the tightest per-order limit and the lowest threshold of the unit's
  approval policy (:mod:`idp.purchases.approval_policy`); left out without either.
  (An order over the budget left needs approval too: ``budget.remaining`` says
  how much that is.);
* ``payment_methods``: the methods the person may use there
  (:mod:`idp.purchases.payment_methods`).

Costs nothing unless the ``purchases`` scope was granted: the claims module only
calls :func:`claims` then.
"""

from __future__ import annotations

from typing import Any

from idp.purchases import approval_policy, money
from idp.purchases.authorise import Context, context
from idp.purchases.budgets import Applied, Standing, applicable, standing
from idp.purchases.ledger import Used
from idp.purchases.payment_methods import allowed_for
from idp.store import purchases_repo

CLAIMS = ("budget", "approval_required_above", "payment_methods")


def budget_claim(s: Standing) -> dict[str, Any]:
    """A :class:`Standing` as the ``budget`` claim."""
    return {
        "currency": s.currency,
        "remaining": money.format_minor(s.remaining, s.currency),
        "per_order_limit": (
            money.format_minor(s.per_order_limit, s.currency)
            if s.per_order_limit is not None else None
        ),
        "period_ends": s.period_ends.isoformat(),
    }


def approval_required_above(ctx: Context, s: Standing | None) -> str | None:
    """The ``approval_required_above`` claim (see the module), None without a
    per-order limit or a policy threshold."""
    candidates: list[tuple[int, str]] = []
    if s is not None and s.per_order_limit is not None:
        candidates.append((s.per_order_limit, s.currency))
    policy = approval_policy.effective_terms([u.id for u in ctx.chain])
    lowest = approval_policy.lowest_threshold(policy)
    if policy is not None and lowest is not None and (s is None or s.currency
                                                      == policy.currency):
        candidates.append((lowest, policy.currency))
    if not candidates:
        return None
    amount, currency = min(candidates)
    return money.format_minor(amount, currency)


def claims(account_id: str, unit_id: str | None) -> dict[str, Any]:
    """The ``purchases`` claims of the person in the chosen unit (see the module);
    empty without a chosen unit or a granting access there."""
    ctx = context(account_id, unit_id)
    if ctx is None or ctx.access is None:
        return {}
    return claims_in(ctx, applicable(ctx.chain, ctx.access))


def claims_in(
    ctx: Context, applied: list[Applied] | None, used: Used | None = None
) -> dict[str, Any]:
    """The claims for a known context and its applicable budgets (None: look them
    up; an empty list after a refusal that looked up nothing), with ``used`` the
    usage rows a reservation just wrote (None: read them)."""
    if ctx.access is None:
        return {}
    if not applied:
        applied = applicable(ctx.chain, ctx.access)
        used = None
    out: dict[str, Any] = {}
    if used is None or any(a.key not in used for a in applied):
        used = purchases_repo.usage(a.key for a in applied)
    s = standing(applied, used)
    if s is not None:
        out["budget"] = budget_claim(s)
    required = approval_required_above(ctx, s)
    if required is not None:
        out["approval_required_above"] = required
    amount = applied[0].budget.amount_minor if applied else None
    methods = allowed_for(ctx.chain, ctx.access, amount)
    if methods:
        out["payment_methods"] = methods
    return out
