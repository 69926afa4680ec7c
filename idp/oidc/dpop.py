"""DPoP proofs (RFC 9449): sender-constrained access tokens.

A proof is a JWT in the ``DPoP`` header, checked by :func:`verify_proof` as §4.3
says, one check per line:

* at most :data:`MAX_PROOF_BYTES`, one compact JWS, no ``crit`` header;
* ``typ`` is ``dpop+jwt``; ``alg`` is one of :data:`DPOP_ALGS` (never ``none``, never
  HMAC); ``jwk`` is a public asymmetric key (no private or symmetric members), and
  the signature verifies with it;
* ``htm`` equals the request's method and ``htu`` the endpoint's public URL (built
  from the issuer, never from the Host header; query and fragment ignored, §4.3);
* ``iat`` is an integer within :data:`MAX_AGE` seconds in the past and
  :data:`CLOCK_SKEW` in the future;
* with ``IDP_DPOP_NONCE``, ``nonce`` is a current server nonce (§8, §9): else
  :class:`UseNonce`, answered ``use_dpop_nonce`` with a ``DPoP-Nonce`` header
  (:func:`current_nonce`). A nonce is the time window's number and an HMAC of it with
  the keyed-hash key, stateless, so every node issues and accepts the same ones; one
  is accepted during its window of :data:`NONCE_WINDOW_SECONDS` and the next;
* with an access token (at a resource), ``ath`` is the base64url SHA-256 of it;
* ``jti`` is used once: remembered (keyed hash with the key's thumbprint) in the
  ephemeral store for as long as the proof could be accepted.

The result is the key's JWK SHA-256 thumbprint (RFC 7638), the ``jkt`` that binds a
token (``cnf.jkt``, §6.1). Every failure raises :class:`InvalidProof`, never a
server error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, TypeGuard

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import extract_compact, validate_compact

from idp.services import ephemeral, hasher, settings

DPOP_ALGS = ("ES256", "RS256", "PS256", "EdDSA")
MAX_PROOF_BYTES = 8 * 1024
MAX_AGE = 300
CLOCK_SKEW = 60
PROOF_TYP = "dpop+jwt"
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
KEY_TYPES: dict[str, Any] = {"EC": ECKey, "RSA": RSAKey, "OKP": OKPKey}


class InvalidProof(ValueError):
    """The DPoP proof is missing, malformed or does not fit the request."""


class UseNonce(InvalidProof):
    """The proof lacks a current server nonce (``use_dpop_nonce``, RFC 9449 §8)."""


NONCE_WINDOW_SECONDS = 60


def _nonce_of(window: int) -> str:
    return f"{window}.{hasher().hash(str(window), 'dpop-nonce')[:32]}"


def current_nonce(now: float | None = None) -> str:
    """The nonce to hand out now (the ``DPoP-Nonce`` header's value)."""
    return _nonce_of(int((now if now is not None else time.time()) // NONCE_WINDOW_SECONDS))


def nonce_ok(value: Any, now: float | None = None) -> bool:
    """True for a nonce of the current or the previous window (a nonce handed out at
    the end of a window still works for one more)."""
    if not isinstance(value, str) or len(value) > 100:
        return False
    window = int((now if now is not None else time.time()) // NONCE_WINDOW_SECONDS)
    return any(hmac.compare_digest(value, _nonce_of(w)) for w in (window, window - 1))


def error_code(exc: InvalidProof) -> str:
    """The OAuth error for a refused proof: ``use_dpop_nonce`` or ``invalid_dpop_proof``."""
    return "use_dpop_nonce" if isinstance(exc, UseNonce) else "invalid_dpop_proof"


def nonce_headers() -> dict[str, str]:
    """``DPoP-Nonce`` with the current nonce when nonces are required, else nothing."""
    return {"DPoP-Nonce": current_nonce()} if settings().dpop_nonce else {}


def _is_int(value: Any) -> TypeGuard[int]:
    return type(value) is int


def access_token_hash(token: str) -> str:
    """``ath`` (RFC 9449 §4.2): base64url(SHA-256(ASCII(token))), unpadded."""
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def endpoint_url(path: str) -> str:
    """The public URL of ``path`` that a proof's ``htu`` must name."""
    return settings().issuer.rstrip("/") + path


def _same_url(htu: Any, expected: str) -> bool:
    if not isinstance(htu, str):
        return False
    return htu.split("#", 1)[0].split("?", 1)[0] == expected


def verify_proof(
    proof: Any, method: str, url: str, access_token: str | None = None
) -> str:
    """The ``jkt`` of a valid, unused proof for ``method`` at ``url``; raises
    :class:`InvalidProof`. With ``access_token`` the proof must carry its ``ath``."""
    if not isinstance(proof, str) or not proof or len(proof) > MAX_PROOF_BYTES:
        raise InvalidProof("A DPoP proof is required.")
    if proof.count(".") != 2 or "," in proof:
        raise InvalidProof("Send exactly one DPoP proof.")
    try:
        obj = extract_compact(proof.encode("ascii"))
        header = obj.protected
        if str(header.get("typ", "")).lower() != PROOF_TYP or "crit" in header:
            raise InvalidProof("The DPoP proof's typ must be dpop+jwt.")
        alg = header.get("alg")
        if alg not in DPOP_ALGS:
            raise InvalidProof("The DPoP proof's alg is not allowed.")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or any(m in jwk for m in PRIVATE_MEMBERS):
            raise InvalidProof("The DPoP proof must carry a public jwk.")
        key_type = KEY_TYPES.get(str(jwk.get("kty")))
        if key_type is None:
            raise InvalidProof("The DPoP proof's jwk must be an asymmetric key.")
        key = key_type.import_key(jwk)
        if not validate_compact(obj, key, algorithms=[alg]):
            raise InvalidProof("The DPoP proof's signature does not verify.")
        claims = json.loads(obj.payload)
    except InvalidProof:
        raise
    except (JoseError, ValueError, TypeError, KeyError, IndexError, UnicodeError) as exc:
        raise InvalidProof("The DPoP proof is malformed.") from exc
    if not isinstance(claims, dict):
        raise InvalidProof("The DPoP proof is malformed.")
    return _check_claims(claims, key.thumbprint(), method, url, access_token)


def _check_claims(
    claims: dict[str, Any], jkt: str, method: str, url: str, access_token: str | None
) -> str:
    if claims.get("htm") != method:
        raise InvalidProof("The DPoP proof's htm does not match the request.")
    if not _same_url(claims.get("htu"), url):
        raise InvalidProof("The DPoP proof's htu does not match the request.")
    iat, now = claims.get("iat"), time.time()
    if not _is_int(iat) or iat < now - MAX_AGE or iat > now + CLOCK_SKEW:
        raise InvalidProof("The DPoP proof's iat is outside the accepted window.")
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(
            ath, access_token_hash(access_token)
        ):
            raise InvalidProof("The DPoP proof's ath does not match the access token.")
    if settings().dpop_nonce and not nonce_ok(claims.get("nonce")):
        raise UseNonce("Resend the DPoP proof with the nonce in the DPoP-Nonce header.")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise InvalidProof("The DPoP proof needs a jti.")
    key = "dpop-jti:" + hasher().hash(f"{jkt}\x00{jti}", "dpop-proof")
    if not ephemeral().add(key, 1, MAX_AGE + CLOCK_SKEW + 1):
        raise InvalidProof("The DPoP proof was already used.")
    return jkt


def challenge(error: str | None = None, description: str | None = None) -> str:
    """A ``WWW-Authenticate: DPoP`` challenge (RFC 9449 §7.1) naming our algorithms."""
    parts = [f'algs="{" ".join(DPOP_ALGS)}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    return "DPoP " + ", ".join(parts)


def authorization(header: str) -> tuple[str, str] | None:
    """``(scheme, token)`` of an ``Authorization: Bearer|DPoP <token>`` header, the
    scheme in lower case; None for anything else."""
    scheme, _, value = header.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme not in ("bearer", "dpop") or not value:
        return None
    return scheme, value


def check_presentation(
    jkt: str | None, scheme: str, token: str, proofs: list[str], method: str, path: str
) -> None:
    """Raise :class:`InvalidProof` (an ``invalid_dpop_proof``) or :class:`WrongScheme`
    (an ``invalid_token``) unless the token is presented as it was issued (RFC 9449
    §7): a token bound to a key (``jkt``) only with the ``DPoP`` scheme and one proof
    by that key for this request with the token's ``ath``; an unbound token only as
    ``Bearer``."""
    if jkt is None:
        if scheme != "bearer":
            raise WrongScheme("This access token is a Bearer token.")
        return
    if scheme != "dpop":
        raise WrongScheme("This access token is DPoP-bound: present it with a DPoP proof.")
    if len(proofs) != 1:
        raise InvalidProof("Send exactly one DPoP proof.")
    used = verify_proof(proofs[0], method, endpoint_url(path), access_token=token)
    if not hmac.compare_digest(used, jkt):
        raise InvalidProof("The DPoP proof is signed by another key than the token's.")


class WrongScheme(ValueError):
    """A token presented with another scheme than the one it was issued for."""
