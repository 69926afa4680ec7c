"""Sign-ins of employees at merchants: the transactions of the employee's dashboard."""

from __future__ import annotations

from idp.accounts import accesses
from idp.store import signins_repo
from idp.store.models import SignIn, utcnow
from idp.store.unit_of_work import atomic


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
    return row
