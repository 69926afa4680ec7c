"""Repository of the units' ``fresh_code_every_sign_in`` policy
(:mod:`idp.factors.fresh_code`). Writes are only staged; the caller commits them."""

from __future__ import annotations

from sqlalchemy import bindparam, exists, select

from idp.store.db import db
from idp.store.models import Access, AuditEvent, Connector, Unit


def fresh_code_required(account_id: str) -> bool:
    """One query: a unit of the account's memberships has the policy."""
    return bool(db.session.scalar(_REQUIRED, {"account_id": account_id}))


_REQUIRED = select(
    exists()
    .where(Access.account_id == bindparam("account_id"))
    .where(Access.unit_id == Unit.id, Unit.fresh_code_every_sign_in.is_(True))
)


def connector_unit_requires(connector_id: str) -> bool:
    """True when the unit owning the connector has the policy."""
    return bool(db.session.scalar(
        select(exists().where(Connector.id == connector_id, Connector.unit_id == Unit.id,
                              Unit.fresh_code_every_sign_in.is_(True)))
    ))


def set_fresh_code(unit: Unit, value: bool, audit: AuditEvent) -> None:
    """Stage the unit's ``fresh_code_every_sign_in`` with ``audit``."""
    unit.fresh_code_every_sign_in = value
    db.session.add(audit)
