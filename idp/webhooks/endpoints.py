"""Managing webhook endpoints of a unit or of a merchant client: create (the secret
is shown once), change, delete, rotate the secret, list deliveries and redeliver by
hand. Every function asks :func:`idp.rights.require` for ``webhooks.manage`` in the
endpoint's unit, or platform-wide (unit None: the system and operator clients only)
for a merchant client's endpoint, since a merchant client is platform
configuration; writes its audit event through :mod:`idp.audit` and commits with
:func:`idp.store.unit_of_work.atomic`. An endpoint of another unit or client is "not
found" (:func:`in_unit`, :func:`in_client` return None), never a hint that it exists.

A merchant client's endpoint subscribes to ``purchase.*`` events only
(:func:`idp.webhooks.merchant_may_hear`; none named: all of them) and hears only the
purchases made through its client (:func:`idp.webhooks.emit`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from idp import audit
from idp.crypto.sealed_fields import webhook_context
from idp.rights import Actor, require
from idp.rights.authorization import audit_actor
from idp.services import services, settings
from idp.store import webhooks_repo
from idp.store.models import (
    Client,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    new_id,
    utcnow,
)
from idp.store.unit_of_work import atomic
from idp.webhooks import catalogue, merchant_may_hear, signing, targets

PERMISSION = "webhooks.manage"
MAX_EVENTS = 50


class EndpointRefused(ValueError):
    """Input a rule refuses: ``code``, ``detail`` and the ``field`` concerned."""

    def __init__(self, code: str, detail: str, field: str) -> None:
        super().__init__(detail)
        self.code, self.detail, self.field = code, detail, field


class UnknownClient(LookupError):
    """No client with this public ``client_id``."""


@dataclass(frozen=True)
class Created:
    endpoint: WebhookEndpoint
    secret: str


def seal(endpoint_id: str, secret: str) -> str:
    return services().sealer.seal(secret.encode(), webhook_context(endpoint_id))


def live_secrets(row: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one while the
    rotation overlap lasts."""
    out = [services().sealer.open(row.secret_sealed, webhook_context(row.id)).decode()]
    if row.previous_secret_sealed and row.previous_secret_until and (
        row.previous_secret_until > now
    ):
        out.append(
            services().sealer.open(row.previous_secret_sealed, webhook_context(row.id)).decode()
        )
    return out


def _checked_url(url: str) -> str:
    try:
        targets.check(url, settings().webhook_allow_private)
    except targets.TargetRefused as exc:
        raise EndpointRefused(exc.code, exc.detail, "url") from exc
    return url


def _checked_events(events: Sequence[str] | None, merchant: bool) -> list[str] | None:
    if events is None or len(events) == 0:
        return None
    if len(events) > MAX_EVENTS:
        raise EndpointRefused("too_many_events", "Too many event types.", "events")
    for name in events:
        if name not in catalogue.EVENTS:
            raise EndpointRefused(
                "unknown_event_type", f"Unknown event type {name[:100]!r}.", "events"
            )
        if merchant and not merchant_may_hear(name):
            raise EndpointRefused(
                "event_not_for_merchants",
                f"A merchant's endpoint hears purchase.* events only, not {name!r}.",
                "events",
            )
    return sorted(set(events))


def _scope(row: WebhookEndpoint) -> str | None:
    """Where ``webhooks.manage`` is asked: the endpoint's unit, or platform-wide (None)
    for a merchant client's endpoint (the check constraint: exactly one is set)."""
    return row.unit_id if row.client_id is None else None


def in_unit(endpoint_id: str, unit_id: str) -> WebhookEndpoint | None:
    """The endpoint when it belongs to ``unit_id``; None otherwise."""
    row = webhooks_repo.endpoint(endpoint_id)
    return row if row is not None and row.unit_id == unit_id else None


def _client(public_client_id: str, actor: Actor) -> Client:
    """The merchant client ``public_client_id``, after the platform-wide
    ``webhooks.manage`` check (so a refused actor learns nothing about the client);
    :class:`UnknownClient` when there is none."""
    require(actor, PERMISSION, None)
    row = webhooks_repo.client_row(public_client_id)
    if row is None:
        raise UnknownClient(public_client_id)
    return row


def client_pk(public_client_id: str, actor: Actor) -> str:
    """The ``clients`` row id of the merchant client (:func:`_client`'s checks)."""
    return _client(public_client_id, actor).id


def in_client(endpoint_id: str, public_client_id: str, actor: Actor) -> WebhookEndpoint | None:
    """The endpoint when it belongs to the merchant client ``public_client_id``; None
    otherwise (:func:`client_pk`'s check first)."""
    pk = client_pk(public_client_id, actor)
    row = webhooks_repo.endpoint(endpoint_id)
    return row if row is not None and row.client_id == pk else None


def create(
    unit_id: str, url: str, events: Sequence[str] | None, description: str, actor: Actor
) -> Created:
    """A new enabled endpoint and its secret (returned here only)."""
    require(actor, PERMISSION, unit_id)
    row = WebhookEndpoint(
        id=new_id(), unit_id=unit_id, url=_checked_url(url),
        events=_checked_events(events, False), description=description[:500], enabled=True,
        created_at=utcnow(), created_by=audit_actor(actor).display[:200],
    )
    return _created(row, actor)


def create_for_client(
    public_client_id: str, url: str, events: Sequence[str] | None, description: str,
    actor: Actor,
) -> Created:
    """A new enabled endpoint of the merchant client ``public_client_id`` (one allowed
    the ``purchases`` scope) and its secret (returned here only). Platform-wide
    ``webhooks.manage`` (:func:`client_pk`)."""
    client = _client(public_client_id, actor)
    if "purchases" not in (client.scope or "").split():
        raise EndpointRefused("not_a_merchant", "The client is not allowed the purchases "
                              "scope: it makes no purchases to hear of.", "client_id")
    row = WebhookEndpoint(
        id=new_id(), unit_id=None, client_id=client.id, url=_checked_url(url),
        events=_checked_events(events, True), description=description[:500], enabled=True,
        created_at=utcnow(), created_by=audit_actor(actor).display[:200],
    )
    return _created(row, actor)


def _created(row: WebhookEndpoint, actor: Actor) -> Created:
    secret = signing.new_secret()
    row.secret_sealed = seal(row.id, secret)
    with atomic():
        webhooks_repo.add_endpoint(row)
        audit.record(audit_actor(actor), "webhook.create", row.id,
                     {"events": row.events, "enabled": True, "client": _public(row)},
                     unit_id=row.unit_id)
    return Created(row, secret)


def _public(row: WebhookEndpoint) -> str | None:
    """The public ``client_id`` of a merchant's endpoint; None for a unit's."""
    return None if row.client_id is None else webhooks_repo.public_client_id(row.client_id)


def list_of(unit_id: str, actor: Actor, after: str | None, limit: int) -> list[WebhookEndpoint]:
    require(actor, PERMISSION, unit_id)
    return webhooks_repo.endpoints_of(unit_id, after, limit)


def list_of_client(
    public_client_id: str, actor: Actor, after: str | None, limit: int
) -> list[WebhookEndpoint]:
    """The merchant client's endpoints (platform-wide ``webhooks.manage``)."""
    return webhooks_repo.endpoints_of_client(client_pk(public_client_id, actor), after, limit)


def update(
    row: WebhookEndpoint, actor: Actor, *, url: str | None = None,
    events: Sequence[str] | None = None, events_given: bool = False,
    description: str | None = None, enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change the URL, the event types (``events_given``; empty or None: all), the
    description or the state. Enabling again clears the failure record."""
    require(actor, PERMISSION, _scope(row))
    new_url = _checked_url(url) if url is not None and url != row.url else None
    new_events = _checked_events(events, row.client_id is not None) if events_given else None
    changed: list[str] = []  # everything is checked before anything changes
    if new_url is not None:
        row.url = new_url
        changed.append("url")
    if events_given:
        row.events = new_events
        changed.append("events")
    if description is not None:
        row.description = description[:500]
        changed.append("description")
    if enabled is not None and enabled != row.enabled:
        row.enabled = enabled
        row.failing_since = None
        row.disabled_reason = None if enabled else "by_hand"
        changed.append("enabled")
    with atomic():
        audit.record(audit_actor(actor), "webhook.update", row.id,
                     {"changed": changed, "enabled": row.enabled}, unit_id=row.unit_id)
    return row


def delete(row: WebhookEndpoint, actor: Actor) -> None:
    """Delete the endpoint with its deliveries and their log."""
    require(actor, PERMISSION, _scope(row))
    with atomic():
        webhooks_repo.delete_endpoint(row)
        audit.record(audit_actor(actor), "webhook.delete", row.id, {}, unit_id=row.unit_id)


def rotate(row: WebhookEndpoint, actor: Actor, now: datetime | None = None) -> str:
    """A new secret (returned here only); the current one keeps signing as well for
    ``IDP_WEBHOOK_ROTATION_OVERLAP_HOURS``."""
    require(actor, PERMISSION, _scope(row))
    now = now or utcnow()
    secret = signing.new_secret()
    row.previous_secret_sealed = row.secret_sealed
    row.previous_secret_until = now + timedelta(hours=settings().webhook_rotation_overlap_hours)
    row.secret_sealed = seal(row.id, secret)
    with atomic():
        audit.record(audit_actor(actor), "webhook.rotate_secret", row.id,
                     {"overlap_until": row.previous_secret_until.isoformat()},
                     unit_id=row.unit_id)
    return secret


def deliveries(
    row: WebhookEndpoint, actor: Actor, after: tuple[datetime, str] | None, limit: int
) -> tuple[list[WebhookDelivery], dict[str, list[WebhookAttempt]]]:
    """The endpoint's deliveries, newest first, with their newest attempts."""
    require(actor, PERMISSION, _scope(row))
    found = webhooks_repo.deliveries_of(row.id, after, limit)
    return found, webhooks_repo.attempts_of([d.id for d in found], 10)


def delivery_in_unit(delivery_id: str, unit_id: str) -> WebhookDelivery | None:
    row = webhooks_repo.delivery(delivery_id)
    return row if row is not None and row.unit_id == unit_id else None


def delivery_of(delivery_id: str, endpoint: WebhookEndpoint) -> WebhookDelivery | None:
    """The delivery when it was made for ``endpoint``; None otherwise."""
    row = webhooks_repo.delivery(delivery_id)
    return row if row is not None and row.endpoint_id == endpoint.id else None


def redeliver(row: WebhookDelivery, actor: Actor) -> WebhookDelivery:
    """Send the delivery again (same ``webhook-id``) as soon as the loop runs."""
    endpoint = webhooks_repo.endpoint(row.endpoint_id)
    require(actor, PERMISSION, row.unit_id if endpoint is None else _scope(endpoint))
    with atomic():
        webhooks_repo.requeue(row.id, utcnow())
        audit.record(audit_actor(actor), "webhook.redeliver", row.id,
                     {"endpoint_id": row.endpoint_id}, unit_id=row.unit_id)
    found = webhooks_repo.delivery(row.id)
    assert found is not None
    return found


def describe(row: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint as the API and the CLI show it (never its secret)."""
    return {
        "id": row.id, "unit_id": row.unit_id, "client_id": _public(row),
        "url": row.url, "events": row.events,
        "description": row.description, "enabled": bool(row.enabled),
        "disabled_reason": row.disabled_reason, "failing_since": row.failing_since,
        "created_at": row.created_at,
        "rotation_overlap_until": row.previous_secret_until,
    }
