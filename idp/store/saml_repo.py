"""Repository of SAML service providers and of the SPs each browser session signed
in to (what single logout must reach). Registration and removal only stage (the
caller commits with :func:`idp.store.unit_of_work.atomic`); recording a session
participant commits itself (see :func:`remember_participant`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import IntegrityError

from idp.store import accesses_repo, unit_of_work
from idp.store.db import db, rowcount
from idp.store.models import (
    Access,
    AuditEvent,
    SamlServiceProvider,
    SamlSessionParticipant,
    SignIn,
    utcnow,
)


class DuplicateServiceProvider(ValueError):
    """An SP with this entity ID is already registered."""


def add(sp: SamlServiceProvider, audit: AuditEvent | None = None) -> SamlServiceProvider:
    """Stage ``sp`` (and ``audit``); raises :class:`DuplicateServiceProvider` if its
    entity ID is taken. Two registrations racing fail at commit on the unique entity
    ID (:class:`idp.store.unit_of_work.Conflict`)."""
    if by_entity_id(sp.entity_id) is not None:
        raise DuplicateServiceProvider(sp.entity_id)
    db.session.add(sp)
    if audit is not None:
        db.session.add(audit)
    return sp


def update(
    sp: SamlServiceProvider, changes: dict[str, object], audit: AuditEvent | None = None
) -> SamlServiceProvider:
    """Stage ``changes`` (column -> value) of ``sp`` (and ``audit``)."""
    for key, value in changes.items():
        setattr(sp, key, value)
    db.session.add(sp)
    if audit is not None:
        db.session.add(audit)
    return sp


def by_entity_id(entity_id: str) -> SamlServiceProvider | None:
    """The SP registered under ``entity_id`` (exact match), or None."""
    if not entity_id or len(entity_id) > 500:
        return None
    return db.session.scalar(
        select(SamlServiceProvider).where(SamlServiceProvider.entity_id == entity_id)
    )


def by_id(sp_id: str) -> SamlServiceProvider | None:
    """The SP with this internal id, or None."""
    if not sp_id or len(sp_id) > 32:
        return None
    return db.session.get(SamlServiceProvider, sp_id)


def find(ref: str) -> SamlServiceProvider | None:
    """An SP by its internal id or its entity ID."""
    return by_id(ref) or by_entity_id(ref)


def listing() -> Sequence[SamlServiceProvider]:
    """Every registered SP, by name."""
    return db.session.scalars(
        select(SamlServiceProvider).order_by(SamlServiceProvider.name, SamlServiceProvider.id)
    ).all()


def remove(sp_id: str, audit: AuditEvent | None = None) -> bool:
    """Stage the deletion of an SP (and its session participations), with ``audit``;
    False if it did not exist (then only the no-op deletes are staged)."""
    db.session.execute(delete(SamlSessionParticipant).where(SamlSessionParticipant.sp_id == sp_id))
    result = db.session.execute(delete(SamlServiceProvider).where(SamlServiceProvider.id == sp_id))
    if not rowcount(result):
        return False
    if audit is not None:
        db.session.add(audit)
    return True


def remember_participant(  # a claim: see its docstring
    session_id_hash: str, sp_id: str, name_id: str, name_id_format: str, new_index: str
) -> str:
    """Record that the session signed in to the SP with ``name_id``; returns the
    SessionIndex of this (session, SP) pair, stable across repeated sign-ins:
    ``new_index`` (a fresh random value from the caller) for the pair's first sign-in,
    the stored one after. An exception to "repositories do not commit", like the
    refresh-token claim: the insert-or-update of the unique (session, SP) pair is
    retried after a parallel insert, which needs its own commit and rollback."""
    for _attempt in range(2):
        try:
            with unit_of_work.claim():
                row = participant(session_id_hash, sp_id)
                if row is None:
                    row = SamlSessionParticipant(
                        session_id_hash=session_id_hash,
                        sp_id=sp_id,
                        name_id=name_id,
                        name_id_format=name_id_format,
                        session_index=new_index,
                    )
                    db.session.add(row)
                else:
                    row.name_id = name_id
                    row.name_id_format = name_id_format
        except IntegrityError:
            continue  # a parallel sign-in inserted the pair first: update that one
        return row.session_index
    raise RuntimeError("could not record the SAML session participant")


def participant(session_id_hash: str, sp_id: str) -> SamlSessionParticipant | None:
    """The SP's participation in the session, or None."""
    return db.session.scalar(
        select(SamlSessionParticipant).where(
            SamlSessionParticipant.session_id_hash == session_id_hash,
            SamlSessionParticipant.sp_id == sp_id,
        )
    )


def participants(session_id_hash: str) -> list[SamlSessionParticipant]:
    """Every SP participation of a session, oldest first."""
    return participants_of([session_id_hash])


def participants_of(session_id_hashes: Sequence[str]) -> list[SamlSessionParticipant]:
    """Every SP participation of these sessions, oldest first."""
    hashes = list(dict.fromkeys(session_id_hashes))
    if not hashes:
        return []
    return list(db.session.scalars(
        select(SamlSessionParticipant)
        .where(SamlSessionParticipant.session_id_hash.in_(hashes))
        .order_by(SamlSessionParticipant.created_at, SamlSessionParticipant.id)
    ))


def by_ids(sp_ids: Sequence[str]) -> dict[str, SamlServiceProvider]:
    """The SPs with these ids, by id."""
    ids = list(dict.fromkeys(sp_ids))
    if not ids:
        return {}
    rows = db.session.scalars(select(SamlServiceProvider).where(SamlServiceProvider.id.in_(ids)))
    return {r.id: r for r in rows}


def last_unit(account_id: str, merchant_id: str) -> str | None:
    """The business unit of the account's latest sign-in at the merchant whose access
    still grants (a unit that suspended or ended it is never chosen again silently)."""
    return db.session.scalar(
        select(SignIn.unit_id)
        .outerjoin(Access, and_(Access.account_id == SignIn.account_id,
                                Access.unit_id == SignIn.unit_id))
        .where(SignIn.account_id == account_id, SignIn.merchant_id == merchant_id,
               or_(SignIn.unit_id.is_(None), accesses_repo.granting_sql(utcnow())))
        .order_by(SignIn.at.desc())
        .limit(1)
    )
