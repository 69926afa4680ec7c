"""Connector rows to connector objects, and the URLs an admin registers upstream."""

from __future__ import annotations

from flask import current_app

from connectors import UpstreamConnector, build
from connectors.oidc import MetadataCache
from idp.crypto.sealed_fields import connector_context
from idp.services import services, settings
from idp.store.models import Connector
from idp.webhooks import targets

CACHE_KEY = "unitgate_federation_cache"


def secret_context(connector_id: str) -> str:
    """The sealing context of a connector's secret (binds it to this connector)."""
    return connector_context(connector_id)


def base_url() -> str:
    return settings().issuer.rstrip("/")


def callback_url(connector_id: str) -> str:
    """The OIDC redirect URI to register at the upstream."""
    return f"{base_url()}/federation/{connector_id}/callback"


def acs_url(connector_id: str) -> str:
    """The SAML Assertion Consumer Service URL (HTTP-POST binding)."""
    return f"{base_url()}/federation/{connector_id}/acs"


def metadata_url(connector_id: str) -> str:
    """The SAML SP metadata URL; also the SP's entity id."""
    return f"{base_url()}/federation/{connector_id}/metadata"


def urls(row: Connector) -> dict[str, str]:
    """What to paste into the upstream's admin console for this connector."""
    if row.kind == "saml":
        return {"acs_url": acs_url(row.id), "metadata_url": metadata_url(row.id),
                "entity_id": metadata_url(row.id)}
    return {"callback_url": callback_url(row.id)}


def new_metadata_cache(allow_private: bool) -> MetadataCache:
    """The app's cache, made at start. Company admins configure connectors (the
    console), so unless the operator allows private addresses every upstream call
    reaches public addresses only (:func:`idp.webhooks.targets.is_public`)."""
    return MetadataCache(address_check=None if allow_private else targets.is_public)


def metadata_cache() -> MetadataCache:
    """The app's cache of upstream discovery documents and JWKS."""
    cache = current_app.extensions.get(CACHE_KEY)
    if cache is None:
        made = new_metadata_cache(settings().federation_allow_private)
        cache = current_app.extensions.setdefault(CACHE_KEY, made)
    return cache


def connector_for(row: Connector) -> UpstreamConnector:
    """The connector object for a row, its secret unsealed in memory only."""
    secret = None
    if row.secret_sealed:
        secret = services().sealer.open(row.secret_sealed, secret_context(row.id)).decode()
    sp = {"entity_id": metadata_url(row.id), "acs_url": acs_url(row.id)}
    return build(row.kind, row.settings, secret, metadata_cache(), sp)
