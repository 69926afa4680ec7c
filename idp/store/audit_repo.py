"""Repository of audit events (append-only: never updated or deleted here)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from idp.store.db import db
from idp.store.models import AuditEvent


def add(event: AuditEvent, commit: bool = False) -> None:
    """Stage ``event`` in the current transaction; with ``commit`` commit it now."""
    db.session.add(event)
    if commit:
        db.session.commit()


def recent(
    limit: int = 100, target: str | None = None, action_prefix: str | None = None
) -> Sequence[AuditEvent]:
    """The newest events first, optionally only those about ``target`` or whose
    action starts with ``action_prefix``."""
    stmt = select(AuditEvent)
    if target is not None:
        stmt = stmt.where(AuditEvent.target == target)
    if action_prefix is not None:
        stmt = stmt.where(AuditEvent.action.startswith(action_prefix, autoescape=True))
    return db.session.scalars(stmt.order_by(AuditEvent.at.desc()).limit(limit)).all()
