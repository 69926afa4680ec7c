"""Generic OpenID Connect upstream (authorization code flow, confidential client).

What a sign-in through this connector guarantees, check by check:

* The provider's metadata comes from its discovery document whose ``issuer`` equals
  the configured one exactly (OpenID Connect Discovery 1.0 section 4.3).
* Every request carries a one-time ``state`` (kept by the caller), a ``nonce``
  (OIDC Core section 3.1.2.1) and a PKCE S256 challenge (RFC 7636 section 4.2).
* The authorization response's ``iss`` parameter, when the provider announces
  ``authorization_response_iss_parameter_supported`` or sends one anyway, must equal
  the issuer (RFC 9207 section 2.4): a mix-up between two upstreams is refused.
* The ID token (OIDC Core section 3.1.3.7) is a JWS with an algorithm from a fixed
  allow-list (never ``none``, never HMAC), no ``crit`` header, at most
  :data:`MAX_ID_TOKEN_BYTES`, signed by a key from the provider's ``jwks_uri`` only
  (``jwk``/``jku``/``x5u`` headers are ignored); ``iss``, ``aud`` (and ``azp``),
  ``exp``, ``iat``, ``nbf`` and ``nonce`` are checked with a bounded clock skew.
* Key rotation: a ``kid`` missing from the cached JWKS makes one refetch of the
  JWKS (rate-limited), so an upstream's new key works at once.
* UserInfo (OIDC Core section 5.3): when the ID token lacks claims the sign-in needs
  (``email`` and ``email_verified`` for the ``email`` scope, a name for ``profile``),
  the access token is presented at the provider's ``userinfo_endpoint``. A standard
  provider may release scope claims only there (section 5.4). Its ``sub`` must equal
  the ID token's (section 5.3.2), or the sign-in is refused. A signed answer
  (``application/jwt``) is verified like an ID token, with the provider's JWKS and
  the same algorithm allow-list; its ``iss`` and ``aud``, when present, must match.
  An encrypted answer is refused. UserInfo only fills claims the ID token lacks; the
  ``email``/``email_verified`` pair is taken from one source.

Presets (:mod:`connectors.google`, :mod:`connectors.microsoft`,
:mod:`connectors.okta`) override the few hooks at the bottom of
:class:`OidcConnector`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from connectors import ConfigurationError, ConnectorError, StartRequest, UpstreamIdentity
from connectors.http import (
    AddressCheck,
    check_url,
    get_json,
    parse_json_object,
    request,
    request_typed,
)

SAFE_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DEFAULT_ALGORITHMS = ("RS256", "ES256", "PS256")
MAX_ID_TOKEN_BYTES = 16 * 1024
MAX_CODE_LENGTH = 2048
DEFAULT_CLOCK_SKEW = 120
MAX_CLOCK_SKEW = 300
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
NAME_CLAIMS = ("name", "given_name", "family_name")
# Claims about the token itself, never taken from UserInfo.
PROTOCOL_CLAIMS = frozenset({"iss", "sub", "aud", "azp", "exp", "iat", "nbf", "nonce",
                             "auth_time", "at_hash", "c_hash", "s_hash", "acr", "amr",
                             "sid", "jti"})


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier (RFC 7636 section 4.1, 64 characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    return verifier, b64u(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass
class _Cached:
    value: Any
    fetched_at: float


class MetadataCache:
    """Discovery documents and JWKS of upstream providers, shared by one app.

    Documents are kept for ``ttl`` seconds. :meth:`refresh_jwks` refetches a JWKS
    when a token names an unknown ``kid``, at most once per ``min_refresh`` seconds per
    JWKS URL, so forged ``kid`` values cannot turn the IdP into a request amplifier.
    """

    def __init__(self, ttl: float = 3600.0, min_refresh: float = 30.0,
                 address_check: AddressCheck | None = None) -> None:
        self.ttl = ttl
        # every upstream call of the connectors sharing this cache goes through it
        # (connectors.http: public addresses only, unless the operator allows more)
        self.address_check = address_check
        self.min_refresh = min_refresh
        self._lock = threading.Lock()
        self._docs: dict[str, _Cached] = {}
        self._jwks: dict[str, _Cached] = {}
        self._forced: dict[str, float] = {}

    def document(self, url: str) -> dict[str, Any]:
        """The JSON document at ``url``, from cache while fresh."""
        with self._lock:
            hit = self._docs.get(url)
        if hit is not None and time.monotonic() - hit.fetched_at < self.ttl:
            return dict(hit.value)
        doc = get_json(url, self.address_check)
        with self._lock:
            self._docs[url] = _Cached(doc, time.monotonic())
        return dict(doc)

    def jwks(self, url: str) -> list[dict[str, Any]]:
        """The keys of the JWK Set at ``url``, from cache while fresh."""
        with self._lock:
            hit = self._jwks.get(url)
        if hit is not None and time.monotonic() - hit.fetched_at < self.ttl:
            return list(hit.value)
        return self._fetch_jwks(url)

    def refresh_jwks(self, url: str) -> list[dict[str, Any]] | None:
        """Refetch the JWK Set now, unless a forced refetch happened very recently."""
        now = time.monotonic()
        with self._lock:
            last = self._forced.get(url)
            if last is not None and now - last < self.min_refresh:
                return None
            self._forced[url] = now
        return self._fetch_jwks(url)

    def _fetch_jwks(self, url: str) -> list[dict[str, Any]]:
        keys = get_json(url, self.address_check).get("keys")
        if not isinstance(keys, list):
            raise ConnectorError("upstream_error", f"{url} is not a JWK Set")
        clean = [k for k in keys if isinstance(k, dict)]
        with self._lock:
            self._jwks[url] = _Cached(clean, time.monotonic())
        return list(clean)


class OidcConnector:
    """An OpenID provider found by discovery from its issuer URL."""

    kind = "oidc"
    default_scopes: tuple[str, ...] = ("openid", "email", "profile")

    def __init__(self, settings: Mapping[str, Any], secret: str | None, cache: MetadataCache):
        self.settings = dict(settings)
        self.cache = cache
        self.issuer = str(self.settings.get("issuer") or self.default_issuer())
        check_url(self.issuer, "issuer")
        self.client_id = str(self.settings.get("client_id") or "")
        if not self.client_id:
            raise ConfigurationError("client_id is required")
        if not secret:
            raise ConfigurationError("client_secret is required")
        self.client_secret = secret
        scopes = self.settings.get("scopes") or list(self.default_scopes)
        if "openid" not in scopes:
            scopes = ["openid", *scopes]
        self.scopes: list[str] = [str(s) for s in scopes]
        algorithms = self.settings.get("algorithms") or list(DEFAULT_ALGORITHMS)
        unsafe = set(algorithms) - SAFE_ALGORITHMS
        if unsafe:
            raise ConfigurationError(f"algorithms not allowed: {', '.join(sorted(unsafe))}")
        self.algorithms: list[str] = list(algorithms)
        self.clock_skew = min(
            MAX_CLOCK_SKEW, max(0, int(self.settings.get("clock_skew", DEFAULT_CLOCK_SKEW)))
        )
        self.auth_method = self.settings.get("token_endpoint_auth_method", "client_secret_basic")
        if self.auth_method not in ("client_secret_basic", "client_secret_post"):
            raise ConfigurationError("token_endpoint_auth_method must be client_secret_basic "
                                     "or client_secret_post")

    # -- the connector interface ---------------------------------------------------
    def start(self, redirect_uri: str, state: str, login_hint: str | None = None,
              force: bool = False) -> StartRequest:
        """The authorization request (OIDC Core section 3.1.2.1) with nonce and PKCE;
        ``force``: ``prompt=login`` and ``max_age=0``, and the callback then requires
        an ``auth_time`` no older than this request."""
        meta = self.metadata()
        nonce = secrets.token_urlsafe(24)
        verifier, challenge = pkce_pair()
        params: dict[str, str] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if login_hint:
            params["login_hint"] = login_hint
        params.update(self.authorization_params())
        pending: dict[str, Any] = {"nonce": nonce, "code_verifier": verifier}
        if force:
            params.update(prompt="login", max_age="0")
            pending["not_before"] = int(time.time())
        endpoint = meta["authorization_endpoint"]
        sep = "&" if urllib.parse.urlsplit(endpoint).query else "?"
        return StartRequest(
            url=endpoint + sep + urllib.parse.urlencode(params),
            pending=pending,
        )

    def callback(
        self,
        params: Mapping[str, str],
        pending: Mapping[str, Any],
        redirect_uri: str,
        first_use: Any = None,
    ) -> UpstreamIdentity:
        """Validate the authorization response, redeem the code, validate the ID token."""
        meta = self.metadata()
        self.check_response_issuer(params.get("iss"), meta)
        if params.get("error"):
            raise ConnectorError(
                "upstream_denied", f"upstream answered error={params.get('error', '')[:100]}"
            )
        code = params.get("code") or ""
        if not code or len(code) > MAX_CODE_LENGTH:
            raise ConnectorError("missing_code", "authorization response without a code")
        tokens = self.redeem(meta, code, str(pending["code_verifier"]), redirect_uri)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise ConnectorError("missing_id_token", "token response without an id_token")
        claims = self.validate_id_token(id_token, meta, str(pending["nonce"]))
        if pending.get("not_before") is not None:
            self.check_fresh(claims, int(pending["not_before"]))
        if self.lacks_claims(claims):
            claims = self.complete_from_userinfo(claims, tokens, meta)
        self.check_claims(claims)
        return self.identity(claims)

    # -- steps ---------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, checked (Discovery section 4.3)."""
        meta = self.cache.document(self.discovery_url())
        if meta.get("issuer") != self.discovery_issuer():
            raise ConnectorError(
                "invalid_issuer",
                f"discovery issuer {meta.get('issuer')!r} is not {self.discovery_issuer()!r}",
            )
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = meta.get(name)
            if not isinstance(value, str):
                raise ConnectorError("upstream_error", f"discovery document lacks {name}")
            try:
                check_url(value, name)
            except ConfigurationError as exc:
                raise ConnectorError("insecure_url", str(exc)) from exc
        return meta

    def check_response_issuer(self, iss: str | None, meta: Mapping[str, Any]) -> None:
        """RFC 9207 section 2.4: ``iss`` required when announced, and always exact."""
        if iss is None:
            if meta.get("authorization_response_iss_parameter_supported") is True:
                raise ConnectorError("missing_iss", "authorization response lacks iss")
            return
        if not self.response_issuer_ok(iss):
            raise ConnectorError("invalid_iss", f"authorization response iss {iss[:200]!r}")

    def redeem(
        self, meta: Mapping[str, Any], code: str, verifier: str, redirect_uri: str
    ) -> dict[str, Any]:
        """Exchange the code at the token endpoint (OIDC Core section 3.1.3.1)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        headers: dict[str, str] = {}
        if self.auth_method == "client_secret_post":
            form.update(client_id=self.client_id, client_secret=self.client_secret)
        else:  # RFC 6749 section 2.3.1: form-encode both parts before Basic
            pair = f"{urllib.parse.quote(self.client_id, safe='')}:" + urllib.parse.quote(
                self.client_secret, safe=""
            )
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        status, body = request(meta["token_endpoint"], data=form, headers=headers,
                               address_check=self.cache.address_check)
        doc = parse_json_object(body, "token endpoint")
        if status != 200:
            raise ConnectorError(
                "token_error", f"token endpoint answered {status} {str(doc.get('error'))[:100]}"
            )
        return doc

    def validate_id_token(
        self, token: str, meta: Mapping[str, Any], nonce: str
    ) -> dict[str, Any]:
        """The ID token's claims after every check of OIDC Core section 3.1.3.7."""
        if len(token) > MAX_ID_TOKEN_BYTES:
            raise ConnectorError("token_too_large", "id_token exceeds the size cap")
        try:
            header = jws.extract_compact(token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError) as exc:
            raise ConnectorError("malformed_id_token", "id_token is not a compact JWS") from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise ConnectorError("alg_not_allowed", f"id_token alg {str(alg)[:20]!r} refused")
        if "crit" in header:
            raise ConnectorError("unknown_crit", "id_token has a crit header")
        payload = self._verify_signature(token, header, alg, meta["jwks_uri"])
        claims = parse_json_object(payload, "id_token payload")
        self._check_registered_claims(claims, nonce)
        return claims

    def complete_from_userinfo(
        self, claims: Mapping[str, Any], tokens: Mapping[str, Any], meta: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The ID token's claims completed from the UserInfo endpoint (section 5.3).

        Without an access token or a ``userinfo_endpoint`` there is nothing to ask: the
        ID token's claims are returned as they are.
        """
        access_token = tokens.get("access_token")
        endpoint = meta.get("userinfo_endpoint")
        if not isinstance(access_token, str) or not access_token or not isinstance(endpoint, str):
            return dict(claims)
        try:
            check_url(endpoint, "userinfo_endpoint")
        except ConfigurationError as exc:
            raise ConnectorError("insecure_url", str(exc)) from exc
        status, media, body = request_typed(endpoint, headers={
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/json, application/jwt;q=0.9",
        }, address_check=self.cache.address_check)
        if status != 200:
            raise ConnectorError("userinfo_error", f"UserInfo endpoint answered {status}")
        if media == "application/jwt":
            info = self.validate_signed_userinfo(body, claims, meta)
        elif media == "application/json" or media.endswith("+json"):
            info = parse_json_object(body, "UserInfo endpoint")
        else:
            raise ConnectorError("userinfo_error", f"UserInfo answered {media[:60]!r}")
        if info.get("sub") != claims.get("sub"):
            raise ConnectorError(
                "userinfo_subject_mismatch",
                f"UserInfo sub {str(info.get('sub'))[:64]!r} is not the ID token's sub "
                f"{str(claims.get('sub'))[:64]!r} (OIDC Core 5.3.2); sign-in refused",
            )
        return merge_userinfo(claims, info)

    def validate_signed_userinfo(
        self, body: bytes, id_claims: Mapping[str, Any], meta: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The claims of a signed UserInfo answer (section 5.3.2), verified like an ID
        token's signature; ``iss``, ``aud`` and ``exp`` are checked when present."""
        if len(body) > MAX_ID_TOKEN_BYTES:
            raise ConnectorError("token_too_large", "signed UserInfo exceeds the size cap")
        try:
            token = body.decode("ascii").strip()
        except UnicodeError as exc:
            raise ConnectorError("malformed_userinfo", "signed UserInfo is not ASCII") from exc
        if token.count(".") == 4:
            raise ConnectorError("userinfo_encrypted", "encrypted UserInfo is not supported")
        try:
            header = jws.extract_compact(token.encode("ascii")).protected
        except (JoseError, ValueError) as exc:
            raise ConnectorError("malformed_userinfo", "signed UserInfo is not a JWS") from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise ConnectorError("alg_not_allowed", f"UserInfo alg {str(alg)[:20]!r} refused")
        if "crit" in header:
            raise ConnectorError("unknown_crit", "signed UserInfo has a crit header")
        payload = self._verify_signature(token, header, alg, meta["jwks_uri"], "UserInfo")
        info = parse_json_object(payload, "signed UserInfo")
        if "iss" in info and info["iss"] != id_claims.get("iss"):
            raise ConnectorError("invalid_issuer", f"UserInfo iss {str(info['iss'])[:200]!r}")
        if "aud" in info:
            aud = info["aud"]
            audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if self.client_id not in audiences:
                raise ConnectorError("invalid_audience", "UserInfo aud does not name this client")
        exp = info.get("exp")
        if exp is not None and (not _is_number(exp) or exp <= time.time() - self.clock_skew):
            raise ConnectorError("expired", "signed UserInfo expired")
        return info

    def _verify_signature(
        self, token: str, header: Mapping[str, Any], alg: str, jwks_uri: str,
        what: str = "id_token",
    ) -> bytes:
        kid = header.get("kid")
        candidates = self._keys_for(self.cache.jwks(jwks_uri), kid, alg)
        if not candidates and kid is not None:
            fresh = self.cache.refresh_jwks(jwks_uri)
            candidates = self._keys_for(fresh or [], kid, alg)
        if not candidates:
            raise ConnectorError("unknown_key", f"no upstream key for kid {str(kid)[:64]!r}")
        for jwk in candidates:
            try:
                key = JWKRegistry.import_key(jwk)
                return jws.deserialize_compact(token, key, algorithms=[alg]).payload
            except (JoseError, ValueError, TypeError):
                continue
        raise ConnectorError("bad_signature", f"{what} signature does not verify")

    @staticmethod
    def _keys_for(keys: list[dict[str, Any]], kid: Any, alg: str) -> list[dict[str, Any]]:
        kty = KEY_TYPES.get(alg[:2])
        found = []
        for jwk in keys:
            if kid is not None and jwk.get("kid") != kid:
                continue
            if jwk.get("kty") != kty or jwk.get("use", "sig") != "sig":
                continue
            if jwk.get("alg", alg) != alg:
                continue
            found.append(jwk)
        return found

    def _check_registered_claims(self, claims: Mapping[str, Any], nonce: str) -> None:
        now = time.time()
        skew = self.clock_skew
        iss = claims.get("iss")
        if not isinstance(iss, str) or iss != self.expected_issuer(claims):
            raise ConnectorError("invalid_issuer", f"id_token iss {str(iss)[:200]!r}")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self.client_id not in audiences:
            raise ConnectorError("invalid_audience", "id_token aud does not name this client")
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.client_id:
            raise ConnectorError("invalid_audience", "id_token azp is not this client")
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
        if not _is_number(exp) or exp <= now - skew:
            raise ConnectorError("expired", "id_token expired")
        if not _is_number(iat) or iat > now + skew:
            raise ConnectorError("invalid_iat", "id_token iat missing or in the future")
        if nbf is not None and (not _is_number(nbf) or nbf > now + skew):
            raise ConnectorError("not_yet_valid", "id_token not yet valid")
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise ConnectorError("nonce_mismatch", "id_token nonce does not match")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 255:
            raise ConnectorError("invalid_subject", "id_token sub missing or too long")

    def check_fresh(self, claims: Mapping[str, Any], not_before: int) -> None:
        """After ``prompt=login``/``max_age=0``: the upstream must have authenticated
        the user anew, so ``auth_time`` (required with ``max_age``, OIDC Core section
        3.1.2.1) must not be older than the request, within the clock skew."""
        auth_time = claims.get("auth_time")
        if not _is_number(auth_time) or auth_time < not_before - self.clock_skew:
            raise ConnectorError("stale_authentication",
                                 "the upstream did not sign the user in anew (auth_time)")

    # -- hooks for presets -----------------------------------------------------------
    def default_issuer(self) -> str:
        """The issuer when settings name none (presets with a fixed provider)."""
        raise ConfigurationError("issuer is required")

    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    def discovery_issuer(self) -> str:
        """The ``issuer`` the discovery document must state."""
        return self.issuer

    def expected_issuer(self, claims: Mapping[str, Any]) -> str:
        """The ``iss`` this ID token must carry."""
        return self.issuer

    def response_issuer_ok(self, iss: str) -> bool:
        return iss == self.issuer

    def authorization_params(self) -> dict[str, str]:
        """Extra authorization request parameters of a preset."""
        return {str(k): str(v) for k, v in (self.settings.get("auth_params") or {}).items()}

    def lacks_claims(self, claims: Mapping[str, Any]) -> bool:
        """True when the ID token lacks a claim the requested scopes promise, so
        UserInfo is asked: ``email`` and ``email_verified`` for ``email``, any of
        ``name``/``given_name``/``family_name`` for ``profile``."""
        if "email" in self.scopes and ("email" not in claims or "email_verified" not in claims):
            return True
        return "profile" in self.scopes and not any(n in claims for n in NAME_CLAIMS)

    def check_claims(self, claims: Mapping[str, Any]) -> None:
        """A preset's own rules on validated claims; raise ConnectorError to refuse."""

    def identity(self, claims: Mapping[str, Any]) -> UpstreamIdentity:
        """The upstream identity: (iss, sub), and the email only when verified."""
        verified = claims.get("email_verified") in (True, "true")
        email = claims.get("email") if verified and isinstance(claims.get("email"), str) else None
        return UpstreamIdentity(
            issuer=str(claims["iss"]),
            subject=str(claims["sub"]),
            claims=dict(claims),
            email=email,
            email_verified=email is not None,
            amr=[str(a) for a in claims.get("amr") or [] if isinstance(a, str)],
        )


def merge_userinfo(claims: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
    """The ID token's claims plus the UserInfo claims it lacks.

    Claims about the token (``iss``, ``aud``, ``nonce``, ``amr``, ...) never come from
    UserInfo. ``email`` and ``email_verified`` come as a pair from one source: when the
    ID token lacks either and UserInfo has an ``email``, both are UserInfo's (an address
    missing ``email_verified`` there is unverified).
    """
    merged = dict(claims)
    for name, value in info.items():
        if name not in PROTOCOL_CLAIMS:
            merged.setdefault(name, value)
    if ("email" not in claims or "email_verified" not in claims) and "email" in info:
        merged["email"] = info["email"]
        merged["email_verified"] = info.get("email_verified", False)
    return merged


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
