"""Keys of ``private_key_jwt`` clients published at a ``jwks_uri`` (RFC 7591 §2,
RFC 7523 §3) instead of registered as ``jwks``.

* **Fetch.** A GET through the webhooks' SSRF-checked client
  (:func:`idp.webhooks.targets.get`: resolved to public addresses only unless
  ``IDP_BACKCHANNEL_ALLOW_PRIVATE``, connected only to the checked address, no
  redirects), within :data:`FETCH_TIMEOUT_SECONDS` for the whole exchange and at
  most :data:`MAX_BYTES`; the answer must be a JWK Set of public asymmetric keys
  (the same rules as registered ``jwks``).
* **Cache.** In the shared ephemeral store, so every node uses one copy, for
  :data:`CACHE_SECONDS`; a failed fetch is remembered for :data:`FAILED_SECONDS`
  (a client whose URL is down costs one fetch per that time, not one per request).
* **Key rotation.** An assertion whose ``kid`` is not in the cached set makes one
  fetch again, at most once per :data:`REFETCH_EVERY_SECONDS` per client; an
  unknown ``kid`` after that is refused (``invalid_client``).
"""

from __future__ import annotations

import json
import logging
from typing import Any, cast

from joserfc.jwk import KeySet, KeySetSerialization

from idp.release import clients
from idp.services import ephemeral, hasher, settings
from idp.webhooks import targets

log = logging.getLogger("idp.oidc")

MAX_BYTES = 64 * 1024
FETCH_TIMEOUT_SECONDS = 5.0
CACHE_SECONDS = 300
FAILED_SECONDS = 10
REFETCH_EVERY_SECONDS = 30


def _key(kind: str, info: clients.ClientInfo) -> str:
    return f"client-jwks:{kind}:" + hasher().hash(
        f"{info.client_id}\x00{info.jwks_uri}", "client-jwks")


def _fetch(info: clients.ClientInfo) -> dict[str, Any] | None:
    """Fetch, check and cache the client's JWK Set; None when that fails (logged)."""
    uri = info.jwks_uri or ""
    answer = targets.get(uri, {"accept": "application/jwk-set+json, application/json"},
                         FETCH_TIMEOUT_SECONDS, settings().backchannel_allow_private,
                         MAX_BYTES)
    try:
        if answer.error is not None or answer.body is None:
            raise ValueError(answer.error or "no answer")
        jwks = clients.validate_jwks(json.loads(answer.body))
    except (ValueError, RecursionError, clients.ClientRegistrationError) as exc:
        log.info("jwks_uri of client %s refused: %s", info.client_id, exc)
        ephemeral().put(_key("failed", info), 1, FAILED_SECONDS)
        return None
    ephemeral().put(_key("set", info), jwks, CACHE_SECONDS)
    return jwks


def key_set(info: clients.ClientInfo, unknown_kid: str | None = None) -> KeySet | None:
    """The client's published keys (cached, else fetched), or None when they cannot
    be had. ``unknown_kid``: an assertion names a key the cached set lacks; fetch
    again if this client was not re-fetched within :data:`REFETCH_EVERY_SECONDS`."""
    cached = ephemeral().get(_key("set", info))
    if cached is None:
        if ephemeral().get(_key("failed", info)) is not None:
            return None
        cached = _fetch(info)
    elif unknown_kid is not None and ephemeral().add(_key("refetch", info), 1,
                                                    REFETCH_EVERY_SECONDS):
        cached = _fetch(info) or cached
    if not isinstance(cached, dict):
        return None
    return KeySet.import_key_set(cast(KeySetSerialization, cached))


def has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)
