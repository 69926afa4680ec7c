"""Sign-ins of employees at merchants: the transactions of the employee's dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from idp.accounts import accesses
from idp.store import signins_repo
from idp.store.models import SignIn, utcnow
from idp.store.unit_of_work import atomic
from idp.webhooks import emit


def record(
    account_id: str, merchant_id: str, unit_id: str | None, protocol: str, released: list[str]
) -> SignIn:
    """Record that ``account_id`` signed in at the merchant now, releasing the claim
    names ``released``. Written in its own transaction before the merchant gets an
    answer, so the dashboard never misses a sign-in that happened; the
    ``last_signin_at`` of the access to ``unit_id`` is set in the same transaction.
    ``merchant_id`` comes from the cached client or the loaded SP (no query here)."""
    row = SignIn(
        account_id=account_id,
        merchant_id=merchant_id,
        unit_id=unit_id,
        protocol=protocol,
        released=list(released),
        at=utcnow(),
    )
    with atomic():
        signins_repo.add(row)
        accesses.record_signin(account_id, unit_id, row.at)
        if unit_id:
            emit(unit_id=unit_id, event_type="signin.succeeded", data={
                "account_id": account_id, "unit_id": unit_id, "merchant_id": merchant_id,
                "protocol": protocol})
    return row


EXPORT_BATCH = 500


def export_rows(unit_id: str, since: datetime) -> Iterator[dict[str, Any]]:
    """The unit's sign-ins at or after ``since``, oldest first, as flat records
    (``at``, ``id``, ``account_id``, ``merchant_id``, ``unit_id``, ``protocol``,
    ``released``), read in batches so memory stays constant."""
    after: tuple[datetime, str] | None = None
    while True:
        rows = signins_repo.of_unit_after(unit_id, since, after, EXPORT_BATCH)
        for row in rows:
            yield {"at": row.at.isoformat(), "id": row.id, "account_id": row.account_id,
                   "merchant_id": row.merchant_id, "unit_id": row.unit_id,
                   "protocol": row.protocol, "released": " ".join(row.released or [])}
        if len(rows) < EXPORT_BATCH:
            return
        after = (rows[-1].at, rows[-1].id)
