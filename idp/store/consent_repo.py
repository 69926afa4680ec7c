"""Repository of consents: what an account agreed to release to one merchant."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from idp.store import audit_repo
from idp.store.db import db, rowcount
from idp.store.models import AuditEvent, Consent, utcnow


def get(account_id: str, client_id: str) -> Consent | None:
    """The consent of ``account_id`` for ``client_id``, or None."""
    return db.session.scalars(_GET, {"account_id": account_id, "client_id": client_id}).first()


# Built once: read on every consent page and code exchange.
_GET = select(Consent).where(
    Consent.account_id == bindparam("account_id"), Consent.client_id == bindparam("client_id")
)


def add(
    account_id: str, client_id: str, scopes: list[str], claims: list[str], audit: AuditEvent
) -> Consent:
    """Add ``scopes`` and ``claims`` to what the account consented to for the client
    (order kept, no duplicates) and record ``audit``, in one transaction. A parallel
    first consent of the same pair is retried as an update (merging again), so the
    unique (account, client) row never fails a request."""
    for _attempt in range(2):
        row = get(account_id, client_id)
        now = utcnow()
        if row is None:
            row = Consent(account_id=account_id, client_id=client_id, granted_at=now)
            db.session.add(row)
        row.scopes = list(dict.fromkeys([*(row.scopes or []), *scopes]))
        row.claims = list(dict.fromkeys([*(row.claims or []), *claims]))
        row.updated_at = now
        # A retry adds a fresh copy: the rolled-back row may keep the seq it drew.
        audit_repo.add(audit_repo.copy(audit) if _attempt else audit)
        try:
            db.session.commit()
            return row
        except IntegrityError:
            db.session.rollback()
    raise RuntimeError("consent row could not be written")


def remove(account_id: str, client_id: str, audit: AuditEvent) -> bool:
    """Delete the consent (and record ``audit``); True when there was one."""
    result = db.session.execute(
        delete(Consent).where(Consent.account_id == account_id, Consent.client_id == client_id)
    )
    if rowcount(result):
        audit_repo.add(audit)
    db.session.commit()
    return bool(rowcount(result))


def for_account(account_id: str) -> list[Consent]:
    """Every consent of the account, most recently changed first."""
    return list(
        db.session.scalars(
            select(Consent)
            .where(Consent.account_id == account_id)
            .order_by(Consent.updated_at.desc())
        )
    )

