"""Approvals: an order over a limit waits for someone allowed to decide.

Who decides: the buyer's manager, when their SCIM record names one (enterprise
``manager``) who has an access in the unit's chain, and the people holding
``approvals.decide`` in the purchase's unit (through a role there or in an
ancestor); never the buyer themself. A unit's approval policy
(:mod:`idp.purchases.approval_policy`) turns this into a chain of steps by amount
(``manager``, ``permission``, ``group:<name>``), decided one after the other; each
step's approvers get the e-mail when their step starts. Without a policy step (no
policy, or an order below every threshold but over a limit) the order has one step
decided by any of them (``any``). When a step has nobody, the order is refused with
its reason instead (``over_budget``..., ``no_approver`` for a policy's chain).

Each approver receives an e-mail (through the outbox, staged with the purchase) with
a signed link: itsdangerous, salted for this one purpose, naming the approval and
the approver, valid until the approval expires. The link leads to the approval page
(``/account/approvals/...``), which needs the approver signed in as that person.

Decisions: approve (optionally with a changed amount or lines: the reservation is
made then, beyond the limits the approver lifts), reject with a reason, change the
amount or lines without deciding, comment (``internal`` comments are seen only by
the company's people; the merchant sees the others in ``GET /purchases/{id}``).
Every decision goes through :func:`idp.purchases.events.record` (audit now,
webhooks at merge).

Expiry: after :data:`idp.settings.Settings.approval_hours` a pending approval
expires, lazily when anyone reads it (merchant poll, approval page) and by the sweep
:func:`expire_due` (``idp purchases expire``); the purchase is then refused with
``approval_expired``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from idp import audit
from idp.mail import outbox
from idp.purchases import approval_policy, events, ledger, money
from idp.purchases.approval_policy import ANY, GROUP_PREFIX, MANAGER, PERMISSION_HOLDERS
from idp.purchases.budgets import Standing, applicable, chain, standing
from idp.rights import Actor, may
from idp.rights.catalogue import BUILT_IN
from idp.services import settings
from idp.store import purchases_repo
from idp.store.models import (
    Account,
    Approval,
    ApprovalChain,
    ApprovalComment,
    Purchase,
    Unit,
    new_id,
    utcnow,
)
from idp.store.unit_of_work import atomic

PERMISSION = "approvals.decide"
LINK_SALT = "unitgate.approval-link.v1"
MAX_CANDIDATES = 5000
MAX_APPROVERS = 20
MAX_COMMENT = 2000
PENDING, APPROVED, REJECTED, EXPIRED, CANCELLED = (
    "pending", "approved", "rejected", "expired", "cancelled")
POLICY = "approval_policy"  # the reason of an order that waits because of the policy
MAX_LINES = 100


class ApprovalError(ValueError):
    """A decision that cannot be made: ``code`` says why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _manager(units: list[Unit], requester: str) -> Account | None:
    """The buyer's manager from SCIM (enterprise ``manager``), when they can sign
    in and hold a granting access in the unit's chain."""
    boss = purchases_repo.manager_of(requester)
    if boss is None or not boss.can_sign_in:
        return None
    for unit in units:
        access = purchases_repo.access_of(boss.id, unit.id)
        if access is not None and access.grants():
            return boss
    return None


def _holds_group(account_id: str, units: list[Unit], name: str) -> bool:
    for unit in units:
        access = purchases_repo.access_of(account_id, unit.id)
        if access is not None and access.grants() and name in (access.roles or []):
            return True
    return False


def may_decide(account_id: str, purchase: Purchase, units: list[Unit], kind: str = ANY) -> bool:
    """True when ``account_id`` decides a step of kind ``kind`` (see the module):
    ``any`` a holder of ``approvals.decide`` in the unit or the buyer's manager;
    ``manager`` the manager alone; ``permission`` the holders alone; ``group:<name>``
    the group's holders in the unit's chain. Never the buyer."""
    if account_id == purchase.account_id:
        return False
    if kind in (ANY, PERMISSION_HOLDERS) and may(Actor.account(account_id), PERMISSION,
                                                 units[0].id):
        return True
    if kind in (ANY, MANAGER):
        boss = _manager(units, purchase.account_id)
        return boss is not None and boss.id == account_id
    if kind.startswith(GROUP_PREFIX):
        account = purchases_repo.account(account_id)
        return (account is not None and account.can_sign_in
                and _holds_group(account_id, units, kind[len(GROUP_PREFIX):]))
    return False


def approvers(units: list[Unit], requester: str, kind: str = ANY) -> list[Account]:
    """Who may decide a step of kind ``kind`` (:func:`may_decide`) on an order in
    ``units[0]`` (``units`` its chain): the buyer's manager from SCIM first (for
    ``any`` and ``manager``), then accounts with an access in the chain that can sign
    in and hold ``approvals.decide`` in ``units[0]`` (``any``, ``permission``) or the
    named group (``group:<name>``); the requester excluded; at most
    :data:`MAX_APPROVERS`."""
    out: dict[str, Account] = {}
    if kind in (ANY, MANAGER):
        boss = _manager(units, requester)
        if boss is not None:
            out[boss.id] = boss
        if kind == MANAGER:
            return list(out.values())
    ids = [u.id for u in units]
    group = kind[len(GROUP_PREFIX):] if kind.startswith(GROUP_PREFIX) else None
    if group is None and kind not in (ANY, PERMISSION_HOLDERS):
        return []
    # Only a role or group granting the permission can make someone an approver: the
    # permission check (queries) runs for those few candidates alone.
    if group is None:
        granting = {role for role, held in BUILT_IN.items() if PERMISSION in held}
        granting |= purchases_repo.groups_granting(ids, PERMISSION)
    else:
        granting = {group}
    for access, account in purchases_repo.people_in_units(ids, MAX_CANDIDATES):
        if account.id == requester or account.id in out or not account.can_sign_in:
            continue
        if not access.grants() or not granting & set(access.roles or []):
            continue
        if group is not None or may(Actor.account(account.id), PERMISSION, units[0].id):
            out[account.id] = account
            if len(out) >= MAX_APPROVERS:
                break
    return list(out.values())


@dataclass(frozen=True)
class Plan:
    """The policy's verdict on an order: the steps it needs (empty: none) and the
    expiry in hours (None: the setting)."""

    steps: list[dict[str, Any]]
    expiry_hours: int | None


def plan(unit_ids: Sequence[str], currency: str, amount_minor: int) -> Plan:
    """The steps the policy of ``unit_ids[0]`` (own or inherited; ``unit_ids`` its
    chain, nearest first) asks for an order of ``amount_minor`` (the policy from the
    per-process cache: no query on the hot path); raises
    :class:`idp.purchases.ledger.Refusal` (``currency_mismatch``) for an order in
    another currency than the policy's."""
    policy = approval_policy.effective_terms(unit_ids)
    if policy is None:
        return Plan([], None)
    if policy.currency != currency:
        raise ledger.Refusal("currency_mismatch")
    return Plan(approval_policy.required(policy, amount_minor), policy.expiry_hours)


def open_for(purchase: Purchase, units: list[Unit], why: str, verdict: Plan) -> list[str] | None:
    """Put ``purchase`` on hold for the chain ``verdict.steps`` (one ``any`` step when
    empty) in the caller's transaction: the outbox ids to deliver after the commit, or
    None (nothing staged) when a step has nobody to decide it."""
    steps = verdict.steps or [{"above_minor": 0, "approvers": ANY}]
    first: list[Account] = []
    for i, step in enumerate(steps):
        found = approvers(units, purchase.account_id, str(step["approvers"]))
        if not found:
            return None
        if i == 0:
            first = found
    purchase.status = ledger.PENDING
    purchases_repo.insert_purchase(purchase)  # the approval references it
    _, messages = open_approval(purchase, units, why, first, steps=steps,
                                expiry_hours=verdict.expiry_hours)
    return messages


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.secret_key), salt=LINK_SALT)


def link_token(approval_id: str, account_id: str) -> str:
    """The signed token of the e-mail link for this approver."""
    return str(_serializer().dumps({"a": approval_id, "u": account_id}))


def read_link(token: str) -> tuple[str, str] | None:
    """(approval id, approver account id) of a valid, unexpired link token. A link
    lives as long as its approval may wait (``IDP_APPROVAL_HOURS`` or the unit
    policy's ``expiry_hours``, fixed in the approval when it opened) and a minute."""
    hours = max(settings().approval_hours, approval_policy.MAX_EXPIRY_HOURS)
    try:
        # The signature first (with the longest lifetime any approval can have), then
        # the age against this approval's own lifetime.
        data, signed_at = _serializer().loads(token, max_age=int(hours * 3600) + 60,
                                              return_timestamp=True)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("a"), str) or not isinstance(
        data.get("u"), str
    ):
        return None
    row = purchases_repo.approval(data["a"])
    if row is None or signed_at > row.expires_at + timedelta(minutes=1):
        return None
    if utcnow() - signed_at > row.expires_at - row.created_at + timedelta(minutes=1):
        return None
    return data["a"], data["u"]


def page_url(approval_id: str) -> str:
    """Where an approver decides (sign-in required)."""
    return f"{settings().issuer.rstrip('/')}/account/approvals/{approval_id}"


def open_approval(
    purchase: Purchase, units: list[Unit], why: str, deciders: list[Account],
    steps: list[dict[str, Any]] | None = None, expiry_hours: int | None = None,
) -> tuple[Approval, list[str]]:
    """Stage the approval of ``purchase`` (with its chain of ``steps``, when given)
    and the e-mails to ``deciders`` (the first step's) in the caller's transaction;
    (the approval, the outbox message ids to deliver after the commit)."""
    now = utcnow()
    hours = expiry_hours if expiry_hours is not None else settings().approval_hours
    row = Approval(id=new_id(), purchase_id=purchase.id, unit_id=purchase.unit_id, why=why,
                   status=PENDING, created_at=now, expires_at=now + timedelta(hours=hours))
    purchases_repo.add(row)
    if steps is not None:
        purchases_repo.flush()  # the chain references the approval
        purchases_repo.add(ApprovalChain(approval_id=row.id, steps=steps, current=0,
                                         decisions=[]))
    return row, _mail(row, purchase, units, deciders)


def _mail(row: Approval, purchase: Purchase, units: list[Unit],
          deciders: list[Account]) -> list[str]:
    """Stage the e-mail with the signed link to each of ``deciders``."""
    buyer = purchases_repo.account(purchase.account_id)
    from idp.i18n import ui_language

    messages = []
    for person in deciders:
        if person.email is None:  # no mailbox: the approval waits in their list
            continue
        link = page_url(row.id) + "?link=" + link_token(row.id, person.id)
        messages.append(outbox.enqueue_email(
            person.email, "approval", ui_language(person.locale),
            {"name": person.name, "buyer": buyer.name if buyer else "",
             "buyer_email": (buyer.email or "") if buyer else "", "unit_name": units[0].name,
             "order_ref": purchase.order_ref,
             "amount": money.format_minor(purchase.amount_minor, purchase.currency),
             "currency": purchase.currency, "link": link, "expires_at": row.expires_at},
            discard_after=row.expires_at, commit=False,
        ))
    return messages


def current_kind(row: Approval) -> tuple[ApprovalChain | None, str]:
    """The approval's chain (None for one ``any`` step) and the kind of the step now
    deciding."""
    steps = purchases_repo.approval_chain(row.id)
    if steps is None or not steps.steps:
        return None, ANY
    return steps, str(steps.steps[min(steps.current, len(steps.steps) - 1)]["approvers"])


def deliver(message_ids: list[str]) -> None:
    """Hand committed messages to the courier now."""
    for message_id in message_ids:
        outbox.deliver_soon(message_id)


# --- reading and deciding -------------------------------------------------------


@dataclass
class ApprovalView:
    """What the approval page shows."""

    approval: Approval
    purchase: Purchase
    buyer: Account | None
    unit: Unit
    standing: Standing | None
    comments: list[ApprovalComment]
    step: int = 1  # the step now deciding (1-based)
    steps: int = 1  # how many steps the chain has


def _expire(row: Approval, purchase: Purchase, now: datetime) -> None:
    row.status, row.decided_at, row.decided_by = EXPIRED, now, "system"
    purchase.status, purchase.reason, purchase.updated_at = ledger.REFUSED, "approval_expired", now
    purchases_repo.add(row, purchase)
    events.record(purchase, "purchase.refused", audit.Actor.system("approvals"),
                  {"approval_id": row.id, "approval": EXPIRED})


def expire_if_due(purchase: Purchase) -> Purchase:
    """Expire the purchase's pending approval when its time is over (lazy expiry);
    the purchase as it is then."""
    if purchase.status != ledger.PENDING:
        return purchase
    row = purchases_repo.approval_of(purchase.id)
    now = utcnow()
    if row is None or row.status != PENDING or row.expires_at > now:
        return purchase
    with atomic():
        purchases_repo.lock_purchase_row(purchase.id)
        fresh = purchases_repo.purchase(purchase.id, lock=True)
        row = purchases_repo.approval_of(purchase.id)
        if fresh is None or row is None or row.status != PENDING:
            return fresh or purchase
        _expire(row, fresh, now)
    return fresh


def expire_due(limit: int = 500) -> int:
    """The sweep: expire every pending approval past its time (at most ``limit``);
    how many expired."""
    count = 0
    for row in purchases_repo.due_approvals(utcnow(), limit):
        purchase = purchases_repo.purchase(row.purchase_id)
        if purchase is not None and expire_if_due(purchase).reason == "approval_expired":
            count += 1
    return count


def _loaded(account_id: str, approval_id: str) -> tuple[Approval, Purchase, Unit]:
    row = purchases_repo.approval(approval_id)
    purchase = purchases_repo.purchase(row.purchase_id) if row else None
    unit = purchases_repo.unit(row.unit_id) if row else None
    if row is None or purchase is None or unit is None:
        raise ApprovalError("not_found", "No such approval.")
    if not may_decide(account_id, purchase, chain(unit), current_kind(row)[1]):
        raise ApprovalError("not_found", "No such approval.")
    return row, purchase, unit


def view(account_id: str, approval_id: str) -> ApprovalView:
    """The approval as ``account_id`` (an approver) sees it; ``not_found`` for
    anyone else (the buyer included)."""
    row, purchase, unit = _loaded(account_id, approval_id)
    purchase = expire_if_due(purchase)
    row = purchases_repo.approval(approval_id) or row
    buyer = purchases_repo.account(purchase.account_id)
    access = purchases_repo.access_of(purchase.account_id, unit.id)
    st = None
    if access is not None:
        applied = applicable(chain(unit), access)
        st = standing(applied, purchases_repo.usage(a.key for a in applied))
    steps = purchases_repo.approval_chain(row.id)
    count = len(steps.steps) if steps is not None and steps.steps else 1
    at = min(steps.current, count - 1) + 1 if steps is not None and steps.steps else 1
    return ApprovalView(row, purchase, buyer, unit, st, purchases_repo.comments(row.id),
                        at, count)


def clean_lines(lines: list[dict[str, Any]], currency: str) -> list[dict[str, Any]]:
    """An approver's order lines, checked like a merchant's (at most
    :data:`MAX_LINES`; ``description`` 1-300 characters, ``sku`` up to 100, a
    ``quantity`` of 1-1,000,000 and an ``amount`` of the currency); ``invalid_lines``
    otherwise."""
    if len(lines) > MAX_LINES:
        raise ApprovalError("invalid_lines", f"At most {MAX_LINES} lines.")
    out: list[dict[str, Any]] = []
    for i, line in enumerate(lines, start=1):
        description = str(line.get("description") or "").strip()
        sku = str(line.get("sku") or "").strip() or None
        try:
            quantity = int(str(line.get("quantity") or "1").strip())
            amount = money.parse(str(line.get("amount") or "").strip(), currency)
        except (ValueError, money.MoneyError):
            raise ApprovalError("invalid_lines",
                                f"Line {i}: give a whole quantity and an amount.") from None
        if not 1 <= len(description) <= 300 or (sku is not None and len(sku) > 100):
            raise ApprovalError("invalid_lines", f"Line {i}: describe the item (at most 300 "
                                "characters; an article number of at most 100).")
        if not 1 <= quantity <= 1_000_000:
            raise ApprovalError("invalid_lines", f"Line {i}: the quantity is 1 to 1,000,000.")
        out.append({"sku": sku, "description": description, "quantity": quantity,
                    "amount": money.format_minor(amount, currency)})
    return out


@dataclass(frozen=True)
class Decision:
    """An approver's input: ``action`` approve, reject, change or comment."""

    action: str
    reason: str | None = None
    amount: str | None = None
    lines: list[dict[str, Any]] | None = None
    comment: str | None = None
    internal: bool = True


def _comment(row: Approval, who: audit.Actor, text: str | None, internal: bool) -> None:
    text = (text or "").strip()
    if not text:
        return
    if len(text) > MAX_COMMENT:
        raise ApprovalError("comment_too_long", f"A comment has at most {MAX_COMMENT} characters.")
    purchases_repo.add(ApprovalComment(id=new_id(), approval_id=row.id, author=who.display,
                                       body=text, internal=internal, created_at=utcnow()))


def _changed_lines(purchase: Purchase, sent: list[dict[str, Any]] | None
                   ) -> list[dict[str, Any]] | None:
    """The approver's lines when they differ from the order's (checked by
    :func:`clean_lines`), else None."""
    if sent is None:
        return None
    lines = clean_lines(sent, purchase.currency)
    try:
        current = clean_lines(list(purchase.lines or []), purchase.currency)
    except ApprovalError:
        current = list(purchase.lines or [])
    return None if lines == current else lines


def _check_raise(units: list[Unit], currency: str, amount: int,
                 steps: ApprovalChain | None) -> None:
    """An approver's raise may not need more policy steps than the order's chain has
    (it would skip their approvers): ``approval_required`` then."""
    try:
        needed = plan([u.id for u in units], currency, amount).steps
    except ledger.Refusal as refusal:
        raise ApprovalError(refusal.reason, "The amount cannot be changed.") from None
    have = [s for s in (steps.steps if steps is not None else []) if s["approvers"] != ANY]
    if len(needed) > len(have):
        raise ApprovalError("approval_required", "This amount needs more approvals than "
                            "this order's chain: the merchant must place a new order.")


def decide(account_id: str, approval_id: str, decision: Decision) -> Purchase:
    """Carry out ``decision`` by the approver ``account_id`` (see the module).
    Refused: ``not_found`` (not an approver of it), ``not_pending`` (decided or
    expired), ``reason_required`` (a rejection needs one), ``invalid_amount``."""
    if decision.action not in ("approve", "reject", "change", "comment"):
        raise ApprovalError("invalid_action", "approve, reject, change or comment")
    row, purchase, unit = _loaded(account_id, approval_id)
    purchase = expire_if_due(purchase)
    who = audit.Actor.account(account_id)
    messages: list[str] = []
    with atomic():
        purchases_repo.lock_purchase_row(purchase.id)
        purchase = purchases_repo.purchase(purchase.id, lock=True) or purchase
        row = purchases_repo.approval(approval_id) or row
        if decision.action == "comment":
            if not (decision.comment or "").strip():
                raise ApprovalError("comment_required", "Write a comment.")
            _comment(row, who, decision.comment, decision.internal)
            audit.record(who, "approval.comment", row.id,
                         {"internal": decision.internal, "purchase_id": purchase.id},
                         unit_id=unit.id)
            return purchase
        if row.status != PENDING or purchase.status != ledger.PENDING:
            raise ApprovalError("not_pending", "This order is no longer waiting for approval.")
        # Read again under the lock: another approver may have moved the chain on.
        steps, kind = current_kind(row)
        units = chain(unit)
        if not may_decide(account_id, purchase, units, kind):
            raise ApprovalError("not_pending", "This step was decided already.")
        now = utcnow()
        _comment(row, who, decision.comment, decision.internal)
        lines = _changed_lines(purchase, decision.lines)
        if decision.amount is not None or lines is not None:
            before = money.format_minor(purchase.amount_minor, purchase.currency)
            if decision.amount is not None:
                try:
                    amount = money.parse(decision.amount, purchase.currency)
                except money.MoneyError as exc:
                    raise ApprovalError(exc.code, exc.detail) from exc
                if amount > purchase.amount_minor:
                    _check_raise(units, purchase.currency, amount, steps)
                purchase.amount_minor = amount
            if lines is not None:
                purchase.lines = lines
            purchase.updated_at = now
            events.record(purchase, "purchase.amount_changed", who,
                          {"previous_amount": before, "approval_id": row.id})
        if decision.action == "reject":
            reason = (decision.reason or "").strip()
            if not reason:
                raise ApprovalError("reason_required", "Give a reason for the rejection.")
            row.status, row.decision_reason = REJECTED, reason[:MAX_COMMENT]
            purchase.status, purchase.reason = ledger.REFUSED, "rejected"
            events.record(purchase, "purchase.refused", who,
                          {"approval_id": row.id, "approval": REJECTED})
        elif decision.action == "approve" and steps is not None and (
            steps.current < len(steps.steps) - 1
        ):
            # An intermediate step: record it, hand over to the next step's approvers.
            steps.decisions = [*(steps.decisions or []),
                               {"step": steps.current + 1, "approvers": kind,
                                "by": who.display, "at": now.isoformat()}]
            steps.current += 1
            purchases_repo.add(steps)
            audit.record(who, "approval.step_approved", row.id,
                         {"purchase_id": purchase.id, "step": steps.current,
                          "of": len(steps.steps)}, unit_id=unit.id)
            nxt = str(steps.steps[steps.current]["approvers"])
            messages = _mail(row, purchase, units, approvers(units, purchase.account_id, nxt))
        elif decision.action == "approve":
            if steps is not None:
                steps.decisions = [*(steps.decisions or []),
                                   {"step": steps.current + 1, "approvers": kind,
                                    "by": who.display, "at": now.isoformat()}]
                purchases_repo.add(steps)
            access = purchases_repo.access_of(purchase.account_id, unit.id)
            if access is None or not access.grants():
                raise ApprovalError("not_allowed", "The buyer no longer buys in this unit.")
            try:
                purchase.charges = ledger.reserve(applicable(chain(unit), access),
                                                  purchase.currency, purchase.amount_minor,
                                                  force=True)
            except ledger.Refusal as refusal:
                raise ApprovalError(refusal.reason, "The order cannot be approved.") from None
            row.status = APPROVED
            purchase.status, purchase.reason = ledger.APPROVED, None
            events.record(purchase, "purchase.approved", who,
                          {"approval_id": row.id, "approval": APPROVED})
        if decision.action == "reject" or (decision.action == "approve" and row.status
                                            == APPROVED):
            row.decided_by, row.decided_at = who.display, now
        purchase.updated_at = now
        purchases_repo.add(row, purchase)
    deliver(messages)
    return purchase


def cancel_pending(purchase: Purchase) -> None:
    """The merchant cancelled a pending order: its approval ends too (in the
    caller's transaction)."""
    row = purchases_repo.approval_of(purchase.id)
    if row is not None and row.status == PENDING:
        row.status, row.decided_at, row.decided_by = CANCELLED, utcnow(), "merchant"
        purchases_repo.add(row)


def merchant_view(purchase: Purchase) -> dict[str, Any] | None:
    """The approval as the merchant sees it: id, status, expiry, the page URL it
    may show, and the comments that are not internal."""
    row = purchases_repo.approval_of(purchase.id)
    if row is None:
        return None
    return {
        "id": row.id, "status": row.status, "why": row.why,
        "expires_at": row.expires_at.isoformat(), "url": page_url(row.id),
        "decision_reason": row.decision_reason,
        "comments": [{"author": "approver", "body": c.body, "at": c.created_at.isoformat()}
                     for c in purchases_repo.comments(row.id) if not c.internal],
    }
