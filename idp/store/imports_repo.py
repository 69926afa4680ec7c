"""The console's CSV imports (:class:`idp.store.models.AccessImport`): a leased queue
(:mod:`idp.store.leases`) with the progress of each import. Stages only; the
service (:mod:`idp.accounts.import_jobs`) commits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select, update

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
