"""Signing keys: generation, encryption at rest, JWKS, rotation.

Keys are imported into joserfc key objects once per key-set change, never per request
(re-importing a PEM per token costs most of the token endpoint's throughput). Every
worker notices a rotation done by any other process within ``refresh_seconds``: it
compares a tiny (kid, state) fingerprint from the database at most that often.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from idp.crypto import Sealer
from idp.store import keys_repo
from idp.store.models import SigningKey

SUPPORTED_ALGS = ("ES256", "RS256")
DEFAULT_ALG = "ES256"


class NoSigningKey(RuntimeError):
    """No active key for the requested algorithm: run `idp init` or `idp keys rotate`."""


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    alg: str
    state: str
    key: ECKey | RSAKey
    public_jwk: dict[str, Any]
    certificate_pem: str | None


def generate(alg: str, sealer: Sealer) -> SigningKey:
    """A new key row (not yet saved) with its private part sealed by the master key."""
    if alg == "ES256":
        key: ECKey | RSAKey = ECKey.generate_key("P-256", private=True, auto_kid=True)
    elif alg == "RS256":
        key = RSAKey.generate_key(2048, private=True, auto_kid=True)
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    kid = key.kid or key.thumbprint()
    public = dict(key.as_dict(private=False))
    public.update({"kid": kid, "alg": alg, "use": "sig"})
    pem = key.as_pem(private=True)
    return SigningKey(
        kid=kid,
        alg=alg,
        private_key_encrypted=sealer.seal(pem, context=f"signing-key:{kid}"),
        public_jwk=public,
    )


class KeyRing:
    """The process-wide view of the signing keys, refreshed from the database."""

    def __init__(self, sealer: Sealer, refresh_seconds: float = 2.0) -> None:
        self._sealer = sealer
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._fingerprint: tuple[tuple[str, str], ...] | None = None
        self._checked_at = 0.0
        self._keys: dict[str, LoadedKey] = {}

    # -- loading ---------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Reload when the key set changed. Needs an app context (database access)."""
        now = time.monotonic()
        if not force and now - self._checked_at < self._refresh_seconds:
            return
        fp = keys_repo.fingerprint()
        self._checked_at = now
        if fp == self._fingerprint and not force:
            return
        with self._lock:
            loaded: dict[str, LoadedKey] = {}
            for row in keys_repo.all_keys():
                previous = self._keys.get(row.kid)
                if previous is not None:
                    key = previous.key
                else:
                    pem = self._sealer.open(row.private_key_encrypted, f"signing-key:{row.kid}")
                    cls = ECKey if row.alg == "ES256" else RSAKey
                    key = cls.import_key(pem, parameters={"kid": row.kid, "alg": row.alg})
                loaded[row.kid] = LoadedKey(
                    row.kid, row.alg, row.state, key, dict(row.public_jwk), row.certificate_pem
                )
            self._keys = loaded
            self._fingerprint = fp

    # -- use -------------------------------------------------------------------
    def active(self, alg: str = DEFAULT_ALG) -> LoadedKey:
        self.refresh()
        for k in self._keys.values():
            if k.alg == alg and k.state == "active":
                return k
        raise NoSigningKey(f"no active {alg} signing key")

    def get(self, kid: str) -> LoadedKey | None:
        self.refresh()
        return self._keys.get(kid)

    def jwks(self) -> dict[str, Any]:
        """Public keys of every active and published key (RFC 7517 JWK Set)."""
        self.refresh()
        return {"keys": [k.public_jwk for k in self._keys.values()]}

    def sign_jwt(
        self, claims: dict[str, Any], alg: str = DEFAULT_ALG, typ: str = "JWT"
    ) -> str:
        """Sign ``claims`` with the active key of ``alg``; the header names its ``kid``."""
        k = self.active(alg)
        return jwt.encode({"alg": alg, "kid": k.kid, "typ": typ}, claims, k.key, algorithms=[alg])
