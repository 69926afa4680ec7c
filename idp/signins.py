"""Sign-ins of employees at merchants: the transactions of the employee's dashboard."""

from __future__ import annotations

from idp.store import signins_repo
from idp.store.models import SignIn


def record(
    account_id: str, client_id: str, unit_id: str | None, protocol: str, released: list[str]
) -> SignIn:
    """Record that ``account_id`` signed in at ``client_id`` now, releasing the claim
    names ``released``. Written in its own transaction before the merchant gets an
    answer, so the dashboard never misses a sign-in that happened."""
    return signins_repo.insert(
        SignIn(
            account_id=account_id,
            client_id=client_id,
            unit_id=unit_id,
            protocol=protocol,
            released=list(released),
        )
    )
