"""Approvals: an order over a limit waits for someone allowed to decide.

Who decides: the buyer's manager, when their SCIM record names one (enterprise
``manager``) who has an access in the unit's chain, and the people holding
``approvals.decide`` in the purchase's unit (through a role there or in an
ancestor); never the buyer themself. Any one of them decides (no multi-step
chain). When there is nobody, the order is refused with its reason instead
(``over_budget``...).

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

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from idp import audit
from idp.mail import outbox
from idp.purchases import events, ledger, money
from idp.purchases.budgets import Standing, applicable, chain, standing
from idp.rights import Actor, may
from idp.rights.catalogue import BUILT_IN
from idp.services import settings
from idp.store import purchases_repo
from idp.store.models import Account, Approval, ApprovalComment, Purchase, Unit, new_id, utcnow
from idp.store.unit_of_work import atomic

PERMISSION = "approvals.decide"
LINK_SALT = "unitgate.approval-link.v1"
MAX_CANDIDATES = 5000
MAX_APPROVERS = 20
MAX_COMMENT = 2000
PENDING, APPROVED, REJECTED, EXPIRED, CANCELLED = (
    "pending", "approved", "rejected", "expired", "cancelled")


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


def may_decide(account_id: str, purchase: Purchase, units: list[Unit]) -> bool:
    """True for a holder of ``approvals.decide`` in the unit and for the buyer's
    manager (:func:`_manager`); never for the buyer."""
    if account_id == purchase.account_id:
        return False
    if may(Actor.account(account_id), PERMISSION, units[0].id):
        return True
    boss = _manager(units, purchase.account_id)
    return boss is not None and boss.id == account_id


def approvers(units: list[Unit], requester: str) -> list[Account]:
    """Who may decide on an order in ``units[0]`` (``units`` its chain): the buyer's
    manager from SCIM first (when they have an access in the chain), then the
    accounts with an access in the chain that can sign in and hold
    ``approvals.decide`` in ``units[0]``; the requester excluded; at most
    :data:`MAX_APPROVERS`."""
    out: dict[str, Account] = {}
    boss = _manager(units, requester)
    if boss is not None:
        out[boss.id] = boss
    ids = [u.id for u in units]
    # Only a role or group granting the permission can make someone an approver: the
    # permission check (queries) runs for those few candidates alone.
    granting = {role for role, held in BUILT_IN.items() if PERMISSION in held}
    granting |= purchases_repo.groups_granting(ids, PERMISSION)
    for access, account in purchases_repo.people_in_units(ids, MAX_CANDIDATES):
        if account.id == requester or account.id in out or not account.can_sign_in:
            continue
        if not access.grants() or not granting & set(access.roles or []):
            continue
        if may(Actor.account(account.id), PERMISSION, units[0].id):
            out[account.id] = account
            if len(out) >= MAX_APPROVERS:
                break
    return list(out.values())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.secret_key), salt=LINK_SALT)


def link_token(approval_id: str, account_id: str) -> str:
    """The signed token of the e-mail link for this approver."""
    return str(_serializer().dumps({"a": approval_id, "u": account_id}))


def read_link(token: str) -> tuple[str, str] | None:
    """(approval id, approver account id) of a valid, unexpired link token."""
    max_age = int(settings().approval_hours * 3600) + 60
    try:
        data = _serializer().loads(token, max_age=max_age)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("a"), str) or not isinstance(
        data.get("u"), str
    ):
        return None
    return data["a"], data["u"]


def page_url(approval_id: str) -> str:
    """Where an approver decides (sign-in required)."""
    return f"{settings().issuer.rstrip('/')}/account/approvals/{approval_id}"


def open_approval(
    purchase: Purchase, units: list[Unit], why: str, deciders: list[Account]
) -> tuple[Approval, list[str]]:
    """Stage the approval of ``purchase`` and the e-mails to ``deciders`` in the
    caller's transaction; (the approval, the outbox message ids to deliver after
    the commit)."""
    now = utcnow()
    row = Approval(id=new_id(), purchase_id=purchase.id, unit_id=purchase.unit_id, why=why,
                   status=PENDING, created_at=now,
                   expires_at=now + timedelta(hours=settings().approval_hours))
    purchases_repo.add(row)
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
    return row, messages


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
    if not may_decide(account_id, purchase, chain(unit)):
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
    return ApprovalView(row, purchase, buyer, unit, st, purchases_repo.comments(row.id))


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


def decide(account_id: str, approval_id: str, decision: Decision) -> Purchase:
    """Carry out ``decision`` by the approver ``account_id`` (see the module).
    Refused: ``not_found`` (not an approver of it), ``not_pending`` (decided or
    expired), ``reason_required`` (a rejection needs one), ``invalid_amount``."""
    if decision.action not in ("approve", "reject", "change", "comment"):
        raise ApprovalError("invalid_action", "approve, reject, change or comment")
    row, purchase, unit = _loaded(account_id, approval_id)
    purchase = expire_if_due(purchase)
    who = audit.Actor.account(account_id)
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
        now = utcnow()
        _comment(row, who, decision.comment, decision.internal)
        if decision.amount is not None or decision.lines is not None:
            before = money.format_minor(purchase.amount_minor, purchase.currency)
            if decision.amount is not None:
                try:
                    purchase.amount_minor = money.parse(decision.amount, purchase.currency)
                except money.MoneyError as exc:
                    raise ApprovalError(exc.code, exc.detail) from exc
            if decision.lines is not None:
                purchase.lines = decision.lines
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
        elif decision.action == "approve":
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
        if decision.action in ("approve", "reject"):
            row.decided_by, row.decided_at = who.display, now
        purchase.updated_at = now
        purchases_repo.add(row, purchase)
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
