"""Client authentication at the token, introspection and revocation endpoints
(RFC 6749 §2.3, OIDC Core §9, RFC 7523 §2.2).

Each function takes authlib's ``(query_client, request)`` and returns the client or
None. A client authenticates only with its registered method, and with one mechanism
per request: a request carrying two (an ``Authorization`` header, ``client_secret``,
``client_assertion``) is ``invalid_request`` before any of them is checked
(:func:`refuse_mixed`, RFC 6749 §2.3 "MUST NOT use more than one authentication
method in each request"). Malformed input (bad base64, bad UTF-8, garbage
assertions) is an authentication failure, never a server error.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeGuard, cast
from urllib.parse import unquote_plus

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError, OAuth2Request
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization

from idp.oidc import client_jwks
from idp.oidc.models import OAuthClient
from idp.release import clients
from idp.services import ephemeral, hasher, settings
from idp.web import json_limits

log = logging.getLogger(__name__)

QueryClient = Callable[[str], OAuthClient | None]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
MAX_ASSERTION_BYTES = 8 * 1024
MAX_ASSERTION_LIFETIME = 300  # five minutes (FAPI-grade clients sign a fresh one per request)


def basic_credentials(headers: Any) -> tuple[str | None, str | None]:
    """``(client_id, secret)`` from an HTTP Basic header (RFC 6749 §2.3.1: both
    form-urlencoded), or ``(None, None)`` when absent or malformed."""
    auth = headers.get("Authorization") or ""
    if auth[:6].lower() != "basic ":
        return None, None
    try:
        decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None, None
    if ":" not in decoded:
        return None, None
    client_id, secret = decoded.split(":", 1)
    return unquote_plus(client_id), unquote_plus(secret)


def _has_header_auth(request: OAuth2Request) -> bool:
    return bool(request.headers.get("Authorization"))


def methods_used(headers: Any, form: Any) -> list[str]:
    """The client authentication mechanisms a request carries: ``header`` (any
    ``Authorization`` header), ``client_secret`` and ``client_assertion`` (non-empty
    form fields)."""
    used = ["header"] if headers.get("Authorization") else []
    return used + [name for name in ("client_secret", "client_assertion") if form.get(name)]


def refuse_mixed(request: OAuth2Request) -> None:
    """Raise ``invalid_request`` when the request carries more than one client
    authentication mechanism (RFC 6749 §2.3), whichever of them would succeed."""
    if len(methods_used(request.headers, request.form)) > 1:
        raise InvalidRequestError(
            "Use one client authentication method per request (RFC 6749 section 2.3)."
        )


def client_secret_basic(query_client: QueryClient, request: OAuth2Request) -> OAuthClient | None:
    """``client_secret_basic``: HTTP Basic with the client id and secret."""
    client_id, secret = basic_credentials(request.headers)
    if not client_id or not secret or request.form.get("client_secret"):
        return None
    if request.form.get("client_id", client_id) != client_id:
        return None  # the body names another client than the header
    client = query_client(client_id)
    if client is not None and client.check_client_secret(secret):
        return client
    return None


def client_secret_post(query_client: QueryClient, request: OAuth2Request) -> OAuthClient | None:
    """``client_secret_post``: ``client_id`` and ``client_secret`` in the form body."""
    client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
    if not client_id or not secret or _has_header_auth(request):
        return None
    client = query_client(client_id)
    if client is not None and client.check_client_secret(secret):
        return client
    return None


def none(query_client: QueryClient, request: OAuth2Request) -> OAuthClient | None:
    """``none``: a public client names itself with ``client_id`` and presents nothing
    else (PKCE protects its codes)."""
    form = request.form
    client_id = form.get("client_id")
    if (
        not client_id
        or form.get("client_secret")
        or form.get("client_assertion")
        or _has_header_auth(request)
    ):
        return None
    return query_client(client_id)


class PrivateKeyJWT(JWTBearerClientAssertion):
    """``private_key_jwt`` (RFC 7523 §2.2, §3): a JWT signed with a key from the
    client's registered JWK Set; ``iss`` = ``sub`` = client id; one audience, the
    issuer or the token endpoint, at every endpoint that authenticates clients
    (:func:`audiences`); ``exp`` (required), ``iat`` and ``nbf`` integers (RFC 7519
    NumericDate as a JSON integer: no fraction, no bool, no text), ``exp`` at most
    five minutes ahead; ``jti`` single use for as long as the assertion could be accepted."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self) -> None:
        super().__init__(validate_jti=True, leeway=60)

    def __call__(self, query_client: QueryClient, request: OAuth2Request) -> OAuthClient | None:
        form = request.form
        assertion = form.get("client_assertion")
        if not assertion or form.get("client_assertion_type") != ASSERTION_TYPE:
            return None
        if len(assertion) > MAX_ASSERTION_BYTES or _has_header_auth(request):
            raise InvalidClientError(description="Invalid client assertion.")
        if not json_limits.compact_jws_within_depth(assertion):
            # authlib parses the claims before the signature: bound the nesting first
            raise InvalidClientError(description="Invalid client assertion.")
        try:
            return super().__call__(query_client, request)
        except InvalidClientError:
            raise
        except (JoseError, ValueError, TypeError, KeyError, IndexError) as exc:
            log.info("client assertion refused: %s", type(exc).__name__)
            raise InvalidClientError(description="Invalid client assertion.") from exc

    def get_audiences(self) -> list[str]:
        return audiences()

    def resolve_client_public_key(self, client: OAuthClient) -> KeySet:
        if client.info.jwks_uri:
            keys = client_jwks.key_set(client.info)
            if keys is None:
                raise InvalidClientError(description="The client's keys cannot be fetched.")
            return keys
        if not client.info.jwks:
            raise InvalidClientError(description="The client has no registered keys.")
        return KeySet.import_key_set(cast(KeySetSerialization, client.info.jwks))

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        resolve_key = _rotated(assertion, resolve_key)
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGS)
        except JoseError as exc:
            raise InvalidClientError(description="Invalid client assertion.") from exc
        check_strict_claims(token.claims)
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims: dict[str, Any], jti: Any) -> bool:
        """Single use: the jti is remembered (hashed) until the assertion expires."""
        if not isinstance(jti, str) or not jti:
            return False
        ttl = int(claims["exp"] - time.time()) + self.leeway + 1  # until exp + leeway
        key = "client-jti:" + hasher().hash(f"{claims['sub']}\x00{jti}", "client-assertion")
        return ephemeral().add(key, 1, max(1, min(ttl, MAX_ASSERTION_LIFETIME + self.leeway)))


def _rotated(assertion: str, keys: Any) -> Any:
    """``keys``, or, when the assertion names a ``kid`` they lack and its client
    publishes its keys at a ``jwks_uri``, the keys fetched again (rate-limited:
    :func:`idp.oidc.client_jwks.key_set`)."""
    if not isinstance(keys, KeySet):
        return keys
    try:
        compact = jws.extract_compact(assertion.encode())
        kid = compact.protected.get("kid")
        sub = json.loads(compact.payload).get("sub")
    except (JoseError, ValueError, TypeError, AttributeError):
        return keys
    if not isinstance(kid, str) or not isinstance(sub, str) or client_jwks.has_kid(keys, kid):
        return keys
    info = clients.lookup(sub)
    if info is None or not info.jwks_uri:
        return keys
    return client_jwks.key_set(info, unknown_kid=kid) or keys


def audiences() -> list[str]:
    """The audiences a client assertion may name, at ``/token``, ``/introspect`` and
    ``/revoke`` alike: the issuer (RFC 7523 §3) or the token endpoint (OIDC Core §9).
    Never the introspection or revocation URL: one rule for every endpoint, and an
    assertion made for another endpoint or server is not ours to accept."""
    issuer = settings().issuer
    return [issuer, f"{issuer}/token"]


def _is_integer(value: Any) -> TypeGuard[int]:
    return type(value) is int  # bool is a subclass of int; floats and text are refused


def check_strict_claims(claims: dict[str, Any]) -> None:
    """Raise ``invalid_client`` unless ``exp`` is an integer at most
    :data:`MAX_ASSERTION_LIFETIME` seconds ahead, ``iat`` and ``nbf`` (when present)
    are integers, and ``aud`` is one accepted audience: a string, or an array holding
    exactly one (RFC 7519 §4.1.3 allows arrays; a second audience is refused)."""
    exp = claims.get("exp")
    if not _is_integer(exp):
        raise InvalidClientError(description="The assertion's exp must be an integer.")
    if exp > time.time() + MAX_ASSERTION_LIFETIME:
        raise InvalidClientError(description="Client assertion lives too long.")
    for name in ("iat", "nbf"):
        if name in claims and not _is_integer(claims[name]):
            raise InvalidClientError(description=f"The assertion's {name} must be an integer.")
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    if not isinstance(aud, str) or aud not in audiences():
        raise InvalidClientError(
            description="The assertion's aud must be the issuer or the token endpoint."
        )
