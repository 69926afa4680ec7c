"""Repository of RP logout (:mod:`idp.interaction.rp_logout`): clients' logout
channels, the OIDC clients taking part in each browser session, and the back-channel
logout queue. Everything is staged for the caller to commit, except the delivery
claims (the lease idiom of :mod:`idp.store.leases`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, select, update

from idp.store import leases
from idp.store.db import db
from idp.store.leases import DEAD, PENDING, SENT
from idp.store.models import BackchannelLogout, ClientLogoutChannel, OidcSessionParticipant

_QUEUE = leases.LeasedQueue(cast(Table, BackchannelLogout.__table__))


def channel(client_id: str) -> ClientLogoutChannel | None:
    return db.session.get(ClientLogoutChannel, client_id)


def channels(client_ids: Iterable[str]) -> dict[str, ClientLogoutChannel]:
    ids = list(dict.fromkeys(client_ids))
    if not ids:
        return {}
    rows = db.session.scalars(
        select(ClientLogoutChannel).where(ClientLogoutChannel.client_id.in_(ids))
    )
    return {r.client_id: r for r in rows}


def clients_with_channels() -> frozenset[str]:
    """The ids of every client that registered a logout channel (one query)."""
    return frozenset(db.session.scalars(select(ClientLogoutChannel.client_id)))


def put_channel(row: ClientLogoutChannel) -> None:
    db.session.merge(row)


def has_participant(session_id_hash: str, client_id: str) -> bool:
    query = select(OidcSessionParticipant.id).where(
        OidcSessionParticipant.session_id_hash == session_id_hash,
        OidcSessionParticipant.client_id == client_id,
    )
    return db.session.execute(query).first() is not None


def add_participant(row: OidcSessionParticipant) -> None:
    """Stage a participant; the session it names (perhaps staged in this same
    transaction) is flushed first, as the foreign key wants."""
    db.session.flush()
    db.session.add(row)


def participants(session_id_hashes: Iterable[str]) -> list[OidcSessionParticipant]:
    hashes = list(dict.fromkeys(session_id_hashes))
    if not hashes:
        return []
    return list(db.session.scalars(
        select(OidcSessionParticipant)
        .where(OidcSessionParticipant.session_id_hash.in_(hashes))
        .order_by(OidcSessionParticipant.created_at, OidcSessionParticipant.id)
    ))


def forget_participants(session_id_hashes: Iterable[str]) -> None:
    hashes = list(dict.fromkeys(session_id_hashes))
    if hashes:
        db.session.execute(delete(OidcSessionParticipant).where(
            OidcSessionParticipant.session_id_hash.in_(hashes)
        ))


def add_logout(row: BackchannelLogout) -> None:
    db.session.add(row)


def get_logout(logout_id: str) -> BackchannelLogout | None:
    return db.session.get(BackchannelLogout, logout_id)


def claim_due(now: datetime, limit: int, lease: timedelta) -> list[BackchannelLogout]:
    return [BackchannelLogout(**r._mapping) for r in _QUEUE.claim_due(now, limit, lease)]


def mark_sent(logout_id: str, at: datetime) -> None:
    db.session.execute(
        update(BackchannelLogout).where(BackchannelLogout.id == logout_id).values(
            status=SENT, sent_at=at, last_error=None, attempts=BackchannelLogout.attempts + 1
        )
    )


def mark_failed(logout_id: str, error: str, next_attempt_at: datetime, dead: bool) -> None:
    db.session.execute(
        update(BackchannelLogout).where(BackchannelLogout.id == logout_id).values(
            status=DEAD if dead else PENDING, attempts=BackchannelLogout.attempts + 1,
            next_attempt_at=next_attempt_at, last_error=error[:2000],
        )
    )


def prune(before: datetime, limit: int) -> int:
    """Delete up to ``limit`` finished logouts (sent or dead) created before ``before``."""
    ids = list(db.session.scalars(
        select(BackchannelLogout.id)
        .where(BackchannelLogout.status.in_((SENT, DEAD)), BackchannelLogout.created_at < before)
        .limit(limit)
    ))
    if ids:
        db.session.execute(delete(BackchannelLogout).where(BackchannelLogout.id.in_(ids)))
    return len(ids)
