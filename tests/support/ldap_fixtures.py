"""Fixtures for the LDAP tests: a real slapd with 1,200 AD-like users, a unit, and
that unit's directory configuration pointing at the slapd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.support import slapd as ldap_test
from tests.support.backends import missing

USERS = 1200


@pytest.fixture(scope="session")
def slapd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ldap_test.Slapd]:
    """One slapd per test session, loaded with :func:`default_population`."""
    reason = ldap_test.available()
    if reason:
        missing(reason)
    server = ldap_test.Slapd(tmp_path_factory.mktemp("slapd"))
    try:
        server.load(ldap_test.population_entries(ldap_test.default_population(USERS)))
    except RuntimeError as exc:
        server.stop()
        missing(f"slapd does not start: {exc}")
    yield server
    server.stop()


@pytest.fixture
def directory_server(slapd_server: ldap_test.Slapd) -> ldap_test.Slapd:
    """The session's slapd, reloaded first when an earlier test changed it."""
    if slapd_server.dirty:
        slapd_server.load(ldap_test.population_entries(ldap_test.default_population(USERS)))
    return slapd_server


def verify_domain(unit_ref: str, name: str) -> None:
    """Claim ``name`` for the unit and verify it by hand, as an operator does with
    ``idp domains claim`` and ``idp domains verify --manual`` (inside an app context)."""
    from idp.domains import registry as domains

    domains.claim(unit_ref, name, actor="test")
    domains.verify_manually(name, reason="test fixture", actor="test")


@pytest.fixture
def unit_id(app: Flask) -> str:
    """A business unit ``acme`` with the permission groups ``buyer`` and ``approver``
    that verified ``acme.example``, the domain of the directory's addresses (a sync
    provisions only addresses in its unit's verified domains)."""
    from idp.store.db import db
    from idp.store.models import PermissionGroup, Unit

    with app.app_context():
        unit = Unit(name="ACME Example", slug="acme", permission_group_rows=[
            PermissionGroup(name="buyer"), PermissionGroup(name="approver")])
        db.session.add(unit)
        db.session.commit()
        verify_domain(unit.id, ldap_test.MAIL_DOMAIN)
        return unit.id


GROUP_MAP = {
    ldap_test.group_dn("buyers"): "buyer",
    "approvers": "approver",  # a bare CN works too
}


def directory_settings(server: ldap_test.Slapd, **overrides: object) -> object:
    from idp.ldap.directories import DirectorySettings

    values: dict[str, object] = {
        "url": server.url,
        "bind_dn": ldap_test.SYNC_DN,
        "bind_password": ldap_test.SYNC_PASSWORD,
        "base_dn": ldap_test.PEOPLE,
        "user_filter": "(objectClass=inetOrgPerson)",
        "group_map": dict(GROUP_MAP),
        "page_size": 500,
    }
    values.update(overrides)
    return DirectorySettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def directory_id(app: Flask, unit_id: str, directory_server: ldap_test.Slapd) -> str:
    """The unit's directory: the slapd over plain loopback LDAP, buyers and approvers
    mapped to roles, 500 entries per page."""
    from idp.ldap import directories as ldap_directories

    with app.app_context():
        row = ldap_directories.create("acme", directory_settings(directory_server))  # type: ignore[arg-type]
        return row.id


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "bind-password"
    path.write_text(ldap_test.SYNC_PASSWORD + "\n")
    return path
