"""Authorization codes (RFC 6749 §4.1.2, §10.5) in the ephemeral store.

* A code is 48 random characters; only its keyed hash is a storage key.
* It lives at most ``IDP_CODE_SECONDS`` (never more than 60 s) and is redeemed with an
  atomic ``take``: of two concurrent redemptions at most one gets it.
* Redeeming leaves a "used" marker naming the grant the code produced. A second
  redemption finds the marker and revokes that grant: every refresh and access token
  issued from the first redemption stops working (RFC 6749 §4.1.2, RFC 9700 §4.2.2).
"""

from __future__ import annotations

from typing import Any

from idp.services import ephemeral, hasher, settings
from idp.store import grants_repo
from idp.store.unit_of_work import atomic

PURPOSE = "authorization-code"
MAX_CODE_LENGTH = 256
# How long a redeemed code is remembered for replay detection.
USED_MARKER_SECONDS = 24 * 3600


def _hash(code: str) -> str:
    return hasher().hash(code, PURPOSE)


def lifetime() -> int:
    """Seconds a new code stays redeemable: the setting, capped at 60."""
    return max(1, min(settings().code_seconds, 60))


def store(code: str, data: dict[str, Any]) -> None:
    """Keep the code's binding (client, redirect URI, PKCE, nonce, user, grant id)."""
    ephemeral().put(f"code:{_hash(code)}", data, lifetime())


def redeem(code: Any) -> dict[str, Any] | None:
    """The code's data, exactly once. A replay of a redeemed code revokes the grant
    the first redemption produced and returns None."""
    if not isinstance(code, str) or not code or len(code) > MAX_CODE_LENGTH:
        return None
    digest = _hash(code)
    data = ephemeral().take(f"code:{digest}")
    if data is not None:
        ephemeral().put(f"code-used:{digest}", data["grant_id"], USED_MARKER_SECONDS)
        return data
    grant_id = ephemeral().get(f"code-used:{digest}")
    if isinstance(grant_id, str):
        revoke_replayed(grant_id)
    return None


def revoke_replayed(grant_id: str) -> None:
    """Revoke the grant of a replayed code; also remembered in the ephemeral store in
    case the first redemption has not written its grant yet."""
    ephemeral().put(f"grant-replayed:{grant_id}", 1, USED_MARKER_SECONDS)
    with atomic():
        grants_repo.revoke(grant_id)


def replayed(grant_id: str) -> bool:
    """True when a replay of the grant's code was seen (checked after writing a grant)."""
    return ephemeral().get(f"grant-replayed:{grant_id}") is not None
