"""Configuration of a unit's LDAP / Active Directory connection.

One directory per business unit. Everything is validated before it is stored:
the URL and transport (:func:`connectors.ldap.parse_url`), the filter (RFC 4515),
the attribute and group maps (:mod:`idp.ldap.mapping`), the CA certificate. The
bind password is sealed with the master key (AES-256-GCM, context
``ldap-bind:<directory id>``) and never shown again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.ldap import AUTO_ID, LdapConfig, LdapError, parse_url, validate_filter
from idp.crypto.sealed_fields import ldap_bind_context
from idp.ldap.mapping import (
    DEFAULT_ATTRIBUTE_MAP,
    MappingError,
    validate_attribute_map,
    validate_group_map,
)
from idp.services import services
from idp.store import ldap_repo
from idp.store.models import LdapDirectory, new_id
from idp.store.unit_of_work import Conflict, atomic
from idp.units import registry as units

# Users, not computers (AD computer objects are objectClass=user, hence person too).
DEFAULT_FILTER = "(&(objectClass=person)(!(objectClass=computer)))"
MAX_PAGE_SIZE = 5000
MAX_SCHEDULE_MINUTES = 7 * 24 * 60


class DirectoryConfigError(ValueError):
    """The configuration cannot be stored; the message says which setting is wrong."""


@dataclass
class DirectorySettings:
    """What an operator gives for a directory (see ``idp ldap add --help``)."""

    url: str
    bind_dn: str
    bind_password: str
    base_dn: str
    user_filter: str = DEFAULT_FILTER
    start_tls: bool = False
    ca_pem: str | None = None
    id_attribute: str = AUTO_ID
    attribute_map: dict[str, str] | None = None
    group_map: dict[str, str] | None = None
    page_size: int = 500
    schedule_minutes: int = 0
    trust_email: bool = False
    login_enabled: bool = False


def _seal_context(directory_id: str) -> str:
    return ldap_bind_context(directory_id)


def _check_ca(pem: str | None) -> str | None:
    if not pem:
        return None
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise DirectoryConfigError("the CA file is not a PEM certificate") from None
    if not certs:
        raise DirectoryConfigError("the CA file holds no certificate")
    return pem


def _check_dn(label: str, value: str) -> str:
    text = (value or "").strip()
    if not text or "=" not in text or len(text) > 500:
        raise DirectoryConfigError(f"{label} {value!r} is not a distinguished name")
    return text


def validate(s: DirectorySettings) -> DirectorySettings:
    """``s`` with normalised values, or :class:`DirectoryConfigError`."""
    try:
        parse_url(s.url, s.start_tls)
        user_filter = validate_filter(s.user_filter or DEFAULT_FILTER)
        attribute_map = validate_attribute_map(s.attribute_map or dict(DEFAULT_ATTRIBUTE_MAP))
        group_map = validate_group_map(s.group_map or {})
    except (LdapError, MappingError) as exc:
        raise DirectoryConfigError(str(exc)) from None
    if not s.bind_password:
        raise DirectoryConfigError("the bind password is empty")
    if not 1 <= s.page_size <= MAX_PAGE_SIZE:
        raise DirectoryConfigError(f"page size must be between 1 and {MAX_PAGE_SIZE}")
    if not 0 <= s.schedule_minutes <= MAX_SCHEDULE_MINUTES:
        raise DirectoryConfigError(
            f"schedule minutes must be between 0 (manual) and {MAX_SCHEDULE_MINUTES}"
        )
    id_attribute = (s.id_attribute or AUTO_ID).strip()
    if not id_attribute.replace("-", "").isalnum() or len(id_attribute) > 64:
        raise DirectoryConfigError(f"{s.id_attribute!r} is not an attribute name")
    return DirectorySettings(
        url=s.url.strip(),
        bind_dn=_check_dn("bind DN", s.bind_dn),
        bind_password=s.bind_password,
        base_dn=_check_dn("base DN", s.base_dn),
        user_filter=user_filter,
        start_tls=s.start_tls,
        ca_pem=_check_ca(s.ca_pem),
        id_attribute=id_attribute,
        attribute_map=attribute_map,
        group_map=group_map,
        page_size=s.page_size,
        schedule_minutes=s.schedule_minutes,
        trust_email=s.trust_email,
        login_enabled=s.login_enabled,
    )


def create(unit_ref: str, s: DirectorySettings) -> LdapDirectory:
    """Store a validated directory for the unit ``unit_ref`` (id or slug).

    Raises :class:`DirectoryConfigError` for an unknown unit, a unit that already
    has a directory, an invalid setting, or a group map giving a role the unit does
    not define (``idp.units.registry.roles_for``).
    """
    unit = units.find(unit_ref)
    if unit is None:
        raise DirectoryConfigError(f"no business unit {unit_ref!r}")
    if ldap_repo.directory_for_unit(unit.id) is not None:
        raise DirectoryConfigError(
            f"unit {unit.slug!r} already has an LDAP directory; delete it first"
        )
    v = validate(s)
    try:
        units.validate_roles(unit, sorted(set((v.group_map or {}).values())))
    except units.UnitError as exc:
        raise DirectoryConfigError(f"group map: {exc}") from None
    directory_id = new_id()
    row = LdapDirectory(
        id=directory_id,
        unit_id=unit.id,
        url=v.url,
        start_tls=v.start_tls,
        ca_certificate=v.ca_pem,
        bind_dn=v.bind_dn,
        bind_password_sealed=services().sealer.seal(
            v.bind_password.encode(), _seal_context(directory_id)
        ),
        base_dn=v.base_dn,
        user_filter=v.user_filter,
        id_attribute=v.id_attribute,
        attribute_map=v.attribute_map or {},
        group_map=v.group_map or {},
        page_size=v.page_size,
        schedule_minutes=v.schedule_minutes,
        trust_email=v.trust_email,
        login_enabled=v.login_enabled,
    )
    try:
        with atomic():
            ldap_repo.add_directory(row)
    except Conflict:
        raise DirectoryConfigError(f"unit {unit.slug!r} already has an LDAP directory") from None
    return row


def for_unit(unit_ref: str) -> LdapDirectory:
    """The directory of unit ``unit_ref``, or :class:`DirectoryConfigError`."""
    unit = units.find(unit_ref)
    if unit is None:
        raise DirectoryConfigError(f"no business unit {unit_ref!r}")
    row = ldap_repo.directory_for_unit(unit.id)
    if row is None:
        raise DirectoryConfigError(f"unit {unit.slug!r} has no LDAP directory")
    return row


def connection_config(row: LdapDirectory) -> LdapConfig:
    """The connector settings of ``row`` with the bind password unsealed."""
    password = services().sealer.open(row.bind_password_sealed, _seal_context(row.id))
    return LdapConfig(
        url=row.url,
        bind_dn=row.bind_dn,
        bind_password=password.decode(),
        start_tls=row.start_tls,
        ca_pem=row.ca_certificate,
    )


def describe(row: LdapDirectory) -> dict[str, Any]:
    """A JSON-safe view of ``row``; never the password."""
    return {
        "id": row.id,
        "unit_id": row.unit_id,
        "url": row.url,
        "start_tls": row.start_tls,
        "ca_certificate": bool(row.ca_certificate),
        "bind_dn": row.bind_dn,
        "base_dn": row.base_dn,
        "filter": row.user_filter,
        "id_attribute": row.id_attribute,
        "attribute_map": row.attribute_map,
        "group_map": row.group_map,
        "page_size": row.page_size,
        "schedule_minutes": row.schedule_minutes,
        "trust_email": row.trust_email,
        "login_enabled": row.login_enabled,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "last_run_at": row.last_run_at.isoformat() if row.last_run_at else None,
        "last_run_summary": row.last_run_summary,
    }


def delete(row: LdapDirectory) -> None:
    """Delete the directory and its links; accounts and memberships stay as they are."""
    with atomic():
        ldap_repo.delete_directory(row)
