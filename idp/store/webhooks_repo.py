"""Repository of webhook endpoints, their deliveries and the attempts log
(:mod:`idp.webhooks`). Everything here is staged for the caller to commit, except the
delivery claims, which are the shared lease idiom of :mod:`idp.store.leases`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, delete, or_, select, update

from idp.store import commit_hooks, leases
from idp.store.accesses_repo import main_users
from idp.store.db import db
from idp.store.leases import DEAD, PENDING, SENT
from idp.store.models import (
    Account,
    Client,
    Unit,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

_QUEUE = leases.LeasedQueue(cast(Table, WebhookDelivery.__table__))


def add_endpoint(row: WebhookEndpoint) -> None:
    db.session.add(row)


def delete_endpoint(row: WebhookEndpoint) -> None:
    db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == row.id))
    db.session.delete(row)


def endpoint(endpoint_id: str) -> WebhookEndpoint | None:
    return db.session.get(WebhookEndpoint, endpoint_id)


def endpoints_of(unit_id: str, after: str | None, limit: int) -> list[WebhookEndpoint]:
    """The unit's endpoints in id order after the keyset cursor ``after``."""
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.unit_id == unit_id)
    if after is not None:
        stmt = stmt.where(WebhookEndpoint.id > after)
    return list(db.session.scalars(stmt.order_by(WebhookEndpoint.id).limit(limit)))


def endpoints_of_client(client_pk: str, after: str | None, limit: int) -> list[WebhookEndpoint]:
    """The merchant client's endpoints (``clients.id``) in id order after ``after``."""
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.client_id == client_pk)
    if after is not None:
        stmt = stmt.where(WebhookEndpoint.id > after)
    return list(db.session.scalars(stmt.order_by(WebhookEndpoint.id).limit(limit)))


def enabled_client_endpoints(public_client_id: str) -> list[WebhookEndpoint]:
    """The enabled endpoints of the merchant client whose public ``client_id`` this is
    (one indexed query)."""
    return list(db.session.scalars(
        select(WebhookEndpoint).join(Client, Client.id == WebhookEndpoint.client_id).where(
            Client.client_id == public_client_id, WebhookEndpoint.enabled.is_(True)
        )
    ))


def clients_with_endpoints() -> frozenset[str]:
    """Public ``client_id`` of the merchant clients with at least one enabled endpoint
    (one query)."""
    return frozenset(db.session.scalars(
        select(Client.client_id).join(WebhookEndpoint, WebhookEndpoint.client_id == Client.id)
        .where(WebhookEndpoint.enabled.is_(True)).distinct()
    ))


def client_row(public_client_id: str) -> Client | None:
    return db.session.scalars(
        select(Client).where(Client.client_id == public_client_id)
    ).first()


def public_client_id(client_pk: str) -> str | None:
    row = db.session.get(Client, client_pk)
    return row.client_id if row is not None else None


def enabled_endpoints(unit_id: str) -> list[WebhookEndpoint]:
    """The unit's enabled endpoints (one indexed query)."""
    return list(db.session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.unit_id == unit_id, WebhookEndpoint.enabled.is_(True)
        )
    ))


def stage_delivery(row: WebhookDelivery) -> None:
    db.session.add(row)


def delivery(delivery_id: str) -> WebhookDelivery | None:
    return db.session.get(WebhookDelivery, delivery_id)


def deliveries_of(
    endpoint_id: str, after: tuple[datetime, str] | None, limit: int
) -> list[WebhookDelivery]:
    """The endpoint's deliveries, newest first, after the keyset ``(created_at, id)``."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if after is not None:
        at, last = after
        stmt = stmt.where(or_(
            WebhookDelivery.created_at < at,
            and_(WebhookDelivery.created_at == at, WebhookDelivery.id < last),
        ))
    stmt = stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    return list(db.session.scalars(stmt.limit(limit)))


def attempts_of(delivery_ids: Sequence[str], per_delivery: int) -> dict[str, list[WebhookAttempt]]:
    """The newest ``per_delivery`` attempts of each delivery, newest first."""
    out: dict[str, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
    if not delivery_ids:
        return out
    rows = db.session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(list(delivery_ids)))
        .order_by(WebhookAttempt.at.desc())
    )
    for row in rows:
        if len(out[row.delivery_id]) < per_delivery:
            out[row.delivery_id].append(row)
    return out


def claim(delivery_id: str, now: datetime, lease: timedelta) -> WebhookDelivery | None:
    row = _QUEUE.claim(delivery_id, now, lease)
    return None if row is None else WebhookDelivery(**row._mapping)


def claim_due(now: datetime, limit: int, lease: timedelta) -> list[WebhookDelivery]:
    return [WebhookDelivery(**r._mapping) for r in _QUEUE.claim_due(now, limit, lease)]


def mark_sent(delivery_id: str, at: datetime) -> None:
    db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(
            status=SENT, sent_at=at, last_error=None, attempts=WebhookDelivery.attempts + 1
        )
    )


def mark_failed(delivery_id: str, error: str, next_attempt_at: datetime, dead: bool) -> None:
    db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(
            status=DEAD if dead else PENDING, attempts=WebhookDelivery.attempts + 1,
            next_attempt_at=next_attempt_at, last_error=error[:2000],
        )
    )


def requeue(delivery_id: str, now: datetime) -> None:
    """Make a delivery due again now (redelivery by hand), whatever its status."""
    db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(
            status=PENDING, next_attempt_at=now
        )
    )


def add_attempt(row: WebhookAttempt) -> None:
    db.session.add(row)


def set_endpoint(endpoint_id: str, values: dict[str, Any]) -> None:
    db.session.execute(
        update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(**values)
    )
    commit_hooks.note_bulk_write(WebhookEndpoint)  # the per-process unit cache sees it


def disable_failing(endpoint_id: str, failing_since: datetime) -> bool:
    """Disable the endpoint as ``failing`` if it is still enabled and still failing
    since ``failing_since`` (no success came in between on another node); True when
    this call disabled it."""
    result = db.session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True),
               WebhookEndpoint.failing_since == failing_since)
        .values(enabled=False, disabled_reason="failing")
    )
    commit_hooks.note_bulk_write(WebhookEndpoint)
    return bool(getattr(result, "rowcount", 0))


def units_with_endpoints() -> frozenset[str]:
    """Ids of the units that have at least one enabled endpoint (one query)."""
    return frozenset(db.session.scalars(
        select(WebhookEndpoint.unit_id).where(
            WebhookEndpoint.enabled.is_(True), WebhookEndpoint.unit_id.is_not(None)
        ).distinct()
    ))


def main_user_contacts(unit_id: str, now: datetime) -> list[tuple[str, str]]:
    """(e-mail, language) of the unit's main users who have an address."""
    ids = main_users(unit_id, now)
    if not ids:
        return []
    rows = db.session.execute(select(Account.email, Account.locale).where(Account.id.in_(ids)))
    return [(email, (locale or "en")[:2]) for email, locale in rows if email is not None]


def unit_name(unit_id: str) -> str:
    unit = db.session.get(Unit, unit_id)
    return unit.name if unit is not None else unit_id


def prune(cutoff: datetime, limit: int) -> int:
    """Stage the deletion of up to ``limit`` finished deliveries (sent or dead) whose
    last attempt was before ``cutoff``, with their attempt log; how many."""
    ids = list(db.session.scalars(
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status.in_((SENT, DEAD)),
               WebhookDelivery.next_attempt_at < cutoff)
        .limit(limit)
    ))
    if ids:
        db.session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
        db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
    return len(ids)
