"""LDAP bind as a login method: the password check against a real slapd."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from idp.ldap import sync as ldap_sync
from idp.login import ldap_bind as login_ldap
from idp.store import ldap_repo
from idp.store.db import db
from idp.store.models import Account, AuditEvent
from tests.support import slapd as ldap_test


def synced(app: Flask, directory_id: str, login: bool = True) -> None:
    with app.app_context():
        directory = ldap_repo.directory(directory_id)
        assert directory is not None
        directory.login_enabled = login
        db.session.commit()
        ldap_sync.run_locked(directory)


def account(n: int) -> Account:
    row = db.session.scalars(
        select(Account).where(Account.email == f"{ldap_test.uid(n)}@acme.example")
    ).one()
    return row


def test_right_password_passes_wrong_and_empty_fail(app: Flask, directory_id: str) -> None:
    synced(app, directory_id)
    with app.app_context():
        a = account(2)
        assert login_ldap.available_for(a)
        assert login_ldap.verify_password(a, ldap_test.password_of(2)) is True
        assert login_ldap.verify_password(a, ldap_test.password_of(3)) is False
        assert login_ldap.verify_password(a, "") is False
        failed = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "login.ldap_password_failed")
        ).all()
        assert [e.target for e in failed] == [a.id]


def test_empty_password_never_reaches_the_directory(app: Flask, directory_id: str) -> None:
    synced(app, directory_id)
    with app.app_context():
        directory = ldap_repo.directory(directory_id)
        assert directory is not None
        directory.url = f"ldap://127.0.0.1:{ldap_test.free_port()}"  # nobody listens
        db.session.commit()
        a = account(2)
        assert login_ldap.verify_password(a, "") is False  # no network, so no error
        with pytest.raises(login_ldap.LdapLoginUnavailable, match="cannot reach"):
            login_ldap.verify_password(a, ldap_test.password_of(2))


def test_not_offered_unless_the_directory_enables_login(app: Flask, directory_id: str) -> None:
    synced(app, directory_id, login=False)
    with app.app_context():
        a = account(2)
        assert not login_ldap.available_for(a)
        assert login_ldap.verify_password(a, ldap_test.password_of(2)) is False


def test_deactivated_and_outside_accounts_cannot_use_it(
    app: Flask, directory_id: str, directory_server: ldap_test.Slapd
) -> None:
    synced(app, directory_id)
    directory_server.disable(5)
    synced(app, directory_id)
    with app.app_context():
        a = account(5)
        assert a.status == "deactivated"
        assert login_ldap.verify_password(a, ldap_test.password_of(5)) is False
        stranger = Account(email="someone@else.example")
        db.session.add(stranger)
        db.session.commit()
        assert login_ldap.verify_password(stranger, "anything") is False


def test_wrong_passwords_are_throttled_per_account(app: Flask, directory_id: str) -> None:
    synced(app, directory_id)
    with app.app_context():
        a, b = account(2), account(3)
        for _ in range(login_ldap.MAX_FAILURES):
            assert login_ldap.verify_password(a, "wrong") is False
        assert login_ldap.throttled(a)
        # Even the right password is not tried now: the directory is left alone.
        assert login_ldap.verify_password(a, ldap_test.password_of(2)) is False
        assert login_ldap.verify_password(b, ldap_test.password_of(3)) is True
