"""Repository for the master-key rotation: rows holding sealed values, read in
primary-key batches, and the sealed secrets of the instance. Writes are staged; the
caller commits them (:func:`idp.store.unit_of_work.atomic`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import inspect, select

from idp.store.db import db
from idp.store.models import Base, InstanceSecret


def primary_key(row: Base) -> str:
    """The (single-column) primary key of ``row`` as text, the batch cursor."""
    return str(inspect(row).identity[0])  # type: ignore[index]


def batch(model: type[Base], after: str | None, limit: int) -> Sequence[Any]:
    """Up to ``limit`` rows of ``model`` in primary-key order after ``after``, locked
    for update where the database can (a node writing the same row waits)."""
    pk = inspect(model).primary_key[0]
    query = select(model).order_by(pk).limit(limit)
    if after is not None:
        query = query.where(pk > after)
    return db.session.scalars(query.with_for_update()).all()


def instance_secret(name: str) -> str | None:
    """The sealed value of the instance secret ``name``, or None."""
    row = db.session.get(InstanceSecret, name)
    return row.value_sealed if row else None


def add_instance_secret(name: str, value_sealed: str) -> None:
    db.session.add(InstanceSecret(name=name, value_sealed=value_sealed))
