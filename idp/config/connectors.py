"""Connectors in the declarative configuration (``idp apply`` / ``idp export``).

Creation goes through :func:`idp.federation.admin.create` (the same validation as
``idp connectors add``). An existing connector (matched by unit and name) is
updated in place: the settings the file writes replace the stored ones, the secret
is read from the environment variable named by ``client_secret_env``, and the result
is validated by building the connector before it is stored. Secrets never appear in
a plan, a diff or an export.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from idp import audit
from idp.config.schema import CONNECTOR_SETTING_KEYS, ConnectorSpec
from idp.services import services
from idp.store import connectors_repo
from idp.store.models import Connector
from idp.store.unit_of_work import atomic


class ConnectorPlanError(ValueError):
    """The file's connector cannot be applied (the message says why)."""


def secret_from_env(spec: ConnectorSpec) -> str | None:
    """The secret named by ``client_secret_env`` (None when the key is absent)."""
    if not spec.client_secret_env:
        return None
    if spec.kind == "saml":
        raise ConnectorPlanError(
            f"connector {spec.name!r}: SAML connectors generate their own SP key; "
            "remove client_secret_env"
        )
    value = os.environ.get(spec.client_secret_env)
    if not value:
        raise ConnectorPlanError(
            f"connector {spec.name!r}: environment variable {spec.client_secret_env} is not set"
        )
    return value


def _metadata_settings(source: str) -> dict[str, Any]:
    from connectors.saml import fetch_idp_metadata, parse_idp_metadata

    if source.startswith(("https://", "http://")):
        xml = fetch_idp_metadata(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ConnectorPlanError(f"metadata file not found: {source}")
        xml = path.read_text(encoding="utf-8")
    return parse_idp_metadata(xml)


def desired_settings(row: Connector, spec: ConnectorSpec) -> dict[str, Any]:
    """The stored settings with every key the file writes applied."""
    settings = dict(row.settings or {})
    if spec.kind == "saml":
        if spec.metadata:
            settings.update(_metadata_settings(spec.metadata))
    elif spec.given("issuer"):
        key = "authority" if spec.kind == "microsoft" else "issuer"
        if spec.issuer:
            settings[key] = spec.issuer
        else:
            settings.pop(key, None)
    for key in CONNECTOR_SETTING_KEYS:
        if spec.given(key):
            value = getattr(spec, key)
            if value is None:
                settings.pop(key, None)
            else:
                settings[key] = value
    return settings


def current_secret(row: Connector) -> str | None:
    """The connector's secret, unsealed in memory only."""
    from idp.federation.registry import secret_context

    if not row.secret_sealed:
        return None
    return services().sealer.open(row.secret_sealed, secret_context(row.id)).decode()


def differences(row: Connector, spec: ConnectorSpec) -> dict[str, Any]:
    """What applying ``spec`` changes on ``row``: setting names (values of public
    settings only), ``secret`` (never its value) and ``enabled``."""
    if spec.kind != row.kind:
        raise ConnectorPlanError(
            f"connector {spec.name!r} is {row.kind}, the file says {spec.kind}: delete it first"
        )
    out: dict[str, Any] = {}
    wanted = desired_settings(row, spec)
    for key in sorted(set(wanted) | set(row.settings or {})):
        old, new = (row.settings or {}).get(key), wanted.get(key)
        if old != new:
            secretish = key in ("idp_certs", "sp_cert")
            out[key] = {"from": "..." if secretish else old, "to": "..." if secretish else new}
    secret = secret_from_env(spec)
    if secret is not None and secret != current_secret(row):
        out["secret"] = {"from": "...", "to": "..."}
    if spec.enabled is not None and spec.enabled != row.enabled:
        out["enabled"] = {"from": row.enabled, "to": spec.enabled}
    return out


def create(unit_slug: str, spec: ConnectorSpec, actor: audit.Actor | str) -> Connector:
    """Create the connector with :func:`idp.federation.admin.create` (one
    transaction, audited ``connector.create`` by ``actor``)."""
    from idp.federation import admin

    extra = {
        key: getattr(spec, key)
        for key in ("mapping", "role_map", "default_roles", "subject_attribute",
                    "scim_external_id_claim")
        if getattr(spec, key) is not None
    }
    row = admin.create(
        unit_slug,
        spec.kind,
        name=spec.name,
        issuer=spec.issuer,
        client_id=spec.client_id,
        client_secret=secret_from_env(spec),
        metadata=spec.metadata,
        tenants=spec.tenants or (),
        hosted_domains=spec.hosted_domains or (),
        scopes=spec.scopes or (),
        extra=extra,
        actor=actor,
        enabled=spec.enabled is not False,
    )
    return row


def update(connector_id: str, spec: ConnectorSpec, actor: audit.Actor | str) -> Connector:
    """Apply ``spec`` to the stored connector after validating the result by
    building it (raises :class:`connectors.ConfigurationError`); audited
    ``connector.update`` by ``actor`` with the names of the changed fields
    (``secret`` when the secret changed, never a value)."""
    from connectors import build
    from idp.federation.registry import acs_url, metadata_cache, metadata_url, secret_context

    row = connectors_repo.get(connector_id)
    if row is None:
        raise ConnectorPlanError(f"connector {spec.name!r} disappeared")
    changed = sorted(differences(row, spec))
    settings = desired_settings(row, spec)
    secret = secret_from_env(spec)
    effective_secret = secret if secret is not None else current_secret(row)
    from idp.federation.admin import check_settings

    sp = {"entity_id": metadata_url(row.id), "acs_url": acs_url(row.id)}
    check_settings(settings)
    build(row.kind, settings, effective_secret, metadata_cache(), sp)
    sealed = (
        services().sealer.seal(secret.encode(), secret_context(row.id))
        if secret is not None
        else None
    )
    with atomic():
        connectors_repo.update(row, settings=settings, secret_sealed=sealed,
                               enabled=spec.enabled)
        if changed:
            audit.record(actor, "connector.update", row.id, {"fields": changed},
                         unit_id=row.unit_id)
        return row


def delete(connector_id: str, actor: audit.Actor | str) -> bool:
    """Delete a connector and its linked upstream identities with
    :func:`idp.federation.admin.remove` (audited ``connector.delete`` by ``actor``);
    True if it existed."""
    from idp.federation import admin

    row = connectors_repo.get(connector_id)
    if row is None:
        return False
    admin.remove(row, actor)
    return True


def export(row: Connector) -> dict[str, Any]:
    """The connector in the file format: public settings only, no secret (set
    ``client_secret_env`` yourself), SAML without ``metadata`` (the IdP settings
    stay as stored unless a file gives metadata)."""
    s = row.settings or {}
    out: dict[str, Any] = {"name": row.name, "kind": row.kind}
    if not row.enabled:
        out["enabled"] = False
    if row.kind == "microsoft" and s.get("authority"):
        out["issuer"] = s["authority"]
    elif row.kind not in ("saml", "microsoft") and s.get("issuer"):
        out["issuer"] = s["issuer"]
    for key in CONNECTOR_SETTING_KEYS:
        if s.get(key) not in (None, "", [], {}):
            out[key] = s[key]
    return out
