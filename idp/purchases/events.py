"""The one place every purchase and approval event goes through.

:func:`record` stages the audit event in the caller's transaction now. At merge the
lead adds the Standard Webhooks call here (``idp.webhooks.emit(unit_id=...,
event_type=..., data=...)``, staged in the same transaction), so every event that
is audited is also sent to the unit's expense and accounting webhooks and to the
merchant, with the same ``data`` (:func:`payload`).

Event types: ``purchase.approved``, ``purchase.pending_approval``,
``purchase.refused``, ``purchase.confirmed``, ``purchase.cancelled``,
``purchase.amount_changed``.
"""

from __future__ import annotations

from typing import Any

from idp import audit
from idp.purchases import money
from idp.store.models import Purchase

EVENT_TYPES = (
    "purchase.approved", "purchase.pending_approval", "purchase.refused",
    "purchase.confirmed", "purchase.cancelled", "purchase.amount_changed",
)


def payload(purchase: Purchase) -> dict[str, Any]:
    """The event's data: the purchase as the merchant and the unit see it."""
    return {
        "purchase_id": purchase.id,
        "unit_id": purchase.unit_id,
        "account_id": purchase.account_id,
        "client_id": purchase.client_id,
        "order_ref": purchase.order_ref,
        "status": purchase.status,
        "reason": purchase.reason,
        "amount": money.format_minor(purchase.amount_minor, purchase.currency),
        "currency": purchase.currency,
    }


def record(
    purchase: Purchase, event_type: str, actor: audit.Actor, details: dict[str, Any] | None = None
) -> None:
    """Stage ``event_type`` about ``purchase`` by ``actor`` (audit log now; webhooks
    at merge, see the module) in the caller's transaction."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown purchase event {event_type!r}")
    data = payload(purchase)
    data.update(details or {})
    audit.record(actor, event_type, purchase.id, data, unit_id=purchase.unit_id)
