"""The console's CSV imports (:class:`idp.store.models.AccessImport`): a leased queue
(:mod:`idp.store.leases`) with the progress of each import. Stages only; the
service (:mod:`idp.accounts.import_jobs`) commits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, delete, select, update

from idp.store import leases
from idp.store.db import db
from idp.store.models import AccessImport

_QUEUE = leases.LeasedQueue(cast(Table, AccessImport.__table__))


def add(row: AccessImport) -> AccessImport:
    db.session.add(row)
    return row


def get(unit_id: str, import_id: str) -> AccessImport | None:
    """The import ``import_id`` of the unit ``unit_id`` (None for another unit's)."""
    return db.session.execute(
        select(AccessImport).where(AccessImport.id == import_id,
                                   AccessImport.unit_id == unit_id)
    ).scalar_one_or_none()


def claim_due(now: datetime, limit: int, lease: timedelta) -> list[AccessImport]:
    """Up to ``limit`` due imports for this caller alone (committed claims)."""
    return [AccessImport(**r._mapping) for r in _QUEUE.claim_due(now, limit, lease)]


def update_claimed(import_id: str, lease_until: datetime, values: dict[str, Any]) -> bool:
    """Stage ``values`` on the import while this caller's claim holds (``sending``
    with the lease it set, ``lease_until``); False when another caller claimed it
    since or it finished."""
    result = db.session.execute(
        update(AccessImport)
        .where(AccessImport.id == import_id, AccessImport.status == leases.SENDING,
               AccessImport.next_attempt_at == lease_until)
        .values(**values)
    )
    return bool(getattr(result, "rowcount", 0))


class PrunedImport(NamedTuple):
    """What :func:`prune` deleted of one import (for its audit event)."""

    id: str
    unit_id: str
    status: str
    rows_total: int


def prune(finished_before: datetime, limit: int) -> list[PrunedImport]:
    """Stage the deletion of up to ``limit`` finished imports (``sent`` or ``dead``)
    that finished before ``finished_before``, oldest first (index
    ``ix_access_imports_finished_at``); the rows this statement deleted (``id``,
    ``unit_id``, ``status``, ``rows_total``). A row another caller deleted first is
    not among them, so callers on several nodes never both report one import."""
    ids = select(AccessImport.id).where(
        AccessImport.status.in_((leases.SENT, leases.DEAD)),
        AccessImport.finished_at < finished_before,
    ).order_by(AccessImport.finished_at).limit(limit)
    chosen = list(db.session.scalars(ids))
    if not chosen:
        return []
    return [PrunedImport(*r) for r in db.session.execute(
        delete(AccessImport)
        .where(AccessImport.id.in_(chosen),
               AccessImport.status.in_((leases.SENT, leases.DEAD)))
        .returning(AccessImport.id, AccessImport.unit_id, AccessImport.status,
                   AccessImport.rows_total)
    ).all()]
