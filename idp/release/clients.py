"""Registration of OIDC clients (the merchants), following RFC 7591 metadata names.

* Redirect and post-logout URIs must be absolute ``https`` URIs, or ``http`` on a
  loopback host for native apps (RFC 8252 §7.3); no fragments (RFC 6749 §3.1.2), no
  user information, no wildcards. They are later matched by exact string comparison,
  except that for a public (native) client the port of a loopback redirect URI may
  vary (RFC 8252 §7.3); never for a confidential client, never for a
  ``post_logout_redirect_uri``.
* Confidential clients get a secret of 256 random bits, returned once and stored only
  as a keyed hash (HMAC): the token endpoint checks it with one HMAC, never a slow
  password hash. ``private_key_jwt`` clients register public keys instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization

from idp import audit
from idp.crypto.primitives import random_identifier, random_token
from idp.process_cache import ProcessCache
from idp.release import merchants
from idp.release.claims import SUPPORTED_CLAIMS, SUPPORTED_SCOPES
from idp.services import hasher, settings
from idp.store import clients_repo
from idp.store.models import Client
from idp.store.unit_of_work import atomic
from idp.webhooks import targets

SECRET_PURPOSE = "client-secret"
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
DEFAULT_GRANT_TYPES = ("authorization_code", "refresh_token")
DEFAULT_SCOPE = "openid profile email"
ID_TOKEN_ALGS = ("ES256", "RS256")
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
LOOPBACK_IPS = ("127.0.0.1", "::1")


class ClientRegistrationError(ValueError):
    """Client metadata is invalid; the message says which field and why."""


def is_loopback(uri: str) -> bool:
    """True for ``http`` URIs on a loopback host (127.0.0.1, [::1], localhost)."""
    try:
        parts = urlsplit(uri)
        return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    except ValueError:
        return False


def validate_uri(uri: str, field: str = "redirect_uri") -> str:
    """Return ``uri`` if it may be registered, else raise :class:`ClientRegistrationError`."""
    if not isinstance(uri, str) or not uri or len(uri) > 2000 or uri != uri.strip():
        raise ClientRegistrationError(f"{field}: must be a non-empty URI")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ClientRegistrationError(f"{field}: malformed URI {uri!r}") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ClientRegistrationError(f"{field}: must be an absolute https URI: {uri!r}")
    if parts.scheme == "http" and not is_loopback(uri):
        raise ClientRegistrationError(
            f"{field}: plain http is allowed only on a loopback host (127.0.0.1, [::1]): {uri!r}"
        )
    if "#" in uri:
        raise ClientRegistrationError(f"{field}: must not contain a fragment: {uri!r}")
    if parts.username or parts.password or "@" in parts.netloc:
        raise ClientRegistrationError(f"{field}: must not contain user information: {uri!r}")
    if "*" in uri or any(ord(c) < 0x21 or ord(c) == 0x7F for c in uri):
        raise ClientRegistrationError(f"{field}: wildcards and spaces are not allowed: {uri!r}")
    return uri


def _validate_scope(scope: str) -> str:
    scopes = scope.split()
    unknown = [s for s in scopes if s not in SUPPORTED_SCOPES]
    if unknown:
        raise ClientRegistrationError(f"scope: unsupported {' '.join(unknown)}")
    return " ".join(dict.fromkeys(scopes))


def validate_jwks(jwks: Any) -> dict[str, Any]:
    """``jwks`` if it is a JWK Set of public asymmetric keys joserfc can import."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ClientRegistrationError("jwks: must be a JWK Set with at least one key")
    for key in jwks["keys"]:
        if not isinstance(key, dict) or any(p in key for p in ("d", "p", "q", "k")):
            raise ClientRegistrationError("jwks: only public asymmetric keys may be registered")
    try:
        KeySet.import_key_set(cast(KeySetSerialization, jwks))
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ClientRegistrationError(f"jwks: cannot import: {exc}") from exc
    return jwks


def _validate_jwks_uri(uri: Any) -> str:
    """A ``jwks_uri`` (RFC 7591 §2): https (http on loopback only), and where the
    webhooks may connect (:mod:`idp.webhooks.targets`: public addresses only unless
    ``IDP_BACKCHANNEL_ALLOW_PRIVATE``); checked again at every fetch."""
    if not isinstance(uri, str):
        raise ClientRegistrationError("jwks_uri: must be a URI")
    validate_uri(uri, "jwks_uri")
    try:
        targets.check(uri, settings().backchannel_allow_private)
    except targets.TargetRefused as exc:
        raise ClientRegistrationError(f"jwks_uri: {exc.detail}") from exc
    return uri


@dataclass(frozen=True)
class _Metadata:
    """Validated client metadata, ready to store."""

    name: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    scope: str
    grant_types: list[str]
    auth_method: str
    jwks: dict[str, Any] | None
    id_token_alg: str
    require_par: bool = False
    dpop_bound: bool = False
    jwks_uri: str | None = None
    required_claims: list[str] | None = None

    @property
    def uses_secret(self) -> bool:
        return self.auth_method in ("client_secret_basic", "client_secret_post")


def _validated(
    name: str,
    redirect_uris: Sequence[str],
    post_logout_redirect_uris: Iterable[str],
    scope: str,
    grant_types: Iterable[str],
    public: bool,
    auth_method: str | None,
    jwks: dict[str, Any] | None,
    id_token_alg: str,
    jwks_uri: str | None = None,
) -> _Metadata:
    """The checks every registration and update passes; raises
    :class:`ClientRegistrationError` naming the field."""
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 200:
        raise ClientRegistrationError("name: required, at most 200 characters")
    if isinstance(grant_types, str) or isinstance(redirect_uris, str):
        raise ClientRegistrationError("grant_types and redirect_uris: lists, not text")
    grants = list(dict.fromkeys(grant_types))
    bad = [str(g) for g in grants if g not in GRANT_TYPES]
    if bad or not grants:
        raise ClientRegistrationError(
            f"grant_types: choose from {', '.join(GRANT_TYPES)} (got {', '.join(bad) or 'none'})"
        )
    method = auth_method or ("none" if public else "client_secret_basic")
    if method not in AUTH_METHODS:
        raise ClientRegistrationError(f"auth_method: choose from {', '.join(AUTH_METHODS)}")
    if public and method != "none":
        raise ClientRegistrationError("auth_method: a public client authenticates with 'none'")
    if method == "none" and "client_credentials" in grants:
        raise ClientRegistrationError("grant_types: a public client cannot use client_credentials")
    if method == "private_key_jwt" and jwks_uri is not None:
        if jwks is not None:
            raise ClientRegistrationError("jwks and jwks_uri: register one of them, not both")
        jwks_uri = _validate_jwks_uri(jwks_uri)
    elif method == "private_key_jwt":
        jwks = validate_jwks(jwks)
    elif jwks is not None or jwks_uri is not None:
        raise ClientRegistrationError("jwks: only used with auth_method private_key_jwt")
    uris = [validate_uri(u) for u in redirect_uris]
    if "authorization_code" in grants and not uris:
        raise ClientRegistrationError("redirect_uri: at least one is required")
    logout_uris = [validate_uri(u, "post_logout_redirect_uri") for u in post_logout_redirect_uris]
    if id_token_alg not in ID_TOKEN_ALGS:
        raise ClientRegistrationError(f"id_token_alg: choose from {', '.join(ID_TOKEN_ALGS)}")
    if not isinstance(scope, str):
        raise ClientRegistrationError("scope: space-separated text")
    return _Metadata(
        name=name,
        redirect_uris=list(dict.fromkeys(uris)),
        post_logout_redirect_uris=list(dict.fromkeys(logout_uris)),
        scope=_validate_scope(scope),
        grant_types=grants,
        auth_method=method,
        jwks=jwks,
        id_token_alg=id_token_alg,
        jwks_uri=jwks_uri,
    )


def validate_required_claims(value: Any) -> list[str] | None:
    """The claims a merchant declares it requires (``idp.release.items``): None for the
    default, else a list of supported claim names (deduplicated, ``sub`` first)."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ClientRegistrationError("required_claims: a list of claim names")
    bad = [str(c) for c in value if c not in SUPPORTED_CLAIMS]
    if bad:
        raise ClientRegistrationError(
            f"required_claims: unknown claim(s) {', '.join(bad)}; one of "
            + ", ".join(SUPPORTED_CLAIMS)
        )
    return list(dict.fromkeys(["sub", *value]))


def register(
    name: str,
    redirect_uris: Sequence[str],
    post_logout_redirect_uris: Iterable[str] = (),
    scope: str = DEFAULT_SCOPE,
    grant_types: Iterable[str] = DEFAULT_GRANT_TYPES,
    public: bool = False,
    auth_method: str | None = None,
    jwks: dict[str, Any] | None = None,
    id_token_alg: str = "ES256",  # noqa: S107 - an algorithm name, not a secret
    require_par: bool = False,
    dpop_bound: bool = False,
    jwks_uri: str | None = None,
    required_claims: Sequence[str] | None = None,
    *,
    actor: audit.Actor | str,
) -> tuple[Client, str | None]:
    """Validate and store a new client, audited ``client.create`` by ``actor`` (the
    name and auth method, never the secret). Returns the client and its plain secret, which
    exists only for ``client_secret_basic``/``client_secret_post`` clients and is never
    retrievable again. Raises :class:`ClientRegistrationError` on invalid metadata.
    The client's merchant (:mod:`idp.release.merchants`) is created with it, in one
    transaction. ``require_par`` (``require_pushed_authorization_requests``, RFC 9126
    §6) refuses authorization requests that were not pushed; ``dpop_bound``
    (``dpop_bound_access_tokens``, RFC 9449 §5.2) refuses token requests without a
    DPoP proof. ``jwks_uri`` (``private_key_jwt`` only, instead of ``jwks``): where
    the client publishes its keys (:mod:`idp.oidc.client_jwks`). ``required_claims``:
    the claims the merchant cannot do without (:mod:`idp.release.items`; None: the
    default, subject and e-mail address); the employee may leave out every other one."""
    meta = _validated(name, redirect_uris, post_logout_redirect_uris, scope, grant_types,
                      public, auth_method, jwks, id_token_alg, jwks_uri)
    meta = replace(meta, require_par=bool(require_par), dpop_bound=bool(dpop_bound),
                   required_claims=validate_required_claims(required_claims))
    secret = random_token(32) if meta.uses_secret else None
    client_id = random_identifier(18)
    with atomic():
        merchant = merchants.stage(merchants.OIDC, client_id, meta.name)
        client = clients_repo.add(_new_client(client_id, merchant.id, meta, secret))
        audit.record(actor, "client.create", client_id,
                     {"name": meta.name, "token_endpoint_auth_method": meta.auth_method})
    return client, secret


def stage_service_client(name: str, scope: str) -> tuple[Client, str]:
    """Stage (in the caller's transaction) a confidential client that may only use the
    client-credentials grant, with a scope outside the merchants' vocabulary (the
    administration API's ``admin``): no redirect URI, so no person's sign-in ever
    carries that scope. Returns the client and its plain secret (shown once)."""
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 200:
        raise ClientRegistrationError("name: required, at most 200 characters")
    meta = _Metadata(
        name=name, redirect_uris=[], post_logout_redirect_uris=[],
        scope=scope, grant_types=["client_credentials"], auth_method="client_secret_basic",
        jwks=None, id_token_alg="ES256",
    )
    secret = random_token(32)
    client_id = random_identifier(18)
    merchant = merchants.stage(merchants.OIDC, client_id, meta.name)
    return clients_repo.add(_new_client(client_id, merchant.id, meta, secret)), secret


def _new_client(client_id: str, merchant_id: str, meta: _Metadata, secret: str | None) -> Client:
    return Client(
        client_id=client_id,
        merchant_id=merchant_id,
        secret_hash=hasher().hash(secret, SECRET_PURPOSE) if secret else None,
        name=meta.name,
        redirect_uris=meta.redirect_uris,
        post_logout_redirect_uris=meta.post_logout_redirect_uris,
        scope=meta.scope,
        grant_types=meta.grant_types,
        token_endpoint_auth_method=meta.auth_method,
        jwks=meta.jwks,
        jwks_uri=meta.jwks_uri,
        id_token_signed_response_alg=meta.id_token_alg,
        require_pushed_authorization_requests=meta.require_par,
        dpop_bound_access_tokens=meta.dpop_bound,
        required_claims=meta.required_claims,
    )


UPDATABLE = (
    "name", "redirect_uris", "post_logout_redirect_uris", "scope", "grant_types",
    "auth_method", "jwks", "id_token_alg",
    "require_par", "dpop_bound", "jwks_uri", "required_claims",
)


def _updated(client_id: str, fields: dict[str, Any]) -> tuple[Client, _Metadata]:
    """The client and its metadata after applying ``fields``, validated."""
    unknown = sorted(set(fields) - set(UPDATABLE))
    if unknown:
        raise ClientRegistrationError(f"cannot change {', '.join(unknown)}")
    row = get(client_id)
    if row is None:
        raise LookupError(client_id)
    current: dict[str, Any] = {
        "name": row.name,
        "redirect_uris": list(row.redirect_uris or []),
        "post_logout_redirect_uris": list(row.post_logout_redirect_uris or []),
        "scope": row.scope or DEFAULT_SCOPE,
        "grant_types": list(row.grant_types or DEFAULT_GRANT_TYPES),
        "auth_method": row.token_endpoint_auth_method,
        "jwks": row.jwks,
        "id_token_alg": row.id_token_signed_response_alg or "ES256",
        "jwks_uri": row.jwks_uri,
    }
    if "auth_method" in fields and fields["auth_method"] != "private_key_jwt":
        current["jwks"] = current["jwks_uri"] = None  # keys belong to private_key_jwt only
    if fields.get("jwks") is not None:
        current["jwks_uri"] = None  # keys given replace keys published at a URL
    if fields.get("jwks_uri") is not None:
        current["jwks"] = None
    flags = {
        "require_par": bool(row.require_pushed_authorization_requests),
        "dpop_bound": bool(row.dpop_bound_access_tokens),
    }
    flags.update({k: bool(fields.pop(k)) for k in list(flags) if fields.get(k) is not None})
    required = (validate_required_claims(fields.pop("required_claims"))
                if "required_claims" in fields else row.required_claims)
    fields = {k: v for k, v in fields.items() if k not in flags}
    current.update({k: v for k, v in fields.items()
                    if v is not None or k in ("jwks", "jwks_uri")})
    meta = _validated(current.pop("name"), current.pop("redirect_uris"),
                      current.pop("post_logout_redirect_uris"), current.pop("scope"),
                      current.pop("grant_types"), False, current.pop("auth_method"),
                      current.pop("jwks"), current.pop("id_token_alg"),
                      current.pop("jwks_uri") or None)
    return row, replace(meta, require_par=flags["require_par"], dpop_bound=flags["dpop_bound"],
                        required_claims=required)


def validate_update(client_id: str, /, **fields: Any) -> None:
    """Raise what :func:`update` would raise for these ``fields``; writes nothing."""
    _updated(client_id, fields)


def validate_registration(name: str, redirect_uris: Sequence[str], **kwargs: Any) -> None:
    """Raise :class:`ClientRegistrationError` when :func:`register` would refuse these
    arguments (same keywords); writes nothing."""
    args: dict[str, Any] = {
        "post_logout_redirect_uris": (), "scope": DEFAULT_SCOPE,
        "grant_types": DEFAULT_GRANT_TYPES, "public": False, "auth_method": None,
        "jwks": None, "id_token_alg": "ES256", "require_par": False, "dpop_bound": False,
        "jwks_uri": None,
        "required_claims": None,
    }
    unknown = sorted(set(kwargs) - set(args))
    if unknown:
        raise ClientRegistrationError(f"unknown metadata {', '.join(unknown)}")
    args.update(kwargs)
    args.pop("require_par")
    args.pop("dpop_bound")
    validate_required_claims(args.pop("required_claims"))
    _validated(name, redirect_uris, **args)


def update(
    client_id: str, /, *, actor: audit.Actor | str, **fields: Any
) -> tuple[Client, str | None]:
    """Change the metadata of an existing client in place (RFC 7592 §2.2 semantics for
    the fields given; the ``client_id`` never changes). ``fields`` are keyword names of
    :func:`register` (:data:`UPDATABLE`); the others keep their value. The result is
    validated exactly like a registration, and nothing is written when it is invalid
    (:class:`ClientRegistrationError`) or the client does not exist (``LookupError``).

    Returns the client and a plain secret only when the change moves the client to a
    secret-based ``auth_method`` from one without a secret (a new secret, shown once);
    moving to ``none`` or ``private_key_jwt`` deletes the stored secret hash. An
    existing secret is kept otherwise. The change counts at once in this process and
    within 2 seconds on every other (:func:`lookup`).

    A change is audited ``client.update`` by ``actor`` with the names of the changed
    fields (``client_secret`` when a secret was made or deleted, never a value); a
    change that changes nothing writes nothing."""
    row, meta = _updated(client_id, fields)
    secret: str | None = None
    secret_hash = row.secret_hash
    if not meta.uses_secret:
        secret_hash = None
    elif secret_hash is None:
        secret = random_token(32)
        secret_hash = hasher().hash(secret, SECRET_PURPOSE)
    changes = {
        "name": meta.name,
        "redirect_uris": meta.redirect_uris,
        "post_logout_redirect_uris": meta.post_logout_redirect_uris,
        "scope": meta.scope,
        "grant_types": meta.grant_types,
        "token_endpoint_auth_method": meta.auth_method,
        "jwks": meta.jwks,
        "jwks_uri": meta.jwks_uri,
        "id_token_signed_response_alg": meta.id_token_alg,
        "secret_hash": secret_hash,
        "require_pushed_authorization_requests": meta.require_par,
        "dpop_bound_access_tokens": meta.dpop_bound,
        "required_claims": meta.required_claims,
    }
    changed = sorted(
        "client_secret" if key == "secret_hash" else key
        for key, value in changes.items() if getattr(row, key) != value
    )
    if not changed:
        return row, secret
    renamed = meta.name != row.name
    with atomic():
        clients_repo.update(row, changes)
        if renamed:  # the merchant is shown under its client's name
            merchants.stage_rename(row.merchant_id, meta.name)
        audit.record(actor, "client.update", client_id, {"fields": changed})
    return row, secret


def get(client_id: str) -> Client | None:
    """The client registered under ``client_id``, or None."""
    if not client_id or len(client_id) > 64:
        return None
    return clients_repo.by_client_id(client_id)


def list_all() -> list[Client]:
    """Every registered client, oldest first."""
    return clients_repo.all_clients()


def delete(client_id: str, actor: audit.Actor | str) -> bool:
    """Delete a client, audited ``client.delete`` by ``actor``; True when it existed.
    This process stops accepting it at once, other processes and nodes within 2
    seconds (:func:`lookup`). Its merchant is retired in the same transaction
    (:func:`idp.release.merchants.stage_retirement`): live grants revoked, sign-ins and
    consents kept with the merchant's name."""
    row = get(client_id)
    if row is None:
        return False
    with atomic():
        stage_removal(row)
        audit.record(actor, "client.delete", client_id, {"name": row.name})
    return True


def stage_removal(row: Client) -> None:
    """Stage the deletion of ``row`` and the retirement of its merchant in the
    caller's transaction, for callers that audit the removal as part of their own
    change (an administration client, a deleted customer's clients)."""
    merchants.stage_retirement(row.merchant_id)
    clients_repo.remove(row)


@dataclass(frozen=True)
class ClientInfo:
    """An immutable snapshot of a client's metadata, safe to cache across requests."""

    client_id: str
    merchant_id: str
    name: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    grant_types: tuple[str, ...]
    auth_method: str
    jwks: dict[str, Any] | None
    id_token_alg: str
    require_par: bool = False  # require_pushed_authorization_requests (RFC 9126 §6)
    dpop_bound: bool = False  # dpop_bound_access_tokens (RFC 9449 §5.2)
    jwks_uri: str | None = None  # private_key_jwt keys at a URL (idp.oidc.client_jwks)
    # the claims the merchant requires (idp.release.items); None: the default
    required_claims: tuple[str, ...] | None = None

    @property
    def is_public(self) -> bool:
        return self.auth_method == "none"

    def check_secret(self, secret: str) -> bool:
        """Constant-time check of a presented secret against the stored keyed hash."""
        return hasher().verify(secret, SECRET_PURPOSE, self.secret_hash)

    def redirect_uri_registered(self, uri: str) -> bool:
        """Exact match with a registered redirect URI. Only a public (native) client
        may use another port of a registered loopback-IP URI (RFC 8252 §7.3: the
        app's listener gets an ephemeral port); a confidential client, a server with
        a fixed address, matches exactly."""
        return uri_matches(self.redirect_uris, uri, any_loopback_port=self.is_public)

    def post_logout_uri_registered(self, uri: str) -> bool:
        """Exact match with a registered post-logout redirect URI, for every client
        (RP-Initiated Logout §3: no loopback port exception)."""
        return uri_matches(self.post_logout_redirect_uris, uri)


def uri_matches(registered: Sequence[str], uri: str, *, any_loopback_port: bool = False) -> bool:
    """True when ``uri`` equals one of ``registered`` character for character, or, with
    ``any_loopback_port``, both are ``http`` loopback-IP URIs that differ only in the
    port (RFC 8252 §7.3)."""
    if not isinstance(uri, str):
        return False
    if uri in registered:
        return True
    if not any_loopback_port:
        return False
    try:
        parts = urlsplit(uri)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK_IPS or parts.fragment:
            return False
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    for candidate in registered:
        reg = urlsplit(candidate)
        if (
            reg.scheme == "http"
            and reg.hostname == parts.hostname
            and reg.path == parts.path
            and reg.query == parts.query
            and not parts.username
            and not parts.password
        ):
            return True
    return False


def _snapshot(client: Client) -> ClientInfo:
    return ClientInfo(
        client_id=client.client_id,
        merchant_id=client.merchant_id,
        name=client.name,
        secret_hash=client.secret_hash,
        redirect_uris=tuple(client.redirect_uris or ()),
        post_logout_redirect_uris=tuple(client.post_logout_redirect_uris or ()),
        scopes=tuple((client.scope or "").split()),
        grant_types=tuple(client.grant_types or ()),
        auth_method=client.token_endpoint_auth_method,
        jwks=dict(client.jwks) if client.jwks else None,
        id_token_alg=client.id_token_signed_response_alg or "ES256",
        require_par=bool(client.require_pushed_authorization_requests),
        dpop_bound=bool(client.dpop_bound_access_tokens),
        jwks_uri=client.jwks_uri,
        required_claims=(
            tuple(client.required_claims) if client.required_claims is not None else None
        ),
    )


# Every protocol request looks its client up. A commit in this process that adds,
# changes or deletes a client empties the cache (idp.store.commit_hooks).
CACHE: ProcessCache[ClientInfo] = ProcessCache("clients", (Client,), 10_000)


def _load(client_id: str) -> ClientInfo | None:
    row = clients_repo.by_client_id(client_id)
    return None if row is None else _snapshot(row)


def lookup(client_id: Any) -> ClientInfo | None:
    """The client's metadata for the protocol endpoints: one indexed query, then kept
    in a :class:`idp.process_cache.ProcessCache` (at most 2 seconds, emptied by any
    commit of a client change in this process), so a deletion or change counts at
    once here and within 2 seconds on every other process and node. Unknown ids are
    never cached."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
        return None
    if not client_id.isprintable():  # NUL and other controls: PostgreSQL refuses NUL
        return None
    return CACHE.get_or_load(client_id, lambda: _load(client_id))


def describe(client: Client) -> dict[str, Any]:
    """The client's public metadata (never the secret or its hash), for CLI and admin."""
    return {
        "client_id": client.client_id,
        "client_name": client.name,
        "redirect_uris": list(client.redirect_uris or []),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris or []),
        "scope": client.scope,
        "grant_types": list(client.grant_types or []),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
        "required_claims": (
            list(client.required_claims) if client.required_claims is not None else None
        ),
        "require_pushed_authorization_requests": bool(
            client.require_pushed_authorization_requests
        ),
        "dpop_bound_access_tokens": bool(client.dpop_bound_access_tokens),
        "created_at": client.created_at.isoformat() if client.created_at else None,
    }
