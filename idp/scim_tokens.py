"""SCIM bearer tokens: one or more per business unit, shown once, stored hashed.

A token is ``ugscim_`` + 256 random bits. Only its keyed hash (``hasher()``,
purpose ``scim-token``) is stored, so a database dump yields no usable token.
Revocation takes effect on the next request; the last-use time is recorded at most
once a minute.
"""

from __future__ import annotations

from dataclasses import dataclass

from idp import audit
from idp.crypto import random_token
from idp.services import hasher
from idp.store import scim_repo
from idp.store.models import ScimToken, Unit, utcnow

PREFIX = "ugscim_"
PURPOSE = "scim-token"
MAX_TOKEN_LENGTH = 200


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
    audit.record(actor, "scim_token.created", target.id, {"name": row.name})
    scim_repo.add_token(row)
    return row, token


def listing(unit_ref: str) -> list[ScimToken]:
    """The unit's tokens, oldest first, revoked ones included."""
    return list(scim_repo.tokens_of(unit(unit_ref).id))


def revoke(token_id: str, actor: str) -> ScimToken | None:
    """Revoke a token at once; None when no token has this id."""
    row = scim_repo.token_by_id(token_id)
    if row is None:
        return None
    if row.revoked_at is None:
        audit.record(actor, "scim_token.revoked", row.unit_id, {"name": row.name, "id": row.id})
    return scim_repo.revoke_token(token_id, utcnow())


@dataclass(frozen=True)
class Caller:
    """Who a valid token speaks for."""

    token_id: str
    unit_id: str
    name: str


def authenticate(token: str) -> Caller | None:
    """The unit and name of the live token matching ``token`` (its use recorded);
    None for anything else."""
    if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = scim_repo.token_by_hash(hasher().hash(token, PURPOSE))
    if row is None or row.revoked_at is not None:
        return None
    caller = Caller(row.id, row.unit_id, row.name)
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= scim_repo.TOKEN_TOUCH_EVERY:
        scim_repo.touch_token(caller.token_id, now)
    return caller
