"""Short-lived shared state: interactions, one-time codes, rate-limit counters.

One small interface, two backends that pass the same contract tests
(``tests/test_ephemeral.py``): Redis for production and the SQL database as the
embedded default. Both are shared by every worker and node; nothing lives only in one
process. Values are JSON-serialisable objects. Backend failures raise
:class:`EphemeralUnavailable`, which the app answers with 503 (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class RedisOptions:
    """How to reach Redis beyond a plain URL: Sentinel and TLS files."""

    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str = "mymaster"
    sentinel_password: str | None = None
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> RedisOptions:
        """From ``IDP_REDIS_SENTINELS`` (``host:port,...``; IPv6 as ``[addr]:port``),
        ``IDP_REDIS_SENTINEL_*`` and ``IDP_REDIS_TLS_*``."""
        return cls(
            sentinels=parse_sentinels(settings.redis_sentinels),
            sentinel_master=settings.redis_sentinel_master,
            sentinel_password=settings.redis_sentinel_password,
            tls_ca_file=settings.redis_tls_ca_file,
            tls_cert_file=settings.redis_tls_cert_file,
            tls_key_file=settings.redis_tls_key_file,
        )


def parse_sentinels(text: str) -> tuple[tuple[str, int], ...]:
    """``"a:26379, [::1]:26380"`` -> ``(("a", 26379), ("::1", 26380))``; port 26379
    when none is given."""
    found: list[tuple[str, int]] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":") or "26379"
        elif item.count(":") == 1:
            host, port = item.split(":")
        else:
            host, port = item, "26379"
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"IDP_REDIS_SENTINELS: bad address {item!r}")
        found.append((host, int(port)))
    return tuple(found)


def create_store(
    redis_url: str | None,
    engine_getter: Any = None,
    redis_prefix: str = "ug:",
    redis_options: RedisOptions | None = None,
) -> EphemeralStore:
    """Redis when ``redis_url`` or sentinels are set, otherwise the SQL store on the
    app's database."""
    options = redis_options or RedisOptions()
    if redis_url or options.sentinels:
        from idp.ephemeral.redis_store import RedisStore

        return RedisStore(redis_url or "redis://", redis_prefix, options)
    from idp.store.ephemeral_sql import SQLStore

    return SQLStore(engine_getter)
