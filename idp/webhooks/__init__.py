"""Webhooks per unit and per merchant client, following the Standard Webhooks specification
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
from idp.store.models import Client, WebhookDelivery, WebhookEndpoint, utcnow
from idp.webhooks import catalogue

# The units with an enabled endpoint, per process (usually few), so that producers on
# hot paths (sign-ins) ask the database nothing for a unit without webhooks. A commit
# in this process that writes an endpoint empties it at once; an endpoint created or
# enabled on another node counts here within the cache's 2 seconds.
UNITS: ProcessCache[frozenset[str]] = ProcessCache("webhook_units", (WebhookEndpoint,), 1)
# The same for merchant clients (public ``client_id``); a client's change empties it too.
CLIENTS: ProcessCache[frozenset[str]] = ProcessCache(
    "webhook_clients", (WebhookEndpoint, Client), 1
)

MERCHANT_PREFIX = "purchase."


def merchant_may_hear(event_type: str) -> bool:
    """Whether a merchant client's endpoint may subscribe to (and hear) ``event_type``:
    only ``purchase.*`` events."""
    return event_type.startswith(MERCHANT_PREFIX)


def emit(*, unit_id: str | None, event_type: str, data: Mapping[str, Any],
         client_id: str | None = None) -> None:
    """Stage the event ``event_type`` (a :data:`catalogue.EVENTS` name, else
    :class:`catalogue.UnknownEventType`) with ``data`` (ids and non-secret facts,
    JSON-ready) for every enabled endpoint of ``unit_id`` that subscribed to it, and,
    when ``client_id`` (a public OAuth ``client_id``) is given and the event is a
    ``purchase.*`` one, for every enabled endpoint of that merchant client that
    subscribed to it: the one payload both audiences get. Does not commit: the
    caller's :func:`idp.store.unit_of_work.atomic` block does, with the change the
    event describes. No query for an audience without an enabled endpoint
    (:data:`UNITS`, :data:`CLIENTS`), else one per audience to find its endpoints."""
    catalogue.known(event_type)
    found: list[WebhookEndpoint] = []
    if unit_id is not None and unit_id in (
        UNITS.get_or_load("units", webhooks_repo.units_with_endpoints) or ()
    ):
        found += webhooks_repo.enabled_endpoints(unit_id)
    if client_id is not None and merchant_may_hear(event_type) and client_id in (
        CLIENTS.get_or_load("clients", webhooks_repo.clients_with_endpoints) or ()
    ):
        found += webhooks_repo.enabled_client_endpoints(client_id)
    endpoints = [e for e in found if not e.events or event_type in e.events]
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
            id="msg_" + uuid.uuid4().hex, endpoint_id=endpoint.id, unit_id=endpoint.unit_id,
            event_type=event_type, body=body, timestamp=int(now.timestamp()),
            status="pending", attempts=0, next_attempt_at=now, created_at=now,
        ))


__all__ = ["emit", "merchant_may_hear"]
