"""Configuring connectors (used by ``idp connectors ...`` and ``idp apply``).

Settings are validated by building the connector before anything is stored, so a
connector in the database always has what it needs; its secret (OIDC client secret
or SAML SP private key) is sealed with the master key bound to the connector id.

A unit's administrator (``connectors.manage``) may also link an upstream subject of
the unit's own connector to an account the unit's SCIM provisioned without an
address, and unlink identities of that connector (:func:`link_subject`,
:func:`unlink_subject`; ``idp connectors link|unlink`` and the administration API).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from connectors import KINDS, ConfigurationError, build
from connectors.google import GOOGLE_ISSUER
from connectors.microsoft import AUTHORITY
from connectors.saml import fetch_idp_metadata, generate_sp_keypair, parse_idp_metadata
from idp import audit
from idp.accounts import lifecycle
from idp.federation.accounts import email_less_record
from idp.federation.registry import (
    acs_url,
    metadata_cache,
    metadata_url,
    secret_context,
    urls,
)
from idp.rights import Actor, NotPermitted, holds_more_rights, require
from idp.rights.authorization import audit_actor
from idp.services import services
from idp.store import connectors_repo
from idp.store import upstream_identities_repo as identities
from idp.store.models import Connector, UpstreamIdentity
from idp.store.unit_of_work import Conflict, atomic
from idp.store.upstream_identities_repo import IdentityConflict, UpstreamKey

PERMISSION = "connectors.manage"
CLAIM_NAME = re.compile(r"^[\x21-\x7e]{1,200}$")
SUBJECT = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")

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
    *,
    actor: audit.Actor | str,
    connector_id: str | None = None,
    enabled: bool = True,
) -> Connector:
    """Validate and store a new connector for the unit ``unit_ref`` (id or slug),
    audited ``connector.create`` by ``actor`` (the console's account, the CLI's
    operator) in the same transaction; never its secret. ``connector_id``: the id
    chosen beforehand (the console shows the redirect URI, which embeds it, before the
    connector exists); a new one when None. ``enabled``: False stores it disabled.

    Raises :class:`ConfigurationError` with an operator-readable message.
    """
    unit = connectors_repo.unit_by_ref(unit_ref)
    if unit is None:
        raise ConfigurationError(f"no unit {unit_ref!r}")
    if kind not in KINDS:
        raise ConfigurationError(f"kind must be one of {', '.join(KINDS)}")
    if connector_id is not None and connectors_repo.id_used(connector_id):
        raise ConfigurationError(retired_message(connector_id))
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
    check_settings(settings)
    build(kind, settings, secret, metadata_cache(), sp)  # raises ConfigurationError
    sealed = services().sealer.seal(secret.encode(), secret_context(connector_id)) if secret \
        else None
    try:
        with atomic():
            row = connectors_repo.create(
                unit.id, kind, name or DEFAULT_NAMES[kind], settings, sealed,
                connector_id=connector_id, enabled=enabled,
            )
            audit.record(actor, "connector.create", row.id,
                         {"kind": kind, "name": row.name, "enabled": enabled},
                         unit_id=unit.id)
    except Conflict as exc:  # a parallel creation took the id first
        raise ConfigurationError(retired_message(connector_id)) from exc
    return row


def retired_message(connector_id: str) -> str:
    """Why a connector cannot be created under ``connector_id``."""
    return (f"connector id {connector_id} was given to a connector before; a connector "
            "id (part of its callback, ACS and metadata URLs) is never reused, even "
            "after its connector was deleted: leave the id out to get a new one")


def set_enabled(row: Connector, enabled: bool, actor: audit.Actor | str) -> Connector:
    """Enable or disable a connector (audited ``connector.update``). A disabled one
    starts no sign-in and accepts no answer; its linked identities stay."""
    if row.enabled != enabled:
        with atomic():
            connectors_repo.update(row, enabled=enabled)
            audit.record(actor, "connector.update", row.id, {"enabled": enabled},
                         unit_id=row.unit_id)
    return row


def remove(row: Connector, actor: audit.Actor | str) -> None:
    """Delete a connector with its linked upstream identities (audited
    ``connector.delete``); accounts and memberships stay. Its id is never given to
    another connector (:func:`idp.store.connectors_repo.id_used`)."""
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


def check_settings(settings: dict[str, Any]) -> None:
    """The settings Unitgate (not the protocol) reads: ``scim_external_id_claim`` is a
    claim or SAML attribute name (visible ASCII, at most 200 characters) or absent."""
    claim = settings.get("scim_external_id_claim")
    if claim is not None and (not isinstance(claim, str) or not CLAIM_NAME.match(claim)):
        raise ConfigurationError(
            "scim_external_id_claim must be a claim or attribute name "
            "(visible ASCII, at most 200 characters)"
        )


def set_external_id_claim(
    connector_id: str, claim: str | None, actor: audit.Actor | str
) -> Connector:
    """Set (or with None clear) the connector's ``scim_external_id_claim``; a change
    is audited ``connector.update`` by ``actor``."""
    row = connectors_repo.get(connector_id)
    if row is None:
        raise ConfigurationError(f"no connector {connector_id!r}")
    settings = dict(row.settings or {})
    if claim:
        settings["scim_external_id_claim"] = claim
    else:
        settings.pop("scim_external_id_claim", None)
    check_settings(settings)
    if settings == (row.settings or {}):
        return row
    with atomic():
        connectors_repo.update(row, settings=settings)
        audit.record(actor, "connector.update", row.id,
                     {"fields": ["scim_external_id_claim"]}, unit_id=row.unit_id)
        return row


class LinkRefused(Exception):
    """An administrator's link or unlink that cannot be done; ``code`` says why
    (``connector_not_found``, ``issuer_required``, ``invalid_subject``,
    ``not_email_less_scim_user``, ``subject_linked``, ``link_not_found``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def unit_connector(actor: Actor, unit_id: str, connector_id: str) -> Connector:
    """The connector ``connector_id`` of exactly ``unit_id``, for an actor holding
    ``connectors.manage`` there (:func:`idp.rights.require`)."""
    require(actor, PERMISSION, unit_id)
    row = connectors_repo.get(connector_id)
    if row is None or row.unit_id != unit_id:
        raise LinkRefused("connector_not_found", "The unit has no such connector.")
    return row


def issuer_of(row: Connector, subject: str, issuer: str | None) -> str:
    """The upstream issuer of a subject of ``row``: ``issuer`` when given, else the
    connector's own (Microsoft: the tenant's, from the subject ``<tid>/<oid>``)."""
    settings = row.settings or {}
    if issuer:
        if len(issuer) > 500 or not SUBJECT.match(issuer[:255]):
            raise LinkRefused("issuer_required", "The issuer is not a valid URL or name.")
        return issuer
    if row.kind == "saml":
        found = settings.get("idp_entity_id")
    elif row.kind == "google":
        found = settings.get("issuer") or GOOGLE_ISSUER
    elif row.kind == "microsoft":
        tid = subject.partition("/")[0].lower()
        tenants = [str(t).lower() for t in settings.get("tenants") or []]
        authority = str(settings.get("authority") or AUTHORITY).rstrip("/")
        found = f"{authority}/{tid}/v2.0" if "/" in subject and tid in tenants else None
    else:
        found = settings.get("issuer")
    if not found:
        raise LinkRefused("issuer_required", "Give the upstream issuer of this subject.")
    return str(found)


def link_subject(actor: Actor, unit_id: str, connector_id: str, account_ref: str,
                 subject: str, issuer: str | None = None,
                 who: audit.Actor | None = None) -> UpstreamIdentity:
    """Link the upstream ``subject`` of the unit's connector to the account of the
    unit's SCIM record ``account_ref`` (account id, SCIM id or userName), which must
    be one the unit's SCIM provisioned without an address. A subject already linked
    (to any account) is never moved. Audited ``federation.identity_linked`` with
    ``proof: administrator``, one transaction (the account lifecycle's
    :func:`~idp.accounts.lifecycle.link_upstream`). ``who``: the audit log's actor
    when ``actor`` does not say it (the CLI's operator)."""
    row = unit_connector(actor, unit_id, connector_id)
    if not SUBJECT.match(subject):
        raise LinkRefused("invalid_subject", "The subject must be 1 to 255 characters "
                          "without control characters.")
    key = UpstreamKey(row.id, issuer_of(row, subject, issuer), subject)
    record = identities.scim_record(unit_id, account_ref)
    if record is None or not email_less_record(record, unit_id):
        raise LinkRefused("not_email_less_scim_user", "Only a user the unit's SCIM "
                          "provisioned without an e-mail address can be linked this way.")
    if holds_more_rights(record.account_id, actor):  # the link signs in as that person
        raise NotPermitted(actor, PERMISSION, unit_id, foreign=False)
    if identities.find(key) is not None:
        raise LinkRefused("subject_linked", "This upstream subject is already linked.")
    profile = lifecycle.UpstreamProfile({}, [], set(), {"iss": key.issuer, "sub": subject})
    try:
        lifecycle.link_upstream(key, record.account_id, unit_id, None, profile,
                                who or audit_actor(actor), proof="administrator")
    except IdentityConflict as exc:
        raise LinkRefused("subject_linked", "This upstream subject is already linked, "
                          "or the user has an e-mail address now.") from exc
    linked = identities.find(key)
    if linked is None:  # pragma: no cover - just committed
        raise LinkRefused("subject_linked", "The link vanished.")
    return linked


def links(actor: Actor, unit_id: str, connector_id: str, account_id: str | None = None,
          after_id: str | None = None, limit: int | None = None) -> list[UpstreamIdentity]:
    """The identities linked through the unit's connector (of one account), by id
    after ``after_id``, at most ``limit``."""
    row = unit_connector(actor, unit_id, connector_id)
    return identities.of_connector(row.id, account_id, after_id, limit)


def unlink_subject(actor: Actor, unit_id: str, connector_id: str, link_id: str,
                   who: audit.Actor | None = None) -> None:
    """Remove the identity ``link_id`` of the unit's connector from its account;
    audited ``federation.identity_unlinked`` (by ``who`` when given, see
    :func:`link_subject`). The account stays."""
    row = unit_connector(actor, unit_id, connector_id)
    found = identities.by_id(link_id)
    if found is None or found.connector_id != row.id:
        raise LinkRefused("link_not_found", "The connector has no such link.")
    lifecycle.unlink_upstream(found, unit_id, who or audit_actor(actor))


def describe_link(found: UpstreamIdentity) -> dict[str, Any]:
    """A link as the CLI and the API show it."""
    return {"id": found.id, "connector_id": found.connector_id,
            "account_id": found.account_id, "issuer": found.issuer,
            "subject": found.subject, "created_at": found.created_at,
            "last_login_at": found.last_login_at}
