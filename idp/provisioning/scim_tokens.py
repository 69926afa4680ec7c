"""SCIM bearer tokens: one or more per business unit, shown once, stored hashed.

A token is ``ugscim_`` + 256 random bits. Only its keyed hash (``hasher()``,
purpose ``scim-token``) is stored, so a database dump yields no usable token.
The last-use time is recorded at most once a minute.

Every SCIM request authenticates, so a valid token's caller is kept in a
:class:`idp.process_cache.ProcessCache` (at most 2 s, like the client and domain
caches; never an unknown or revoked token). A commit in this process that changes a
token or a unit (revocation, deletion) empties it at once: revocation takes effect
on the next request here and within 2 s on every other process and node.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from idp import audit
from idp.crypto.primitives import random_token
from idp.process_cache import ProcessCache
from idp.services import hasher
from idp.store import scim_repo
from idp.store.models import ScimToken, Unit, utcnow
from idp.store.unit_of_work import atomic

PREFIX = "ugscim_"
PURPOSE = "scim-token"
MAX_TOKEN_LENGTH = 200
WATCHED = (ScimToken, Unit)


class UnknownUnit(LookupError):
    """No unit has this id or slug."""


def unit(ref: str) -> Unit:
    """The unit with id or slug ``ref``; :class:`UnknownUnit` otherwise."""
    found = scim_repo.unit_by_ref(ref)
    if found is None:
        raise UnknownUnit(ref)
    return found


def create(unit_ref: str, name: str, actor: str) -> tuple[ScimToken, str]:
    """A new token for the unit; the plaintext is returned once and never stored."""
    target = unit(unit_ref)
    token = PREFIX + random_token(32)
    row = ScimToken(
        unit_id=target.id,
        name=(name.strip() or "SCIM")[:200],
        token_hash=hasher().hash(token, PURPOSE),
    )
    with atomic():
        audit.record(actor, "scim_token.created", target.id, {"name": row.name},
                     unit_id=target.id)
        scim_repo.add_token(row)
    return row, token


def listing(unit_ref: str) -> list[ScimToken]:
    """The unit's tokens, oldest first, revoked ones included."""
    return list(scim_repo.tokens_of(unit(unit_ref).id))


def revoke(token_id: str, actor: str) -> ScimToken | None:
    """Revoke a token at once; None when no token has this id."""
    with atomic():
        row = scim_repo.token_by_id(token_id)
        if row is None:
            return None
        if row.revoked_at is None:
            audit.record(
                actor, "scim_token.revoked", row.unit_id, {"name": row.name, "id": row.id},
                unit_id=row.unit_id,
            )
        return scim_repo.revoke_token(token_id, utcnow())


@dataclass(frozen=True)
class Caller:
    """Who a valid token speaks for."""

    token_id: str
    unit_id: str
    name: str


# token hash -> (caller, last recorded use)
CACHE: ProcessCache[tuple[Caller, datetime | None]] = ProcessCache("scim_tokens", WATCHED)


def _load(key: str) -> tuple[Caller, datetime | None] | None:
    row = scim_repo.token_by_hash(key)
    if row is None or row.revoked_at is not None:
        return None  # never cached
    return Caller(row.id, row.unit_id, row.name), row.last_used_at


def authenticate(token: str) -> Caller | None:
    """The unit and name of the live token matching ``token`` (its use recorded);
    None for anything else."""
    if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return None
    key = hasher().hash(token, PURPOSE)
    found = CACHE.get_or_load(key, lambda: _load(key))
    if found is None:
        return None
    caller, last_used = found
    now = utcnow()
    if last_used is None or now - last_used >= scim_repo.TOKEN_TOUCH_EVERY:
        with atomic():
            scim_repo.touch_token(caller.token_id, now)
        CACHE.replace(key, found, (caller, now))
    return caller
