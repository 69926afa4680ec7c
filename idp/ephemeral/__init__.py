"""Short-lived shared state: interactions, one-time codes, rate-limit counters.

One small interface, two backends that pass the same contract tests
(``tests/test_ephemeral.py``): Redis for production and the SQL database as the
embedded default. Both are shared by every worker and node; nothing lives only in one
process. Values are JSON-serialisable objects. Backend failures raise
:class:`EphemeralUnavailable`, which the app answers with 503 (fail closed).
"""

from __future__ import annotations

from typing import Any, Protocol


class EphemeralUnavailable(RuntimeError):
    """The backing service cannot be reached; callers must fail closed."""


class EphemeralStore(Protocol):
    def put(self, key: str, value: Any, ttl: int) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds, replacing any old value."""

    def add(self, key: str, value: Any, ttl: int) -> bool:
        """Store only if ``key`` is absent (or expired); True when stored."""

    def get(self, key: str) -> Any | None:
        """The live value of ``key``, or None."""

    def take(self, key: str) -> Any | None:
        """Atomically get and delete: of concurrent callers at most one gets the value."""

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""

    def incr(self, key: str, ttl: int) -> int:
        """Atomically add one and return the new count; the window of ``ttl`` seconds
        starts with the first increment and is not extended by later ones."""

    def ping(self) -> None:
        """Raise :class:`EphemeralUnavailable` unless the backend answers."""


def create_store(
    redis_url: str | None, engine_getter: Any = None, redis_prefix: str = "ug:"
) -> EphemeralStore:
    """Redis when ``redis_url`` is set, otherwise the SQL store on the app's database."""
    if redis_url:
        from idp.ephemeral.redis_store import RedisStore

        return RedisStore(redis_url, redis_prefix)
    from idp.store.ephemeral_sql import SQLStore

    return SQLStore(engine_getter)
