"""Repository of consents: what an account agreed to release to one merchant."""

from __future__ import annotations

from sqlalchemy import select

from idp.store.db import db
from idp.store.models import Consent, utcnow


def get(account_id: str, client_id: str) -> Consent | None:
    """The account's consent for ``client_id``, or None."""
    return db.session.scalars(
        select(Consent).where(Consent.account_id == account_id, Consent.client_id == client_id)
    ).first()


def upsert(account_id: str, client_id: str, scopes: list[str], claims: list[str]) -> Consent:
    """Add ``scopes``/``claims`` to the account's consent for ``client_id`` (creating
    it), in one transaction. Earlier grants are kept: consent only grows here."""
    now = utcnow()
    row = get(account_id, client_id)
    if row is None:
        row = Consent(
            account_id=account_id,
            client_id=client_id,
            scopes=list(dict.fromkeys(scopes)),
            claims=list(dict.fromkeys(claims)),
            granted_at=now,
            updated_at=now,
        )
        db.session.add(row)
    else:
        row.scopes = list(dict.fromkeys([*(row.scopes or []), *scopes]))
        row.claims = list(dict.fromkeys([*(row.claims or []), *claims]))
        row.updated_at = now
    db.session.commit()
    return row
