"""Repository of consents: what an account agreed to release to one merchant.
Stages changes only; the caller commits (:func:`idp.store.unit_of_work.atomic`)."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, select

from idp.store import audit_repo
from idp.store.db import db, rowcount
from idp.store.models import AuditEvent, Consent, utcnow


def get(account_id: str, merchant_id: str) -> Consent | None:
    """The consent of ``account_id`` for the merchant, or None."""
    return db.session.scalars(_GET, {"account_id": account_id, "merchant_id": merchant_id}).first()


# Built once: read on every consent page and code exchange.
_GET = select(Consent).where(
    Consent.account_id == bindparam("account_id"), Consent.merchant_id == bindparam("merchant_id")
)


def merge(
    account_id: str, merchant_id: str, scopes: list[str], claims: list[str], audit: AuditEvent,
    withheld: list[str] | None = None,
) -> Consent:
    """Stage ``scopes`` and ``claims`` added to what the account consented to for the
    merchant (order kept, no duplicates), ``withheld`` (the items left out, replacing
    the earlier list; None keeps it), and ``audit``. A parallel first consent of
    the same pair makes the commit fail on the unique (account, merchant) pair: the
    caller retries (then this merges into the row the other one wrote)."""
    row = get(account_id, merchant_id)
    now = utcnow()
    if row is None:
        row = Consent(account_id=account_id, merchant_id=merchant_id, granted_at=now)
        db.session.add(row)
    row.scopes = list(dict.fromkeys([*(row.scopes or []), *scopes]))
    row.claims = list(dict.fromkeys([*(row.claims or []), *claims]))
    if withheld is not None:
        row.withheld = list(withheld)
    elif row.withheld is None:
        row.withheld = []
    row.updated_at = now
    audit_repo.add(audit)
    return row


def set_withheld(row: Consent, withheld: list[str], audit: AuditEvent) -> None:
    """Stage the items the consent ``row`` leaves out (replacing the list), and ``audit``."""
    row.withheld = list(withheld)
    row.updated_at = utcnow()
    audit_repo.add(audit)


def remove(account_id: str, merchant_id: str, audit: AuditEvent) -> bool:
    """Stage the deletion of the consent (and ``audit``); True when there was one."""
    result = db.session.execute(
        delete(Consent).where(Consent.account_id == account_id, Consent.merchant_id == merchant_id)
    )
    if rowcount(result):
        audit_repo.add(audit)
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
