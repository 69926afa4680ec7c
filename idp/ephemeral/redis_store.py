"""Redis backend of the ephemeral store."""

from __future__ import annotations

import json
from typing import Any

import redis

from idp.ephemeral import EphemeralUnavailable

_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisStore:
    """Keys are prefixed (``IDP_REDIS_PREFIX``) so one Redis can serve other uses too."""

    def __init__(self, url: str, prefix: str = "ug:") -> None:
        self.prefix = prefix
        self._redis = redis.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
        )
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
