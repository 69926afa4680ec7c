"""Repository of claimed domains, their rules and break-glass addresses.

Each write is one transaction (with the audit events staged before it); a
uniqueness violation (a name another unit claimed a moment earlier) rolls back and
raises :class:`Conflict`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import joinedload, selectinload

from idp.store.db import db
from idp.store.models import BreakGlassAccount, Connector, Domain, DomainRule


def _with_rules() -> Select[Domain]:
    return select(Domain).options(selectinload(Domain.rule), selectinload(Domain.break_glass))


def by_name(name: str) -> Domain | None:
    """The claim of exactly ``name``, or None."""
    if not name or len(name) > 253:
        return None
    return db.session.scalars(_with_rules().where(Domain.name == name)).first()


def by_names(names: Iterable[str]) -> list[Domain]:
    """The claims of any of ``names`` with their unit and rule (one indexed ``IN``
    query joining both: this runs on every login page); ``break_glass`` loads on
    first access, which only a ``require_sso`` domain needs."""
    wanted = [n for n in names if n and len(n) <= 253]
    if not wanted:
        return []
    return list(db.session.scalars(_BY_NAMES, {"names": wanted}))


# Built once: constructing the joined select costs more than running it.
_BY_NAMES = (
    select(Domain)
    .options(joinedload(Domain.rule), joinedload(Domain.unit))
    .where(Domain.name.in_(bindparam("names", expanding=True)))
)


def under(name: str) -> list[Domain]:
    """Claims of strict subdomains of ``name`` (``*.name``)."""
    suffix = "." + name
    return list(
        db.session.scalars(select(Domain).where(Domain.name.endswith(suffix, autoescape=True)))
    )


def all_domains(unit_id: str | None = None) -> list[Domain]:
    """Every claim (or those of one unit), ordered by name."""
    stmt = _with_rules().order_by(Domain.name)
    if unit_id is not None:
        stmt = stmt.where(Domain.unit_id == unit_id)
    return list(db.session.scalars(stmt))


def in_states(states: Iterable[str]) -> list[Domain]:
    """Claims whose state is one of ``states``, ordered by name."""
    return list(
        db.session.scalars(
            select(Domain).where(Domain.state.in_(list(states))).order_by(Domain.name)
        )
    )


def rule_for(domain: Domain) -> DomainRule:
    """The domain's rule row, a new (unsaved, default) one when it has none yet."""
    return domain.rule or DomainRule(domain_id=domain.id, subunit_map={})


def break_glass(domain_id: str, email: str) -> BreakGlassAccount | None:
    """The break-glass entry of ``email`` on the domain, or None."""
    return db.session.scalars(
        select(BreakGlassAccount).where(
            BreakGlassAccount.domain_id == domain_id, BreakGlassAccount.email == email
        )
    ).first()


def connector(connector_id: str) -> Connector | None:
    """The connector with this id, or None."""
    if not connector_id or len(connector_id) > 32:
        return None
    return db.session.get(Connector, connector_id)


def enabled_connectors(unit_id: str) -> list[Connector]:
    """The unit's enabled connectors, oldest first."""
    return list(
        db.session.scalars(
            select(Connector)
            .where(Connector.unit_id == unit_id, Connector.enabled.is_(True))
            .order_by(Connector.created_at, Connector.id)
        )
    )
