"""Redis backend of the ephemeral store: a plain URL (``redis://``, or
``rediss://`` for TLS, verified against ``IDP_REDIS_TLS_CA_FILE`` or the system
CAs), or Redis Sentinel (``IDP_REDIS_SENTINELS``): the sentinels name the master,
and after a failover the next command goes to the new one (a command cut off by the
failover fails closed with :class:`EphemeralUnavailable`, like any outage)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlparse

import redis
from redis.sentinel import Sentinel

from idp.ephemeral import EphemeralUnavailable, RedisOptions

TIMEOUTS: dict[str, Any] = {
    "socket_timeout": 2, "socket_connect_timeout": 2, "health_check_interval": 30,
}


def tls_kwargs(options: RedisOptions) -> dict[str, Any]:
    """redis-py's TLS arguments: the peer's certificate is always verified."""
    kwargs: dict[str, Any] = {"ssl_cert_reqs": "required"}
    if options.tls_ca_file:
        kwargs["ssl_ca_certs"] = options.tls_ca_file
    if options.tls_cert_file:
        kwargs["ssl_certfile"] = options.tls_cert_file
    if options.tls_key_file:
        kwargs["ssl_keyfile"] = options.tls_key_file
    return kwargs


def connect(url: str, options: RedisOptions) -> redis.Redis:
    """The client for ``url`` (and ``options``): plain, TLS or through Sentinel."""
    parsed = urlparse(url)
    tls = parsed.scheme == "rediss"
    if not options.sentinels:
        return redis.Redis.from_url(url, **TIMEOUTS, **(tls_kwargs(options) if tls else {}))
    db = int(parsed.path.strip("/") or 0) if parsed.path.strip("/").isdigit() else 0
    extra: dict[str, Any] = {"ssl": True, **tls_kwargs(options)} if tls else {}
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": 2, "socket_connect_timeout": 2, **extra,
    }
    if options.sentinel_password:
        sentinel_kwargs["password"] = options.sentinel_password
    sentinel = Sentinel(
        list(options.sentinels), sentinel_kwargs=sentinel_kwargs, **TIMEOUTS, **extra,
    )
    return sentinel.master_for(
        options.sentinel_master,
        db=db,
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
    )

_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisStore:
    """Keys are prefixed (``IDP_REDIS_PREFIX``) so one Redis can serve other uses too."""

    def __init__(self, url: str, prefix: str = "ug:", options: RedisOptions | None = None) -> None:
        self.prefix = prefix
        self._redis = connect(url, options or RedisOptions())
        self._incr = self._redis.register_script(_INCR)

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise EphemeralUnavailable(f"redis: {type(exc).__name__}") from exc

    def put(self, key: str, value: Any, ttl: int) -> None:
        self._call(self._redis.set, self._k(key), json.dumps(value), ex=max(1, int(ttl)))

    def add(self, key: str, value: Any, ttl: int) -> bool:
        done = self._call(
            self._redis.set, self._k(key), json.dumps(value), ex=max(1, int(ttl)), nx=True
        )
        return bool(done)

    def get(self, key: str) -> Any | None:
        raw = self._call(self._redis.get, self._k(key))
        return None if raw is None else json.loads(raw)

    def take(self, key: str) -> Any | None:
        raw = self._call(self._redis.getdel, self._k(key))
        return None if raw is None else json.loads(raw)

    def delete(self, key: str) -> None:
        self._call(self._redis.delete, self._k(key))

    def incr(self, key: str, ttl: int) -> int:
        return int(self._call(self._incr, keys=[self._k(key)], args=[max(1, int(ttl))]))

    def ping(self) -> None:
        self._call(self._redis.ping)
