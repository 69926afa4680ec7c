"""A merchant's purchase: authorise (reserve), confirm (spend), cancel (release),
change the amount (check again), read.

The person is the one the merchant's access token was issued for, the unit the one
chosen at sign-in. :func:`authorise` answers ``approved`` (the amount is reserved in
every applicable budget at once), or ``refused`` with a reason code:

* ``not_allowed``: no granting access to the unit, or no ``orders.create`` there;
* ``currency_mismatch``: the unit's budgets are in another currency;
* ``over_per_order_limit``: above an applicable per-order limit;
* ``over_budget``: above what an applicable budget has left this period.

An order over a per-order limit or a budget waits for approval
(``pending_approval``, :mod:`idp.purchases.approvals`) when someone may decide on
it, and is refused with that reason otherwise. An order above a threshold of the
unit's approval policy (:mod:`idp.purchases.approval_policy`) waits for the policy's
chain with the reason ``approval_policy`` (nothing reserved until the last step
approves), or is refused with ``no_approver`` when a step has nobody. A person
without any applicable budget buys without limit.

Concurrency: the reservation locks the applicable budgets' rows first
(:func:`idp.store.purchases_repo.lock_budgets`) and reads their usage after, in one
transaction, so parallel purchases by one person (or a unit's people against the
unit's pool) never together pass a budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp import audit
from idp.purchases import approvals, events, money
from idp.purchases.budgets import Applied, UnitRef, applicable, chain_refs
from idp.purchases.ledger import (
    APPROVABLE,
    APPROVED,
    CANCELLED,
    CONFIRMED,
    PENDING,
    REFUSED,
    Refusal,
    Used,
    move,
    release,
    reserve_with_usage,
)
from idp.rights import account_may
from idp.store import purchases_repo
from idp.store.models import Access, Purchase, Unit, new_id, utcnow
from idp.store.unit_of_work import atomic


class PurchaseError(ValueError):
    """A request about a purchase that cannot be carried out: ``code`` says why
    (``invalid_amount``, ``unknown_currency``, ``not_found``, ``wrong_state``)."""

    def __init__(self, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.field = field


@dataclass(frozen=True)
class PurchaseRequest:
    """What the merchant asks: its order reference, the amount as a decimal string
    of ``currency``, and optional lines (already bounded by the caller)."""

    order_ref: str
    amount: str
    currency: str
    lines: list[dict[str, Any]]


@dataclass(frozen=True)
class Context:
    """Who buys where: the unit chain (chosen unit first, cached copies), the
    person's granting access to the chosen unit, and whether they hold
    ``orders.create`` there."""

    chain: tuple[UnitRef, ...]
    access: Access | None
    allowed: bool = False

    @property
    def units(self) -> list[Unit]:
        """The chain as database rows (read on demand: the approval paths need
        names and managers, the hot path does not)."""
        rows = [purchases_repo.unit(u.id) for u in self.chain]
        return [u for u in rows if u is not None]


def _actor(client_id: str, account_id: str) -> audit.Actor:
    return audit.Actor("client", client_id, on_behalf_of=account_id)


def context(account_id: str, unit_id: str | None) -> Context | None:
    """The unit chain and the person's granting access there; None without a unit.
    One query (the person's accesses in the chain, which also decide
    ``orders.create``); the chain comes from a per-process cache."""
    if not unit_id:
        return None
    refs = chain_refs(unit_id)
    if not refs:
        return None
    ids = [u.id for u in refs]
    accesses = purchases_repo.accesses_in_units(account_id, ids)
    access = next((a for a in accesses if a.unit_id == unit_id), None)
    if access is None or not access.grants():
        return Context(refs, None)
    return Context(refs, access, account_may(account_id, "orders.create", ids, accesses))


def _parse(req: PurchaseRequest) -> tuple[str, int]:
    try:
        code = money.currency(req.currency)
    except money.MoneyError as exc:
        raise PurchaseError(exc.code, exc.detail, "currency") from exc
    try:
        return code, money.parse(req.amount, code)
    except money.MoneyError as exc:
        raise PurchaseError(exc.code, exc.detail, "amount") from exc


def authorise(
    client_id: str, account_id: str, unit_id: str | None, req: PurchaseRequest
) -> Purchase:
    """Decide and record a merchant's purchase request (see the module). Invalid
    input raises :class:`PurchaseError` and records nothing; a refusal is recorded
    (the person's dashboard and the unit's list show it) with its reason."""
    return authorise_in_context(client_id, account_id, unit_id, req)[0]


def authorise_in_context(
    client_id: str, account_id: str, unit_id: str | None, req: PurchaseRequest
) -> tuple[Purchase, Context, list[Applied], Used | None]:
    """:func:`authorise`, with the buyer's context, the applicable budgets it used
    and, after a reservation, their usage rows (so the answer's facts need not look
    them up again)."""
    currency, amount = _parse(req)
    ctx = context(account_id, unit_id)
    now = utcnow()
    purchase = Purchase(
        id=new_id(), unit_id=unit_id, account_id=account_id, client_id=client_id,
        access_id=ctx.access.id if ctx and ctx.access else None, order_ref=req.order_ref,
        currency=currency, amount_minor=amount, lines=req.lines, status=APPROVED,
        charges=[], created_at=now, updated_at=now,
    )
    if ctx is None:  # no unit chosen at sign-in: nothing to buy on
        raise PurchaseError("no_unit", "The sign-in chose no unit to buy for.")
    messages: list[str] = []
    applied: list[Applied] = []
    verdict = approvals.Plan([], None)
    used: Used | None = None
    with atomic():
        try:
            if not ctx.allowed or ctx.access is None:
                raise Refusal("not_allowed")
            applied = applicable(ctx.chain, ctx.access, now)
            # The unit's approval policy first: an order above a threshold waits for
            # its chain before anything is reserved.
            verdict = approvals.plan([u.id for u in ctx.chain], currency, amount)
            if verdict.steps:
                raise Refusal(approvals.POLICY)
            purchase.charges, used = reserve_with_usage(applied, currency, amount)
        except Refusal as refusal:
            used = None
            purchase.status, purchase.reason, purchase.charges = REFUSED, refusal.reason, []
            if refusal.reason in APPROVABLE or refusal.reason == approvals.POLICY:
                # an approver may lift the limit: the order waits (None: nobody may)
                opened = approvals.open_for(purchase, ctx.units, refusal.reason, verdict)
                if opened is not None:  # inserted, waiting for its approval
                    messages = opened
                elif refusal.reason == approvals.POLICY:
                    purchase.reason = "no_approver"
        if purchase.status != PENDING:
            purchases_repo.insert_purchase(purchase)
        events.record(purchase, f"purchase.{purchase.status}", _actor(client_id, account_id))
    approvals.deliver(messages)
    return purchase, ctx, applied, used


def get(client_id: str, purchase_id: str) -> Purchase | None:
    """The purchase, only for the merchant client that asked for it (None else)."""
    row = purchases_repo.purchase(purchase_id)
    if row is None or row.client_id != client_id:
        return None
    return approvals.expire_if_due(row)


def _locked(client_id: str, purchase_id: str) -> Purchase:
    purchases_repo.lock_purchase_row(purchase_id)
    row = purchases_repo.purchase(purchase_id, lock=True)
    if row is None or row.client_id != client_id:
        raise PurchaseError("not_found", "No such purchase.")
    return row


def confirm(client_id: str, purchase_id: str) -> Purchase:
    """Spend the reservation: ``approved`` becomes ``confirmed`` (a repeat is a no-op);
    any other state is ``wrong_state``."""
    with atomic():
        row = _locked(client_id, purchase_id)
        if row.status == CONFIRMED:
            return row
        if row.status != APPROVED:
            raise PurchaseError("wrong_state", f"A {row.status} purchase cannot be confirmed.")
        row.status, row.updated_at = CONFIRMED, utcnow()
        purchases_repo.add(row)
        events.record(row, "purchase.confirmed", _actor(client_id, row.account_id))
    return row


def cancel(client_id: str, purchase_id: str) -> Purchase:
    """Release the reservation: ``approved`` or ``pending_approval`` becomes
    ``cancelled`` (a repeat is a no-op); a confirmed or refused one is ``wrong_state``."""
    with atomic():
        row = _locked(client_id, purchase_id)
        if row.status == CANCELLED:
            return row
        if row.status not in (APPROVED, PENDING):
            raise PurchaseError("wrong_state", f"A {row.status} purchase cannot be cancelled.")
        release(list(row.charges or []))
        if row.status == PENDING:
            approvals.cancel_pending(row)
        row.status, row.charges, row.updated_at = CANCELLED, [], utcnow()
        purchases_repo.add(row)
        events.record(row, "purchase.cancelled", _actor(client_id, row.account_id))
    return row


def change_amount(
    client_id: str, purchase_id: str, amount_text: str
) -> tuple[Purchase, str | None]:
    """The merchant reports a new amount for an ``approved`` or ``confirmed``
    purchase: its reservation is released and the new amount reserved again against
    the budgets' current periods, in one transaction. When the new amount does not
    fit, the transaction rolls back (the old reservation stays) and the refusal's
    reason is returned beside the unchanged purchase."""
    try:
        with atomic():
            row = _locked(client_id, purchase_id)
            if row.status not in (APPROVED, CONFIRMED):
                raise PurchaseError(
                    "wrong_state", f"A {row.status} purchase cannot change amount."
                )
            try:
                amount = money.parse(amount_text, row.currency)
            except money.MoneyError as exc:
                raise PurchaseError(exc.code, exc.detail, "amount") from exc
            ctx = context(row.account_id, row.unit_id)
            if ctx is None or ctx.access is None:
                raise Refusal("not_allowed")
            if amount > row.amount_minor and approvals.plan(
                [u.id for u in ctx.chain], row.currency, amount
            ).steps:
                # a raise into the policy's chain would skip its approvers
                raise Refusal("approval_required")
            charges = move(row.charges or [], applicable(ctx.chain, ctx.access),
                           row.currency, amount)
            before = row.amount_minor
            row.amount_minor, row.charges, row.updated_at = amount, charges, utcnow()
            purchases_repo.add(row)
            events.record(row, "purchase.amount_changed", _actor(client_id, row.account_id),
                          {"previous_amount": money.format_minor(before, row.currency)})
    except Refusal as refusal:  # rolled back: the old reservation stands
        unchanged = purchases_repo.purchase(purchase_id)
        if unchanged is None:  # pragma: no cover - it was just read under lock
            raise PurchaseError("not_found", "No such purchase.") from None
        return unchanged, refusal.reason
    return row, None
