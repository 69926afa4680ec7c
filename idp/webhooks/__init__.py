"""Webhooks per unit, following the Standard Webhooks specification
(``docs/webhooks.md``).

:func:`emit` is the one way any producer announces an event: it *stages* one
delivery per enabled endpoint of the unit subscribed to the type, in the caller's
transaction, so an event exists if and only if its cause committed. Delivery,
signing, retries and the SSRF defence are in :mod:`idp.webhooks.delivery`,
:mod:`idp.webhooks.signing` and :mod:`idp.webhooks.targets`; the event types and
their JSON Schemas in :mod:`idp.webhooks.catalogue`; managing endpoints in
:mod:`idp.webhooks.endpoints`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from idp.process_cache import ProcessCache
from idp.store import webhooks_repo
from idp.store.models import WebhookDelivery, WebhookEndpoint, utcnow
from idp.webhooks import catalogue

# The units with an enabled endpoint, per process (usually few), so that producers on
# hot paths (sign-ins) ask the database nothing for a unit without webhooks. A commit
# in this process that writes an endpoint empties it at once; an endpoint created or
# enabled on another node counts here within the cache's 2 seconds.
UNITS: ProcessCache[frozenset[str]] = ProcessCache("webhook_units", (WebhookEndpoint,), 1)


def emit(*, unit_id: str, event_type: str, data: Mapping[str, Any]) -> None:
    """Stage the event ``event_type`` (a :data:`catalogue.EVENTS` name, else
    :class:`catalogue.UnknownEventType`) with ``data`` (ids and non-secret facts,
    JSON-ready) for every enabled endpoint of ``unit_id`` that subscribed to it. Does
    not commit: the caller's :func:`idp.store.unit_of_work.atomic` block does, with
    the change the event describes. No query for a unit without an enabled endpoint
    (:data:`UNITS`), else one to find its endpoints."""
    catalogue.known(event_type)
    if unit_id not in (UNITS.get_or_load("units", webhooks_repo.units_with_endpoints) or ()):
        return
    endpoints = [
        e for e in webhooks_repo.enabled_endpoints(unit_id)
        if not e.events or event_type in e.events
    ]
    if not endpoints:
        return
    now = utcnow()
    body = json.dumps({
        "type": event_type,
        "timestamp": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": dict(data),
    }, separators=(",", ":"), sort_keys=True)
    for endpoint in endpoints:
        webhooks_repo.stage_delivery(WebhookDelivery(
            id="msg_" + uuid.uuid4().hex, endpoint_id=endpoint.id, unit_id=unit_id,
            event_type=event_type, body=body, timestamp=int(now.timestamp()),
            status="pending", attempts=0, next_attempt_at=now, created_at=now,
        ))


__all__ = ["emit"]
