"""Sign-ins of employees at merchants: the transactions of the employee's dashboard."""

from __future__ import annotations

from idp import accesses
from idp.store import signins_repo
from idp.store.models import SignIn, utcnow
from idp.store.unit_of_work import atomic


def record(
    account_id: str, client_id: str, unit_id: str | None, protocol: str, released: list[str]
) -> SignIn:
    """Record that ``account_id`` signed in at ``client_id`` now, releasing the claim
    names ``released``. Written in its own transaction before the merchant gets an
    answer, so the dashboard never misses a sign-in that happened; the
    ``last_signin_at`` of the access to ``unit_id`` is set in the same transaction."""
    row = SignIn(
        account_id=account_id,
        client_id=client_id,
        unit_id=unit_id,
        protocol=protocol,
        released=list(released),
        at=utcnow(),
    )
    with atomic():
        signins_repo.insert(row)
        accesses.record_signin(account_id, unit_id, row.at)
    return row
