"""Read queries of the employee dashboard: one page of an account's sign-ins and the
display names of the units they mention (a few queries per page, never one per row;
merchant names come from :func:`idp.release.merchants.names`)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from idp.store.db import db
from idp.store.models import SignIn, Unit


def signins_page(account_id: str, offset: int, size: int) -> tuple[list[SignIn], bool]:
    """Up to ``size`` sign-ins of ``account_id`` from ``offset``, newest first, and
    whether older ones follow. Only this account's rows are ever returned."""
    rows = list(
        db.session.scalars(
            select(SignIn)
            .where(SignIn.account_id == account_id)
            .order_by(SignIn.at.desc(), SignIn.id.desc())
            .offset(max(0, offset))
            .limit(size + 1)
        )
    )
    return rows[:size], len(rows) > size


def unit_names(ids: Iterable[str | None]) -> dict[str, str]:
    """Unit names by unit id (unknown or deleted units absent)."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return dict(db.session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(wanted))).all())
