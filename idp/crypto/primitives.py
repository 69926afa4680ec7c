"""Master key, encryption at rest and keyed hashes.

* Private signing keys are encrypted with AES-256-GCM under the master key.
* Client secrets, refresh tokens, session ids and one-time codes are stored only as
  HMAC-SHA256 keyed hashes: fast enough for the token path, useless without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class MasterKeyError(RuntimeError):
    """The master key is missing or malformed."""


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_master_key() -> str:
    """A new random 256-bit master key, base64url-encoded."""
    return b64u(os.urandom(32))


def parse_master_key(text: str) -> bytes:
    try:
        raw = b64u_decode(text.strip())
    except ValueError as exc:
        raise MasterKeyError("IDP_MASTER_KEY is not base64url") from exc
    if len(raw) != 32:
        raise MasterKeyError("IDP_MASTER_KEY must encode exactly 32 bytes")
    return raw


def load_master_key(value: str | None, file: str | None) -> bytes:
    """The master key from the environment value, else from ``file``."""
    if value:
        return parse_master_key(value)
    if file and Path(file).is_file():
        return parse_master_key(Path(file).read_text())
    raise MasterKeyError(
        "no master key: set IDP_MASTER_KEY, or run `idp init` to create "
        f"{file or 'the key file'} for development"
    )


def parse_previous_keys(text: str | None) -> list[bytes]:
    """The comma-separated keys of ``IDP_MASTER_KEY_PREVIOUS`` (empty when unset)."""
    return [parse_master_key(part) for part in (text or "").split(",") if part.strip()]


def derive_key(master: bytes, purpose: str) -> bytes:
    """A 256-bit sub-key of the master key for one ``purpose``."""
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=purpose.encode()).derive(master)


class Sealer:
    """AES-256-GCM encryption of small secrets (private keys) under the master key.

    Values are always sealed under the current master key. ``previous`` keys (the
    setting ``IDP_MASTER_KEY_PREVIOUS``) are accepted for opening only: during a
    master-key rotation every node reads values sealed under either key while
    ``idp master-key rotate`` re-seals them (``docs/operations.md``). The sealed
    format carries no key id; a GCM tag that fails under one key is tried under the
    next (a failed tag check costs microseconds)."""

    def __init__(self, master: bytes, previous: Sequence[bytes] = ()) -> None:
        self._aead = AESGCM(derive_key(master, "unitgate/keys-at-rest/v1"))
        self._previous = [AESGCM(derive_key(k, "unitgate/keys-at-rest/v1")) for k in previous]

    def seal(self, plaintext: bytes, context: str) -> str:
        nonce = os.urandom(12)
        return "v1." + b64u(nonce + self._aead.encrypt(nonce, plaintext, context.encode()))

    def open(self, sealed: str, context: str) -> bytes:
        opened = self._try_open(sealed, context)
        if opened is None:
            raise MasterKeyError("cannot decrypt: wrong master key?")
        return opened[0]

    def is_current(self, sealed: str, context: str) -> bool:
        """Whether ``sealed`` opens under the current master key (raises
        :class:`MasterKeyError` when it opens under no known key)."""
        opened = self._try_open(sealed, context)
        if opened is None:
            raise MasterKeyError("cannot decrypt: wrong master key?")
        return opened[1]

    def reseal(self, sealed: str, context: str) -> str | None:
        """``sealed`` sealed anew under the current key, or None when it already is."""
        opened = self._try_open(sealed, context)
        if opened is None:
            raise MasterKeyError("cannot decrypt: wrong master key?")
        plaintext, current = opened
        return None if current else self.seal(plaintext, context)

    def _try_open(self, sealed: str, context: str) -> tuple[bytes, bool] | None:
        if not sealed.startswith("v1."):
            raise MasterKeyError("unknown sealed-secret format")
        raw = b64u_decode(sealed[3:])
        for i, aead in enumerate([self._aead, *self._previous]):
            try:
                return aead.decrypt(raw[:12], raw[12:], context.encode()), i == 0
            except InvalidTag:
                continue
        return None


class Hasher:
    """Keyed hashes for secrets we must recognise but never store."""

    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        """``key`` itself, or a function giving it on first use (the app's reads the
        stored instance secret, ``idp.crypto.master_key``), then kept."""
        self._key = key if isinstance(key, bytes) else None
        self._load = None if isinstance(key, bytes) else key

    def hash(self, value: str, purpose: str) -> str:
        if self._key is None:
            assert self._load is not None
            self._key = self._load()
        msg = purpose.encode() + b"\x00" + value.encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def verify(self, value: str, purpose: str, expected: str | None) -> bool:
        if not expected:
            return False
        return hmac.compare_digest(self.hash(value, purpose), expected)


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random token of ``nbytes`` bytes of entropy."""
    return secrets.token_urlsafe(nbytes)


def random_identifier(nbytes: int = 18) -> str:
    """A URL-safe random identifier of ``nbytes`` bytes of entropy that never starts
    with ``-``: people pass identifiers to the CLI, where a leading ``-`` reads as an
    option (``-...h...`` even as ``--help``). Drawn again in that case (1 in 64)."""
    while True:
        token = secrets.token_urlsafe(nbytes)
        if not token.startswith("-"):
            return token
