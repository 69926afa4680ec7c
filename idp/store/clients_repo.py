"""Repository of OIDC clients (relying parties, the merchants)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from idp.store.db import db
from idp.store.models import Client


def insert(client: Client) -> Client:
    """Persist a new client in its own transaction and return it."""
    db.session.add(client)
    db.session.commit()
    return client


def update(client: Client, changes: dict[str, Any]) -> Client:
    """Apply ``changes`` (column name to value) to ``client`` in one transaction."""
    for name, value in changes.items():
        setattr(client, name, value)
    db.session.commit()
    return client


def by_client_id(client_id: str) -> Client | None:
    """The client with this public ``client_id`` (one indexed lookup), or None."""
    return db.session.scalars(select(Client).where(Client.client_id == client_id)).first()


def all_clients() -> list[Client]:
    """Every registered client, oldest first."""
    return list(db.session.scalars(select(Client).order_by(Client.created_at, Client.client_id)))


def remove(client_id: str) -> bool:
    """Delete the client; True when one existed. Through the unit of work, so the
    commit hooks see it (:mod:`idp.store.commit_hooks`: the client cache)."""
    row = by_client_id(client_id)
    if row is None:
        return False
    db.session.delete(row)
    db.session.commit()
    return True
