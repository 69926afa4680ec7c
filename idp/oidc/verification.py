"""Verification of the JWTs Unitgate itself issued (access tokens, ID token hints).

The rules of SECURITY.md "JOSE": a fixed algorithm allow-list (ES256, RS256; never
``none``, never HMAC), the key chosen only by ``kid`` among our own keys (``jwk``,
``jku``, ``x5u`` and ``x5c`` headers are ignored), any ``crit`` header refused (we
define no extensions, RFC 7515 §4.1.11), tokens over 8 KiB refused before parsing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, TypeGuard

from joserfc.errors import JoseError
from joserfc.jws import extract_compact, validate_compact

from idp.crypto.keyring import SUPPORTED_ALGS
from idp.services import keyring, settings

MAX_TOKEN_BYTES = 8 * 1024
CLOCK_SKEW = 60
ACCESS_TOKEN_TYP = "at+jwt"


def _verified_claims(token: Any, typ: str | None) -> dict[str, Any] | None:
    """Claims of a compact JWS signed by one of our keys, or None for anything else."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES:
        return None
    if token.count(".") != 2:
        return None
    try:
        obj = extract_compact(token.encode("ascii"))
        header = obj.protected
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in SUPPORTED_ALGS or "crit" in header or not isinstance(kid, str):
            return None
        if typ is not None and str(header.get("typ", "")).lower() != typ.lower():
            return None
        loaded = keyring().get(kid)
        if loaded is None or loaded.alg != alg:
            return None
        if not validate_compact(obj, loaded.key, algorithms=[alg]):
            return None
        claims = json.loads(obj.payload)
    except (JoseError, ValueError, TypeError, KeyError, IndexError, UnicodeError):
        return None
    return claims if isinstance(claims, dict) else None


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class AccessToken:
    """A verified access token (RFC 9068 §2.2)."""

    claims: dict[str, Any]

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])

    @property
    def client_id(self) -> str:
        return str(self.claims["client_id"])

    @property
    def sub(self) -> str:
        return str(self.claims["sub"])

    @property
    def scopes(self) -> list[str]:
        return str(self.claims.get("scope", "")).split()

    @property
    def grant_id(self) -> str | None:
        gid = self.claims.get("gid")
        return gid if isinstance(gid, str) else None

    @property
    def jkt(self) -> str | None:
        """The DPoP key the token is bound to (RFC 9449 §6.1 ``cnf.jkt``), or None."""
        cnf = self.claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        return jkt if isinstance(jkt, str) else None

    @property
    def exp(self) -> int:
        return int(self.claims["exp"])


def verify_access_token(token: Any) -> AccessToken | None:
    """The access token if its signature, ``typ`` (at+jwt), issuer, expiry and
    required claims are valid; None otherwise. Revocation is checked separately
    (:func:`idp.oidc.liveness.access_token_active`)."""
    claims = _verified_claims(token, ACCESS_TOKEN_TYP)
    if claims is None:
        return None
    now = time.time()
    if claims.get("iss") != settings().issuer:
        return None
    exp, iat = claims.get("exp"), claims.get("iat")
    if not _is_int(exp) or not _is_int(iat) or exp <= now or iat > now + CLOCK_SKEW:
        return None
    for name in ("jti", "client_id", "sub"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            return None
    return AccessToken(claims)


def verify_id_token_hint(token: Any) -> dict[str, Any] | None:
    """Claims of an ID token we issued, for ``id_token_hint`` at logout: signature and
    issuer are checked; an expired token is accepted (OpenID Connect RP-Initiated
    Logout 1.0 §2), one issued in the future is not."""
    claims = _verified_claims(token, "JWT")
    if claims is None or claims.get("iss") != settings().issuer:
        return None
    if not isinstance(claims.get("sub"), str) or "aud" not in claims:
        return None
    iat = claims.get("iat")
    if not _is_int(iat) or iat > time.time() + CLOCK_SKEW:
        return None
    return claims


def audiences(claims: dict[str, Any]) -> list[str]:
    """The ``aud`` claim as a list of strings."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []
