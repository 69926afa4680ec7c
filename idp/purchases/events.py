"""The one place every purchase and approval event goes through.

:func:`record` stages, in the caller's transaction, the audit event and the Standard
Webhooks event of the same type (:func:`idp.webhooks.emit`) with the same ``data``
(:func:`payload`): every purchase event that is audited also reaches the unit's
expense and accounting webhooks and the merchant's own webhooks (the endpoints of
the client the purchase was made through), exactly when its cause commits. The
webhooks get :func:`payload` only, never the audit ``details``.

Event types: ``purchase.approved``, ``purchase.pending_approval``,
``purchase.refused``, ``purchase.confirmed``, ``purchase.cancelled``,
``purchase.amount_changed``.
"""

from __future__ import annotations

from typing import Any

from idp import audit, webhooks
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
    """Stage ``event_type`` about ``purchase`` by ``actor`` (audit log, the unit's
    webhooks and the merchant client's webhooks) in the caller's transaction."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown purchase event {event_type!r}")
    data = payload(purchase)
    data.update(details or {})
    audit.record(actor, event_type, purchase.id, data, unit_id=purchase.unit_id)
    # The unit's webhooks and the merchant's (the client the purchase was made through):
    # the same payload, never ``details`` (approvers' comments, internal ones included).
    webhooks.emit(unit_id=purchase.unit_id, client_id=purchase.client_id,
                  event_type=event_type, data=payload(purchase))
