"""Repository of merchants (the parties behind OIDC clients and SAML service
providers). Stages changes only; the caller commits (:func:`idp.store.unit_of_work.atomic`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update

from idp.store.db import db, rowcount
from idp.store.models import Client, Grant, Merchant, SamlServiceProvider, new_id

ACTIVE = "active"
REMOVED = "removed"


def stage(protocol: str, identifier: str, name: str) -> Merchant:
    """Stage a new active merchant, flushed at once so that the client or SP staged
    next (no ORM relationship orders the two inserts) can refer to it."""
    row = Merchant(id=new_id(), protocol=protocol, identifier=identifier, name=name,
                   status=ACTIVE)
    db.session.add(row)
    db.session.flush()
    return row


def get(merchant_id: str) -> Merchant | None:
    """The merchant with this id, active or removed, or None."""
    if not merchant_id or len(merchant_id) > 32:
        return None
    return db.session.get(Merchant, merchant_id)


def of_client(client_id: str) -> Merchant | None:
    """The merchant behind the registered OIDC client ``client_id``, or None."""
    return db.session.scalar(
        select(Merchant).join(Client, Client.merchant_id == Merchant.id)
        .where(Client.client_id == client_id)
    )


def of_service_provider(entity_id: str) -> Merchant | None:
    """The merchant behind the registered SAML SP ``entity_id``, or None."""
    return db.session.scalar(
        select(Merchant).join(SamlServiceProvider, SamlServiceProvider.merchant_id == Merchant.id)
        .where(SamlServiceProvider.entity_id == entity_id)
    )


def names(ids: Iterable[str]) -> dict[str, Merchant]:
    """The merchants with these ids, by id, in one query (unknown ids absent)."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return {m.id: m for m in db.session.scalars(select(Merchant).where(Merchant.id.in_(wanted)))}


def rename(merchant_id: str, name: str) -> None:
    """Stage a new display name."""
    db.session.execute(update(Merchant).where(Merchant.id == merchant_id).values(name=name))


def retire(merchant_id: str, now: datetime) -> int:
    """Stage the retirement of a merchant whose registration goes: status
    ``removed``, and every live grant at it revoked (its refresh tokens stop, its
    access tokens turn inactive). Sign-ins and consents stay, referring to it.
    Returns how many grants were revoked."""
    db.session.execute(
        update(Merchant).where(Merchant.id == merchant_id, Merchant.status == ACTIVE)
        .values(status=REMOVED, removed_at=now)
    )
    result = db.session.execute(
        update(Grant).where(Grant.merchant_id == merchant_id, Grant.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return rowcount(result)
