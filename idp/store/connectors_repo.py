"""Repository of upstream connectors (``Connector`` rows). Writes are staged; the
caller commits them (:func:`idp.store.unit_of_work.atomic`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from idp.store.db import db
from idp.store.models import Connector, ConnectorIdLedger, Unit, new_id


def unit_by_ref(ref: str) -> Unit | None:
    """A unit by id or slug."""
    if not ref or len(ref) > 100:
        return None
    return db.session.scalars(select(Unit).where(or_(Unit.id == ref, Unit.slug == ref))).first()


def unit(unit_id: str) -> Unit | None:
    return db.session.get(Unit, unit_id)


def new_connector_id() -> str:
    """An id for a connector about to be created (its URLs embed it)."""
    return new_id()


def id_used(connector_id: str) -> bool:
    """Whether a connector was ever created under ``connector_id`` (it may be
    deleted since): such an id is never given again."""
    return db.session.get(ConnectorIdLedger, connector_id) is not None


def create(
    unit_id: str,
    kind: str,
    name: str,
    settings: dict[str, Any],
    secret_sealed: str | None,
    connector_id: str | None = None,
    enabled: bool = True,
) -> Connector:
    """Stage a new connector, and its id in the ledger of ids ever used (whose
    primary key refuses an id used before, at commit: a
    :class:`~idp.store.unit_of_work.Conflict`), and return it."""
    row = Connector(
        id=connector_id or new_id(),
        unit_id=unit_id,
        kind=kind,
        name=name,
        settings=dict(settings),
        secret_sealed=secret_sealed,
        enabled=enabled,
    )
    db.session.add(ConnectorIdLedger(id=row.id, unit_id=unit_id))
    db.session.add(row)
    return row


def get(connector_id: str) -> Connector | None:
    """The connector with this id, or None (also for malformed ids)."""
    if not connector_id or len(connector_id) > 32:
        return None
    return db.session.get(Connector, connector_id)


def list_all(unit_id: str | None = None) -> list[Connector]:
    """Every connector, or those of one unit, oldest first."""
    query = select(Connector).order_by(Connector.created_at, Connector.id)
    if unit_id is not None:
        query = query.where(Connector.unit_id == unit_id)
    return list(db.session.scalars(query))


def for_unit(unit_id: str) -> Connector | None:
    """The unit's first enabled connector (the SSO target of its domains)."""
    query = (
        select(Connector)
        .where(Connector.unit_id == unit_id, Connector.enabled.is_(True))
        .order_by(Connector.created_at, Connector.id)
    )
    return db.session.scalars(query).first()


def update(
    row: Connector,
    settings: dict[str, Any] | None = None,
    secret_sealed: str | None = None,
    enabled: bool | None = None,
) -> Connector:
    """Stage a change of a connector's settings, secret or enabled flag."""
    if settings is not None:
        row.settings = dict(settings)
    if secret_sealed is not None:
        row.secret_sealed = secret_sealed
    if enabled is not None:
        row.enabled = enabled
    return row


def delete(connector_id: str) -> bool:
    """Stage the deletion of a connector and (by cascade) its upstream identities;
    True if it existed. Its id stays in the ledger (:func:`id_used`)."""
    row = get(connector_id)
    if row is None:
        return False
    db.session.delete(row)
    return True
