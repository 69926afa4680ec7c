"""Configuring connectors (used by ``idp connectors ...`` and ``idp apply``).

Settings are validated by building the connector before anything is stored, so a
connector in the database always has what it needs; its secret (OIDC client secret
or SAML SP private key) is sealed with the master key bound to the connector id.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from connectors import KINDS, ConfigurationError, build
from connectors.saml import fetch_idp_metadata, generate_sp_keypair, parse_idp_metadata
from idp import audit
from idp.federation.registry import (
    acs_url,
    metadata_cache,
    metadata_url,
    secret_context,
    urls,
)
from idp.services import services
from idp.store import connectors_repo
from idp.store.models import Connector
from idp.store.unit_of_work import atomic

DEFAULT_NAMES = {"google": "Google Workspace", "microsoft": "Microsoft Entra ID",
                 "okta": "Okta", "oidc": "OpenID Connect", "saml": "SAML"}


def _read_metadata(source: str) -> str:
    if source.startswith(("https://", "http://")):
        return fetch_idp_metadata(source)
    path = Path(source)
    if not path.is_file():
        raise ConfigurationError(f"metadata file not found: {source}")
    return path.read_text(encoding="utf-8")


def create(
    unit_ref: str,
    kind: str,
    name: str | None = None,
    issuer: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    metadata: str | None = None,
    tenants: Sequence[str] = (),
    hosted_domains: Sequence[str] = (),
    scopes: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
    actor: str | None = None,
    connector_id: str | None = None,
) -> Connector:
    """Validate and store a new connector for the unit ``unit_ref`` (id or slug);
    with ``actor`` (the console) the creation is audited (``connector.create``).
    ``connector_id``: the id chosen beforehand (the console shows the redirect URI,
    which embeds it, before the connector exists); a new one when None.

    Raises :class:`ConfigurationError` with an operator-readable message.
    """
    unit = connectors_repo.unit_by_ref(unit_ref)
    if unit is None:
        raise ConfigurationError(f"no unit {unit_ref!r}")
    if kind not in KINDS:
        raise ConfigurationError(f"kind must be one of {', '.join(KINDS)}")
    connector_id = connector_id or connectors_repo.new_connector_id()
    settings: dict[str, Any] = dict(extra or {})
    secret: str | None
    if kind == "saml":
        if not metadata:
            raise ConfigurationError("a SAML connector needs --metadata FILE|URL")
        settings.update(parse_idp_metadata(_read_metadata(metadata)))
        secret, settings["sp_cert"] = generate_sp_keypair(metadata_url(connector_id))
    else:
        if kind == "microsoft":
            settings["tenants"] = list(tenants)
            if issuer:
                settings["authority"] = issuer
        elif issuer:
            settings["issuer"] = issuer
        if kind == "google":
            settings["hosted_domains"] = list(hosted_domains)
        settings["client_id"] = client_id or ""
        if scopes:
            settings["scopes"] = list(scopes)
        secret = client_secret
    sp = {"entity_id": metadata_url(connector_id), "acs_url": acs_url(connector_id)}
    build(kind, settings, secret, metadata_cache(), sp)  # raises ConfigurationError
    sealed = services().sealer.seal(secret.encode(), secret_context(connector_id)) if secret \
        else None
    with atomic():
        row = connectors_repo.create(
            unit.id, kind, name or DEFAULT_NAMES[kind], settings, sealed,
            connector_id=connector_id,
        )
        if actor is not None:
            audit.record(actor, "connector.create", row.id, {"kind": kind, "name": row.name},
                         unit_id=unit.id)
        return row


def set_enabled(row: Connector, enabled: bool, actor: str) -> Connector:
    """Enable or disable a connector (audited ``connector.update``). A disabled one
    starts no sign-in and accepts no answer; its linked identities stay."""
    if row.enabled != enabled:
        with atomic():
            connectors_repo.update(row, enabled=enabled)
            audit.record(actor, "connector.update", row.id, {"enabled": enabled},
                         unit_id=row.unit_id)
    return row


def remove(row: Connector, actor: str) -> None:
    """Delete a connector with its linked upstream identities (audited
    ``connector.delete``); accounts and memberships stay."""
    with atomic():
        audit.record(actor, "connector.delete", row.id, {"kind": row.kind, "name": row.name},
                     unit_id=row.unit_id)
        connectors_repo.delete(row.id)


def describe(row: Connector) -> dict[str, Any]:
    """A connector as shown by ``idp connectors show``: never its secret."""
    public = {k: v for k, v in row.settings.items() if k not in ("sp_cert", "idp_certs")}
    if row.kind == "saml":
        public["idp_certificates"] = len(row.settings.get("idp_certs") or [])
    return {
        "id": row.id,
        "unit_id": row.unit_id,
        "kind": row.kind,
        "name": row.name,
        "enabled": row.enabled,
        "settings": public,
        "has_secret": row.secret_sealed is not None,
        **urls(row),
    }
