"""SCIM bearer tokens: one or more per business unit, shown once, stored hashed.

A token is ``ugscim_`` + 256 random bits. Only its keyed hash (``hasher()``,
purpose ``scim-token``) is stored, so a database dump yields no usable token.
The last-use time is recorded at most once a minute.

Every SCIM request authenticates, so a valid token's caller is kept per process
for at most :data:`CACHE_SECONDS` (2 s, like the client and domain caches; never an
unknown or revoked token). A commit in this process that changes a token or a unit
(revocation, deletion) empties that cache at once (:mod:`idp.store.commit_hooks`):
revocation takes effect on the next request here and within 2 s on every other
process and node.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, has_app_context

from idp import audit
from idp.crypto import random_token
from idp.services import hasher
from idp.store import commit_hooks, scim_repo
from idp.store.models import ScimToken, Unit, utcnow

PREFIX = "ugscim_"
PURPOSE = "scim-token"
MAX_TOKEN_LENGTH = 200
CACHE_SECONDS = 2.0
MAX_ENTRIES = 1024
WATCHED = (ScimToken, Unit)
_CACHE_KEY = "unitgate.scim_token_cache"
_clock = time.monotonic  # the TTL clock (tests move it instead of sleeping)


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


_Entry = tuple[float, Caller, "datetime | None"]  # expiry on _clock, caller, last use


class _TokenCache:
    """Token hash -> :data:`_Entry`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, _Entry] = {}
        self.generation = 0

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.generation += 1

    def store(self, key: str, generation: int, entry: _Entry) -> None:
        with self.lock:
            if generation != self.generation:
                return  # a change committed while we read: our answer may be older
            if len(self.entries) >= MAX_ENTRIES:
                self.entries.clear()
            self.entries[key] = entry

    def touched(self, key: str, before: _Entry | None, at: datetime) -> None:
        """Note the recorded use in the entry read as ``before``, unless it changed or
        was dropped (a revocation) meanwhile."""
        with self.lock:
            if before is not None and self.entries.get(key) is before:
                self.entries[key] = (before[0], before[1], at)


def _cache() -> _TokenCache:
    ext = current_app.extensions
    found = ext.get(_CACHE_KEY)
    return found if found is not None else ext.setdefault(_CACHE_KEY, _TokenCache())


def invalidate() -> None:
    """Forget this app's cached callers in this process (commits of tokens and units
    call it; other processes forget within :data:`CACHE_SECONDS`)."""
    if has_app_context():
        found = current_app.extensions.get(_CACHE_KEY)
        if found is not None:
            found.clear()


commit_hooks.on_commit(WATCHED, invalidate)


def authenticate(token: str) -> Caller | None:
    """The unit and name of the live token matching ``token`` (its use recorded);
    None for anything else."""
    if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return None
    key = hasher().hash(token, PURPOSE)
    cache = _cache()
    hit = cache.entries.get(key)
    if hit is not None and hit[0] > _clock():
        _, caller, last_used = hit
    else:
        generation = cache.generation
        row = scim_repo.token_by_hash(key)
        if row is None or row.revoked_at is not None:
            return None
        caller, last_used = Caller(row.id, row.unit_id, row.name), row.last_used_at
        hit = (_clock() + CACHE_SECONDS, caller, last_used)
        if not commit_hooks.uncommitted(WATCHED):
            cache.store(key, generation, hit)
    now = utcnow()
    if last_used is None or now - last_used >= scim_repo.TOKEN_TOUCH_EVERY:
        scim_repo.touch_token(caller.token_id, now)
        cache.touched(key, hit, now)
    return caller
