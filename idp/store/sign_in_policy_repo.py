"""Repository of the units' ``fresh_code_every_sign_in`` policy
(:mod:`idp.factors.fresh_code`). Writes are only staged; the caller commits them."""

from __future__ import annotations

from sqlalchemy import exists, select

from idp.store.db import db
from idp.store.models import Access, AuditEvent, Connector, Unit


def fresh_code_units() -> frozenset[str]:
    """Ids of the units that have the policy (usually none)."""
    return frozenset(db.session.scalars(_UNITS))


def member_of_any(account_id: str, unit_ids: frozenset[str]) -> bool:
    """One query: the account has an access to one of ``unit_ids``."""
    return bool(db.session.scalar(
        select(exists().where(Access.account_id == account_id,
                              Access.unit_id.in_(sorted(unit_ids))))
    ))


_UNITS = select(Unit.id).where(Unit.fresh_code_every_sign_in.is_(True))


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
