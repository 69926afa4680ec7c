"""Standard Webhooks signatures: ``v1,`` then the base64 HMAC-SHA256 of
``<webhook-id>.<webhook-timestamp>.<body>`` keyed with the base64-decoded secret
after ``whsec_``. During a rotation's overlap every live secret signs, and the
``webhook-signature`` header carries the signatures separated by spaces."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

PREFIX = "whsec_"


def new_secret() -> str:
    """``whsec_`` and the base64 of 32 random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(
    live_secrets: Iterable[str], msg_id: str, timestamp: int, body: str
) -> dict[str, str]:
    """The three Standard Webhooks headers (and the content type)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in live_secrets),
        "content-type": "application/json",
    }
