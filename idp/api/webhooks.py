"""Webhooks of a unit (issue 13, item 5) and of a merchant client (issue 17, item 3:
operator only), the published event catalogue, and the
audit log as JSON Lines for a SIEM (item 7). The rules are in :mod:`idp.webhooks`
and :mod:`idp.audit`; this module validates and answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from flask import Response, stream_with_context
from pydantic import BaseModel, ConfigDict, Field

from idp import audit
from idp.api import bp, idempotency, pages
from idp.api.endpoint import Call, authorize, endpoint
from idp.api.pages import Page, PageQuery
from idp.api.problems import invalid, not_found
from idp.api.types import Instant
from idp.units import registry as units
from idp.webhooks import catalogue
from idp.webhooks import endpoints as hooks
from idp.webhooks.endpoints import EndpointRefused

EventName = Annotated[str, Field(min_length=1, max_length=100)]


class WebhookIn(BaseModel):
    """A new endpoint."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="https:// (http:// only where the "
                     "operator allows private receivers)")
    events: list[EventName] | None = Field(
        None, max_length=hooks.MAX_EVENTS,
        description="Event types (GET /events/schema); null or empty: all",
    )
    description: str = Field("", max_length=500)


class WebhookPatch(BaseModel):
    """The fields to change; absent ones stay."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=2000)
    events: list[EventName] | None = Field(None, max_length=hooks.MAX_EVENTS)
    description: str | None = Field(None, max_length=500)
    enabled: bool | None = None


class WebhookOut(BaseModel):
    """An endpoint (never its secret)."""

    id: str
    unit_id: str | None = Field(description="The unit's endpoint; null for a merchant's")
    client_id: str | None = Field(description="The merchant client's endpoint (its public "
                                  "client_id); null for a unit's")
    url: str
    events: list[str] | None = Field(description="null: every event type")
    description: str
    enabled: bool
    disabled_reason: str | None = Field(description="by_hand, or failing (switched off "
                                        "after days of failed deliveries)")
    failing_since: datetime | None
    created_at: datetime
    rotation_overlap_until: datetime | None = Field(
        description="Until then the previous secret signs as well")


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="whsec_...: shown only now")


class SecretOut(BaseModel):
    secret: str = Field(description="The new whsec_ secret: shown only now")
    rotation_overlap_until: datetime


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None
    response: str | None = Field(description="The start of the answer's body")


class DeliveryOut(BaseModel):
    """One event for this endpoint; ``id`` is the ``webhook-id`` header."""

    id: str
    event_type: str
    status: str = Field(description="pending, sending, sent or dead")
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    payload: dict[str, Any]
    log: list[AttemptOut] = Field(description="The newest attempts (at most 10)")


class EventTypeOut(BaseModel):
    description: str
    json_schema: dict[str, Any] = Field(description="JSON Schema of the whole payload")


class EventCatalogueOut(BaseModel):
    specification: str
    json_schema_dialect: str
    events: dict[str, EventTypeOut]


def _out(row: Any) -> WebhookOut:
    return WebhookOut.model_validate(hooks.describe(row))


def _refused(exc: EndpointRefused) -> Exception:
    return invalid(exc.code, exc.detail, f"/body/{exc.field}")


def _endpoint(unit_id: str, webhook_id: str) -> Any:
    row = hooks.in_unit(webhook_id, unit_id)
    if row is None:
        raise not_found("webhook")
    return row


@endpoint(bp, "GET", "/events/schema", summary="The webhook event catalogue", tag="webhooks",
          response=EventCatalogueOut)
def get_event_schema(call: Call) -> EventCatalogueOut:
    """Every webhook event type with the JSON Schema (draft 2020-12) of the payload a
    receiver gets. Readable by any authenticated administration caller."""
    doc = catalogue.document()
    return EventCatalogueOut(
        specification=doc["specification"], json_schema_dialect=doc["json_schema_dialect"],
        events={name: EventTypeOut(description=e["description"], json_schema=e["schema"])
                for name, e in doc["events"].items()},
    )


@endpoint(bp, "POST", "/units/{unit_id}/webhooks", summary="Add a webhook endpoint",
          tag="webhooks", body=WebhookIn, response=WebhookCreatedOut, status=201,
          permission="webhooks.manage", extra_statuses=(409,))
def create_webhook(call: Call, unit_id: str) -> WebhookCreatedOut:
    """Adds an enabled endpoint. The answer carries its signing `secret` — the only
    time it is shown (a repeat with the same `Idempotency-Key` gets 409
    `secret_not_replayed`). A URL that is not https://, or whose host resolves to a private,
    loopback, link-local or otherwise non-public address, is refused (422)."""
    body: WebhookIn = call.body
    idempotency.secret_answer()
    try:
        made = hooks.create(unit_id, body.url, body.events, body.description, call.actor)
    except EndpointRefused as exc:
        raise _refused(exc) from exc
    return WebhookCreatedOut(**hooks.describe(made.endpoint), secret=made.secret)


@endpoint(bp, "GET", "/units/{unit_id}/webhooks", summary="The unit's webhook endpoints",
          tag="webhooks", query=PageQuery, response=Page[WebhookOut],
          permission="webhooks.manage")
def list_webhooks(call: Call, unit_id: str) -> Page[WebhookOut]:
    """The unit's endpoints by id."""
    key = pages.decode(call.query.cursor, (str,))
    rows = hooks.list_of(unit_id, call.actor, key[0] if key else None, call.query.limit + 1)
    more = len(rows) > call.query.limit
    rows = rows[: call.query.limit]
    return Page[WebhookOut](
        items=[_out(r) for r in rows],
        next_cursor=pages.encode([rows[-1].id]) if more and rows else None,
    )


@endpoint(bp, "GET", "/units/{unit_id}/webhooks/{webhook_id}", summary="A webhook endpoint",
          tag="webhooks", response=WebhookOut, permission="webhooks.manage")
def get_webhook(call: Call, unit_id: str, webhook_id: str) -> WebhookOut:
    """The endpoint (never its secret)."""
    return _out(_endpoint(unit_id, webhook_id))


@endpoint(bp, "PATCH", "/units/{unit_id}/webhooks/{webhook_id}",
          summary="Change a webhook endpoint", tag="webhooks", body=WebhookPatch,
          response=WebhookOut, permission="webhooks.manage")
def update_webhook(call: Call, unit_id: str, webhook_id: str) -> WebhookOut:
    """Changes the URL, the event types (null or empty: all), the description, or
    enables or disables it. Enabling again clears the failure record; deliveries
    that died meanwhile can be redelivered."""
    row = _endpoint(unit_id, webhook_id)
    body: WebhookPatch = call.body
    try:
        row = hooks.update(
            row, call.actor, url=body.url, events=body.events,
            events_given="events" in body.model_fields_set,
            description=body.description, enabled=body.enabled,
        )
    except EndpointRefused as exc:
        raise _refused(exc) from exc
    return _out(row)


@endpoint(bp, "DELETE", "/units/{unit_id}/webhooks/{webhook_id}",
          summary="Delete a webhook endpoint", tag="webhooks", permission="webhooks.manage")
def delete_webhook(call: Call, unit_id: str, webhook_id: str) -> None:
    """Deletes the endpoint with its deliveries and their log."""
    hooks.delete(_endpoint(unit_id, webhook_id), call.actor)


@endpoint(bp, "POST", "/units/{unit_id}/webhooks/{webhook_id}/rotate-secret",
          summary="Rotate the signing secret", tag="webhooks", response=SecretOut,
          permission="webhooks.manage", extra_statuses=(409,))
def rotate_webhook_secret(call: Call, unit_id: str, webhook_id: str) -> SecretOut:
    """A new secret, shown only now. Until `rotation_overlap_until`
    (`IDP_WEBHOOK_ROTATION_OVERLAP_HOURS`, 24 h by default) every delivery is signed
    with both, so the receiver can switch without losing an event."""
    row = _endpoint(unit_id, webhook_id)
    idempotency.secret_answer()
    secret = hooks.rotate(row, call.actor)
    assert row.previous_secret_until is not None
    return SecretOut(secret=secret, rotation_overlap_until=row.previous_secret_until)


def _delivery(row: Any, log: list[Any]) -> DeliveryOut:
    return DeliveryOut(
        id=row.id, event_type=row.event_type, status=row.status, attempts=row.attempts or 0,
        next_attempt_at=row.next_attempt_at if row.status in ("pending", "sending") else None,
        last_error=row.last_error, created_at=row.created_at, sent_at=row.sent_at,
        payload=json.loads(row.body),
        log=[AttemptOut.model_validate(a, from_attributes=True) for a in log],
    )


@endpoint(bp, "GET", "/units/{unit_id}/webhooks/{webhook_id}/deliveries",
          summary="The endpoint's deliveries", tag="webhooks", query=PageQuery,
          response=Page[DeliveryOut], permission="webhooks.manage")
def list_webhook_deliveries(call: Call, unit_id: str, webhook_id: str) -> Page[DeliveryOut]:
    """Newest first, each with its newest attempts (time, HTTP status, duration,
    error, the start of the answer)."""
    row = _endpoint(unit_id, webhook_id)
    key = pages.decode(call.query.cursor, (str, str))
    after = (datetime.fromisoformat(key[0]), key[1]) if key else None
    found, logs = hooks.deliveries(row, call.actor, after, call.query.limit + 1)
    more = len(found) > call.query.limit
    found = found[: call.query.limit]
    cursor = (pages.encode([found[-1].created_at.isoformat(), found[-1].id])
              if more and found else None)
    return Page[DeliveryOut](items=[_delivery(d, logs[d.id]) for d in found],
                             next_cursor=cursor)


@endpoint(bp, "POST",
          "/units/{unit_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
          summary="Send a delivery again", tag="webhooks", response=DeliveryOut,
          permission="webhooks.manage")
def redeliver_webhook(call: Call, unit_id: str, webhook_id: str,
                      delivery_id: str) -> DeliveryOut:
    """Queues the delivery again at once, with the same `webhook-id` (receivers
    dedupe by it), whatever its state."""
    _endpoint(unit_id, webhook_id)
    row = hooks.delivery_in_unit(delivery_id, unit_id)
    if row is None or row.endpoint_id != webhook_id:
        raise not_found("delivery")
    row = hooks.redeliver(row, call.actor)
    return _delivery(row, [])


# --- a merchant client's webhooks (issue 17, item 3) --------------------------------
# Platform configuration: the operator only (platform-wide ``webhooks.manage``: the
# system and operator clients); anyone else gets 404 for the client and its endpoints.

def _operator(call: Call) -> None:
    authorize(call.actor, hooks.PERMISSION, None, "client")


def _client_endpoint(call: Call, client_id: str, webhook_id: str) -> Any:
    _operator(call)
    try:
        row = hooks.in_client(webhook_id, client_id, call.actor)
    except hooks.UnknownClient as exc:
        raise not_found("client") from exc
    if row is None:
        raise not_found("webhook")
    return row


@endpoint(bp, "POST", "/clients/{client_id}/webhooks",
          summary="Add a webhook endpoint of a merchant client", tag="webhooks",
          body=WebhookIn, response=WebhookCreatedOut, status=201, extra_statuses=(409,))
def create_client_webhook(call: Call, client_id: str) -> WebhookCreatedOut:
    """Adds an enabled endpoint of the merchant client `client_id` (one allowed the
    `purchases` scope, else 422 `not_a_merchant`): it hears the `purchase.*` events of
    the purchases made through this client only. Naming another event type is 422
    `event_not_for_merchants`; no `events`: every `purchase.*` type. Operator only; the
    `secret` is shown once, as for a unit's endpoint."""
    _operator(call)
    body: WebhookIn = call.body
    idempotency.secret_answer()
    try:
        made = hooks.create_for_client(client_id, body.url, body.events, body.description,
                                       call.actor)
    except hooks.UnknownClient as exc:
        raise not_found("client") from exc
    except EndpointRefused as exc:
        raise _refused(exc) from exc
    return WebhookCreatedOut(**hooks.describe(made.endpoint), secret=made.secret)


@endpoint(bp, "GET", "/clients/{client_id}/webhooks",
          summary="A merchant client's webhook endpoints", tag="webhooks", query=PageQuery,
          response=Page[WebhookOut])
def list_client_webhooks(call: Call, client_id: str) -> Page[WebhookOut]:
    """The merchant client's endpoints by id. Operator only."""
    _operator(call)
    key = pages.decode(call.query.cursor, (str,))
    try:
        rows = hooks.list_of_client(client_id, call.actor, key[0] if key else None,
                                    call.query.limit + 1)
    except hooks.UnknownClient as exc:
        raise not_found("client") from exc
    more = len(rows) > call.query.limit
    rows = rows[: call.query.limit]
    return Page[WebhookOut](
        items=[_out(r) for r in rows],
        next_cursor=pages.encode([rows[-1].id]) if more and rows else None,
    )


@endpoint(bp, "GET", "/clients/{client_id}/webhooks/{webhook_id}",
          summary="A merchant client's webhook endpoint", tag="webhooks", response=WebhookOut)
def get_client_webhook(call: Call, client_id: str, webhook_id: str) -> WebhookOut:
    """The endpoint (never its secret). Operator only."""
    return _out(_client_endpoint(call, client_id, webhook_id))


@endpoint(bp, "PATCH", "/clients/{client_id}/webhooks/{webhook_id}",
          summary="Change a merchant client's webhook endpoint", tag="webhooks",
          body=WebhookPatch, response=WebhookOut)
def update_client_webhook(call: Call, client_id: str, webhook_id: str) -> WebhookOut:
    """As for a unit's endpoint; event types `purchase.*` only. Operator only."""
    row = _client_endpoint(call, client_id, webhook_id)
    body: WebhookPatch = call.body
    try:
        row = hooks.update(
            row, call.actor, url=body.url, events=body.events,
            events_given="events" in body.model_fields_set,
            description=body.description, enabled=body.enabled,
        )
    except EndpointRefused as exc:
        raise _refused(exc) from exc
    return _out(row)


@endpoint(bp, "DELETE", "/clients/{client_id}/webhooks/{webhook_id}",
          summary="Delete a merchant client's webhook endpoint", tag="webhooks")
def delete_client_webhook(call: Call, client_id: str, webhook_id: str) -> None:
    """Deletes the endpoint with its deliveries and their log. Operator only."""
    hooks.delete(_client_endpoint(call, client_id, webhook_id), call.actor)


@endpoint(bp, "POST", "/clients/{client_id}/webhooks/{webhook_id}/rotate-secret",
          summary="Rotate a merchant endpoint's signing secret", tag="webhooks",
          response=SecretOut, extra_statuses=(409,))
def rotate_client_webhook_secret(call: Call, client_id: str, webhook_id: str) -> SecretOut:
    """As for a unit's endpoint (the overlap of both secrets included). Operator only."""
    row = _client_endpoint(call, client_id, webhook_id)
    idempotency.secret_answer()
    secret = hooks.rotate(row, call.actor)
    assert row.previous_secret_until is not None
    return SecretOut(secret=secret, rotation_overlap_until=row.previous_secret_until)


@endpoint(bp, "GET", "/clients/{client_id}/webhooks/{webhook_id}/deliveries",
          summary="A merchant endpoint's deliveries", tag="webhooks", query=PageQuery,
          response=Page[DeliveryOut])
def list_client_webhook_deliveries(call: Call, client_id: str,
                                   webhook_id: str) -> Page[DeliveryOut]:
    """Newest first, each with its newest attempts. Operator only."""
    row = _client_endpoint(call, client_id, webhook_id)
    key = pages.decode(call.query.cursor, (str, str))
    after = (datetime.fromisoformat(key[0]), key[1]) if key else None
    found, logs = hooks.deliveries(row, call.actor, after, call.query.limit + 1)
    more = len(found) > call.query.limit
    found = found[: call.query.limit]
    cursor = (pages.encode([found[-1].created_at.isoformat(), found[-1].id])
              if more and found else None)
    return Page[DeliveryOut](items=[_delivery(d, logs[d.id]) for d in found],
                             next_cursor=cursor)


@endpoint(bp, "POST",
          "/clients/{client_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
          summary="Send a merchant's delivery again", tag="webhooks", response=DeliveryOut)
def redeliver_client_webhook(call: Call, client_id: str, webhook_id: str,
                             delivery_id: str) -> DeliveryOut:
    """Queues the delivery again at once, with the same `webhook-id`. Operator only."""
    endpoint_row = _client_endpoint(call, client_id, webhook_id)
    row = hooks.delivery_of(delivery_id, endpoint_row)
    if row is None:
        raise not_found("delivery")
    return _delivery(hooks.redeliver(row, call.actor), [])


# --- the audit log as JSON Lines (item 7) -------------------------------------------

EXPORT_MAX = 100_000
EXPORT_BATCH = 1000


class AuditExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: int = Field(0, ge=0, le=2**63 - 1,
                       description="Export events with a sequence number above this")
    limit: int = Field(10_000, ge=1, le=EXPORT_MAX, description="At most this many lines")
    since: Instant | None = Field(None, description="At or after this instant")


class AuditLine(BaseModel):
    """One line of the export: an audit event, its `seq` the cursor to resume after."""

    seq: int
    id: str
    at: datetime
    actor: dict[str, Any]
    unit_id: str | None
    action: str
    target: str | None
    details: dict[str, Any]
    request_id: str | None


def _jsonl(query: AuditExportQuery, unit_ids: set[str] | None) -> Response:
    def lines() -> Iterator[str]:
        cursor, left = query.after, query.limit
        while left > 0:
            rows = audit.search(cursor, min(EXPORT_BATCH, left), unit_ids, since=query.since)
            for row in rows:
                yield json.dumps(audit.describe(row), separators=(",", ":")) + "\n"
            if len(rows) < min(EXPORT_BATCH, left):
                return
            cursor, left = rows[-1].seq, left - len(rows)

    resp = Response(stream_with_context(lines()), mimetype="application/jsonl")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@endpoint(bp, "GET", "/audit/export", summary="The whole audit log as JSON Lines",
          tag="audit", query=AuditExportQuery, response=list[AuditLine],
          response_media="application/jsonl")
def export_audit(call: Call) -> Response:
    """Every committed event after `after` in sequence order, one JSON object per line
    (`application/jsonl`), at most `limit` lines. Resume with `after` set to the last
    line's `seq`: no committed event is skipped or repeated. Operator only (`audit.read`
    platform-wide)."""
    call.require("audit.read", None)
    return _jsonl(call.query, None)


@endpoint(bp, "GET", "/units/{unit_id}/audit/export", summary="A unit's audit log as JSON "
          "Lines", tag="audit", query=AuditExportQuery, response=list[AuditLine],
          permission="audit.read", response_media="application/jsonl")
def export_unit_audit(call: Call, unit_id: str) -> Response:
    """The events of the unit and its sub-units after `after`, one JSON object per line
    (see `GET /audit/export`)."""
    return _jsonl(call.query, {unit_id, *units.descendant_ids(unit_id)})
