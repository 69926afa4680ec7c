"""The budget ledger: reserving an amount in the applicable budgets and giving it
back. The one place that changes budget usage.

Serialisation: :func:`reserve`, :func:`release` and :func:`move` lock the budgets' rows first
(:func:`idp.store.purchases_repo.lock_budgets`, in id order) and read the usage
only after, inside the caller's transaction, so parallel reservations never both
see the old usage.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from idp.purchases.budgets import Applied
from idp.store import purchases_repo
from idp.store.purchases_repo import Usage, UsageKey

APPROVED, PENDING, REFUSED = "approved", "pending_approval", "refused"
CONFIRMED, CANCELLED = "confirmed", "cancelled"
STATUSES = (APPROVED, PENDING, REFUSED, CONFIRMED, CANCELLED)
# Limits an approver may lift: an order passing them can wait for approval.
APPROVABLE = frozenset({"over_budget", "over_per_order_limit"})


class Refusal(Exception):
    """The amount does not fit: ``reason`` is the answer's reason code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Used = dict[UsageKey, Usage]


def reserve(
    applied: list[Applied], currency: str, amount: int, force: bool = False
) -> list[dict[str, Any]]:
    """Reserve ``amount`` in every applied budget and return the charges, or raise
    :class:`Refusal` (``currency_mismatch``, ``over_per_order_limit``,
    ``over_budget``). ``force`` (an approver's decision) skips the two limits, never
    the currency."""
    return reserve_with_usage(applied, currency, amount, force)[0]


def reserve_with_usage(
    applied: list[Applied], currency: str, amount: int, force: bool = False,
    locked: dict[str, tuple[int, int | None, str]] | None = None,
) -> tuple[list[dict[str, Any]], Used]:
    """:func:`reserve`, with the usage rows after the reservation (by usage key), so
    the answer's remaining budget needs no second read. ``locked``: the budgets as the
    caller already locked them (:func:`move`); locked here otherwise."""
    if any(a.budget.currency != currency for a in applied):
        raise Refusal("currency_mismatch")
    if not force and any(
        a.budget.per_order_minor is not None and amount > a.budget.per_order_minor
        for a in applied
    ):
        raise Refusal("over_per_order_limit")
    if not applied:
        return [], {}
    # The definitions may be a cached copy (up to 2 s old): the limits are checked
    # again against the rows as locked, and a budget removed meanwhile no longer applies.
    fresh = locked if locked is not None else purchases_repo.lock_budgets(
        a.budget.id for a in applied)
    applied = [a for a in applied if a.budget.id in fresh]
    if any(fresh[a.budget.id][2] != currency for a in applied):
        raise Refusal("currency_mismatch")
    if not force and any(
        fresh[a.budget.id][1] is not None and amount > (fresh[a.budget.id][1] or 0)
        for a in applied
    ):
        raise Refusal("over_per_order_limit")
    used = purchases_repo.usage(a.key for a in applied)
    if not force:
        for a in applied:
            row = used.get(a.key)
            if (row.used_minor if row else 0) + amount > fresh[a.budget.id][0]:
                raise Refusal("over_budget")
    charges: list[dict[str, Any]] = []
    purchases_repo.add_usage((used[a.key].id for a in applied if a.key in used), amount)
    for a in applied:
        row = used.get(a.key)
        if row is None:
            row = purchases_repo.new_usage(a.budget.id, a.access_key, a.period.key, amount)
        else:
            row = Usage(row.id, row.used_minor + amount)
        used[a.key] = row
        charges.append({"usage": row.id, "budget": a.budget.id, "amount": amount})
    return charges, used


def release(charges: Iterable[dict[str, Any]]) -> None:
    """Give back what ``charges`` reserved (budgets locked first, as in reserving);
    usage of a removed budget is gone with it."""
    charges = list(charges)
    if charges:
        purchases_repo.lock_budgets(str(c["budget"]) for c in charges)
        _give_back(charges)


def move(
    charges: Iterable[dict[str, Any]], applied: list[Applied], currency: str, amount: int
) -> list[dict[str, Any]]:
    """Give back what ``charges`` reserved and reserve ``amount`` in the budgets that
    apply now (:func:`reserve`, which may raise :class:`Refusal`): a changed amount.
    Every budget of both, old and new, is locked by one statement in id order first:
    locking the old ones and then the new ones could deadlock with a parallel move
    over the same budgets the other way round."""
    charges = list(charges)
    locked = purchases_repo.lock_budgets(
        [str(c["budget"]) for c in charges] + [a.budget.id for a in applied]
    )
    _give_back(charges)
    return reserve_with_usage(applied, currency, amount, locked=locked)[0]


def _give_back(charges: list[dict[str, Any]]) -> None:
    """Subtract the charges from their usage rows (the caller holds the budgets' locks)."""
    rows = purchases_repo.usage_by_ids(str(c["usage"]) for c in charges)
    for c in charges:
        row = rows.get(str(c["usage"]))
        if row is not None:
            row = rows[row.id] = Usage(row.id, max(0, row.used_minor - int(c["amount"])))
            purchases_repo.set_usage(row.id, row.used_minor)
