"""A software WebAuthn authenticator for server-side tests: an ES256 key pair per
credential, ``none`` attestation, assertions signed over ``authenticatorData ||
SHA-256(clientDataJSON)`` exactly as a real authenticator does (WebAuthn Level 3
§6.1, §6.3.3). The flags (UV, BE, BS) and the signature counter are the test's to
choose, so the server's checks can be made to fail."""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, encode_cbor

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


@dataclass
class SoftCredential:
    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    user_handle: bytes
    rp_id: str
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    """Holds discoverable credentials; ``uv``/``backup_eligible``/``backed_up`` set
    the flags; ``counting`` makes the counter grow at every assertion."""

    origin: str
    uv: bool = True
    backup_eligible: bool = False
    backed_up: bool = False
    counting: bool = True
    credentials: list[SoftCredential] = field(default_factory=list)

    def _flags(self, attested: bool) -> int:
        value = UP | (UV if self.uv else 0) | (BE if self.backup_eligible else 0)
        value |= BS if self.backed_up else 0
        return value | (AT if attested else 0)

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({
            "type": kind, "challenge": challenge, "origin": origin or self.origin,
            "crossOrigin": False,
        }).encode()

    def create(self, options: dict[str, Any], origin: str | None = None) -> str:
        """The ``PublicKeyCredential`` JSON for ``navigator.credentials.create``."""
        rp_id = options["rp"]["id"]
        cred = SoftCredential(
            secrets.token_bytes(32), ec.generate_private_key(ec.SECP256R1()),
            base64url_to_bytes(options["user"]["id"]), rp_id,
        )
        numbers = cred.key.public_key().public_numbers()
        cose = encode_cbor({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest() + bytes([self._flags(True)])
            + struct.pack(">I", cred.sign_count) + b"\0" * 16
            + struct.pack(">H", len(cred.credential_id)) + cred.credential_id + cose
        )
        attestation = encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        self.credentials.append(cred)
        cid = bytes_to_base64url(cred.credential_id)
        return json.dumps({
            "id": cid, "rawId": cid, "type": "public-key", "clientExtensionResults": {},
            "response": {"clientDataJSON": bytes_to_base64url(client_data),
                         "attestationObject": bytes_to_base64url(attestation),
                         "transports": ["internal"]},
        })

    def get(self, options: dict[str, Any], origin: str | None = None,
            credential: SoftCredential | None = None, rp_id: str | None = None,
            sign_count: int | None = None) -> str:
        """The ``PublicKeyCredential`` JSON for ``navigator.credentials.get``."""
        cred = credential or self.credentials[-1]
        if sign_count is not None:
            cred.sign_count = sign_count
        elif self.counting:
            cred.sign_count += 1
        auth_data = (
            hashlib.sha256((rp_id or options["rpId"]).encode()).digest()
            + bytes([self._flags(False)]) + struct.pack(">I", cred.sign_count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = cred.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        cid = bytes_to_base64url(cred.credential_id)
        return json.dumps({
            "id": cid, "rawId": cid, "type": "public-key", "clientExtensionResults": {},
            "response": {"clientDataJSON": bytes_to_base64url(client_data),
                         "authenticatorData": bytes_to_base64url(auth_data),
                         "signature": bytes_to_base64url(signature),
                         "userHandle": bytes_to_base64url(cred.user_handle)},
        })
