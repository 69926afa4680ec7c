"""Repository of brandings (merchant and company logos and colours). Stages changes
only; the caller commits (:func:`idp.store.unit_of_work.atomic`).

Pages read a branding without its logo's bytes (:func:`of_merchant`,
:func:`of_units`); only the image route reads them (:func:`logo_by_hash`)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import defer

from idp.store.db import db
from idp.store.models import Branding, new_id


def of_merchant(merchant_id: str) -> Branding | None:
    """The merchant's branding (logo bytes not loaded), or None."""
    if not merchant_id or len(merchant_id) > 32:
        return None
    return db.session.scalar(
        select(Branding).options(defer(Branding.logo)).where(Branding.merchant_id == merchant_id)
    )


def of_units(unit_ids: Iterable[str]) -> dict[str, Branding]:
    """The brandings of these units that have one, by unit id (logo bytes not loaded)."""
    wanted = {u for u in unit_ids if u}
    if not wanted:
        return {}
    rows = db.session.scalars(
        select(Branding).options(defer(Branding.logo)).where(Branding.unit_id.in_(wanted))
    )
    return {r.unit_id: r for r in rows if r.unit_id is not None}


def for_owner(merchant_id: str | None = None, unit_id: str | None = None) -> Branding:
    """The owner's branding row, a new staged one if it has none (exactly one owner)."""
    if (merchant_id is None) == (unit_id is None):
        raise ValueError("a branding belongs to one merchant or one unit")
    column = Branding.merchant_id if merchant_id is not None else Branding.unit_id
    row = db.session.scalar(select(Branding).where(column == (merchant_id or unit_id)))
    if row is None:
        row = Branding(id=new_id(), merchant_id=merchant_id, unit_id=unit_id)
        db.session.add(row)
    return row


def logo_by_hash(sha256: str) -> tuple[bytes, str] | None:
    """A stored logo's bytes and media type by its SHA-256 (hex), or None."""
    if len(sha256) != 64:
        return None
    found = db.session.execute(
        select(Branding.logo, Branding.logo_type)
        .where(Branding.logo_sha256 == sha256, Branding.logo.is_not(None)).limit(1)
    ).first()
    if found is None or found[0] is None or found[1] is None:
        return None
    return bytes(found[0]), found[1]
