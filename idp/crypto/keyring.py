"""Signing keys: generation, encryption at rest, JWKS, rotation.

Keys are imported into joserfc key objects once per key-set change, never per request
(re-importing a PEM per token costs most of the token endpoint's throughput). Every
worker notices a rotation done by any other process within ``refresh_seconds``: it
compares a tiny (kid, state) fingerprint from the database at most that often.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey, RSAKey

from idp.crypto.primitives import Sealer
from idp.crypto.sealed_fields import signing_key_context
from idp.store import keys_repo
from idp.store.models import SigningKey
from idp.store.unit_of_work import atomic

SUPPORTED_ALGS = ("ES256", "RS256")
DEFAULT_ALG = "ES256"


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64_json(value: dict[str, Any]) -> bytes:
    return _b64(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _sign(k: LoadedKey, data: bytes) -> bytes:
    """The JWS signature of ``data`` with ``k`` (ES256 with an EC private key or RS256
    with an RSA one; anything else raises :class:`NoSigningKey`)."""
    private = k.key.private_key
    if k.alg == "ES256" and isinstance(private, ec.EllipticCurvePrivateKey):
        der = private.sign(data, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if k.alg == "RS256" and isinstance(private, RSAPrivateKey):
        return private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise NoSigningKey(f"unsupported signing algorithm {k.alg}")


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


@dataclass(frozen=True)
class X509Signer:
    """An active RSA key in the shape XML signatures (SAML) need."""

    kid: str
    private_key: RSAPrivateKey
    private_key_pem: str
    certificate_pem: str


CERTIFICATE_YEARS = 10


def self_signed_certificate(key: RSAKey, common_name: str) -> str:
    """A self-signed X.509 certificate (PEM) for ``key``, valid for
    ``CERTIFICATE_YEARS``. SAML peers trust the certificate itself (metadata), not a
    CA, so validity is informational; rotation is the way to replace a key."""
    private = key.private_key
    if not isinstance(private, RSAPrivateKey):
        raise ValueError("a certificate needs an RSA private key")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "unitgate")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365 * CERTIFICATE_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


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
        private_key_encrypted=sealer.seal(pem, context=signing_key_context(kid)),
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
        self._pems: dict[str, str] = {}

    # -- loading ---------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Reload when the key set changed. Needs an app context (database access).

        Thread-safe: while one thread loads, the others wait for it instead of using
        an empty or half-built key set (a fresh worker's first concurrent requests).
        """
        if not force and self._fresh():
            return
        with self._lock:
            if not force and self._fresh():
                return  # another thread refreshed while this one waited
            now = time.monotonic()
            fp = keys_repo.fingerprint()
            if fp != self._fingerprint or force:
                loaded: dict[str, LoadedKey] = {}
                for row in keys_repo.all_keys():
                    previous = self._keys.get(row.kid)
                    if previous is not None:
                        key = previous.key
                    else:
                        pem = self._sealer.open(
                            row.private_key_encrypted, signing_key_context(row.kid)
                        )
                        cls = ECKey if row.alg == "ES256" else RSAKey
                        key = cls.import_key(pem, parameters={"kid": row.kid, "alg": row.alg})
                    loaded[row.kid] = LoadedKey(
                        row.kid, row.alg, row.state, key, dict(row.public_jwk), row.certificate_pem
                    )
                self._keys = loaded
                self._fingerprint = fp
            self._checked_at = now

    def _fresh(self) -> bool:
        """True when the key set was loaded and checked within ``refresh_seconds``."""
        return (
            self._fingerprint is not None
            and time.monotonic() - self._checked_at < self._refresh_seconds
        )

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
        """Sign ``claims`` with the active key of ``alg``; the header names its ``kid``.

        The JWS Compact Serialization (RFC 7515 §7.1) of ES256 (raw ``r || s``, RFC
        7518 §3.4) or RS256 (RSASSA-PKCS1-v1_5 with SHA-256, §3.3), signed with the
        ``cryptography`` key directly: every token response signs one or two
        tokens, and the generic JOSE layer cost as much as the signature itself.
        Tokens are verified (here and in the tests) with joserfc."""
        k = self.active(alg)
        header = {"alg": alg, "kid": k.kid, "typ": typ}
        signing_input = _b64_json(header) + b"." + _b64_json(claims)
        return (signing_input + b"." + _b64(_sign(k, signing_input))).decode("ascii")

    # -- X.509 (SAML) ----------------------------------------------------------
    def certified(self, common_name: str, alg: str = "RS256") -> list[LoadedKey]:
        """Every active and published key of ``alg``, the active one first, each with
        a self-signed certificate: made on first use and stored in the key's row, so
        every worker publishes the same certificate. During a rotation overlap both
        keys are listed (SAML metadata publishes them all)."""
        self.refresh()
        keys = [k for k in self._keys.values() if k.alg == alg]
        for k in keys:
            if not k.certificate_pem:
                self._store_certificate(k, self_signed_certificate(_rsa(k), common_name))
        keys = [self._keys.get(k.kid, k) for k in keys]
        return sorted(keys, key=lambda k: k.state != "active")

    def x509_signer(self, common_name: str, alg: str = "RS256") -> X509Signer:
        """The active ``alg`` key with its certificate and its private key as PEM (the
        PEM is serialised once per key and cached, never re-read from the database)."""
        k = self.active(alg)
        if not k.certificate_pem:
            k = self._store_certificate(k, self_signed_certificate(_rsa(k), common_name))
        pem = self._pems.get(k.kid)
        if pem is None:
            pem = k.key.as_pem(private=True).decode()
            self._pems[k.kid] = pem
        assert k.certificate_pem is not None
        private = k.key.private_key
        assert isinstance(private, RSAPrivateKey)
        return X509Signer(k.kid, private, pem, k.certificate_pem)

    def _store_certificate(self, k: LoadedKey, pem: str) -> LoadedKey:
        with atomic():
            keys_repo.set_certificate(k.kid, pem)
        stored = keys_repo.certificate(k.kid) or pem
        updated = replace(k, certificate_pem=stored)
        with self._lock:
            if k.kid in self._keys:
                self._keys = {**self._keys, k.kid: updated}
        return updated


def _rsa(k: LoadedKey) -> RSAKey:
    if not isinstance(k.key, RSAKey):
        raise ValueError(f"key {k.kid} is not an RSA key; X.509 signing needs RS256")
    return k.key
