"""Repository of OIDC clients (relying parties). Stages changes only; the caller
commits (:func:`idp.store.unit_of_work.atomic`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from idp.store.db import db
from idp.store.models import Client


def add(client: Client) -> Client:
    """Stage a new client and return it."""
    db.session.add(client)
    return client


def update(client: Client, changes: dict[str, Any]) -> Client:
    """Stage ``changes`` (column name to value) on ``client``."""
    for name, value in changes.items():
        setattr(client, name, value)
    return client


def by_client_id(client_id: str) -> Client | None:
    """The client with this public ``client_id`` (one indexed lookup), or None."""
    return db.session.scalars(select(Client).where(Client.client_id == client_id)).first()


def all_clients() -> list[Client]:
    """Every registered client, oldest first."""
    return list(db.session.scalars(select(Client).order_by(Client.created_at, Client.client_id)))


def remove(client: Client) -> None:
    """Stage the deletion of ``client``. Its commit empties the client cache
    (:mod:`idp.store.commit_hooks`)."""
    db.session.delete(client)
