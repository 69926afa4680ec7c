"""A sync run the directory stops (bind refused, server unreachable) is recorded as
the directory's last run, with its cause in words an admin understands, and shown on
the console's LDAP page and by ``idp ldap list`` / ``show``; never the bind password,
never a trace. Against the real slapd of ``tests/support/slapd.py``."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from idp.accounts import accesses
from idp.cli import main
from idp.ldap import directories as ldap_directories
from idp.ldap import sync as ldap_sync
from idp.store.db import db
from idp.store.models import AuditEvent, LdapDirectory
from idp.store.unit_of_work import atomic
from tests.support import slapd as ldap_test
from tests.support.ldap_fixtures import directory_settings
from tests.support.oidc import make_account, start_session

WRONG = "not-the-sync-password-4711"


@pytest.fixture
def admin(app: Flask, client: FlaskClient, unit_id: str) -> FlaskClient:
    """The browser of the unit's main user."""
    ada = make_account(app, "ada@acme.example")
    with app.app_context(), atomic():
        accesses.create(ada, unit_id, ["main_user"], "test", event=None)
    start_session(app, client, ada)
    return client


def add(app: Flask, server: ldap_test.Slapd, **overrides: object) -> str:
    with app.app_context():
        row = ldap_directories.create(
            "acme", directory_settings(server, **overrides)  # type: ignore[arg-type]
        )
        return row.id


def last_summary(app: Flask, directory_id: str) -> dict[str, object]:
    with app.app_context():
        row = db.session.get(LdapDirectory, directory_id)
        assert row is not None and row.last_run_at is not None
        return dict(row.last_run_summary or {})


def test_a_refused_bind_is_recorded_and_shown_without_the_password(
    app: Flask, runner: FlaskCliRunner, admin: FlaskClient, unit_id: str,
    directory_server: ldap_test.Slapd,
) -> None:
    directory_id = add(app, directory_server, bind_password=WRONG)
    page = f"/admin/units/{unit_id}/ldap"
    assert "No run has completed yet." in admin.get(page).get_data(as_text=True)

    result = runner.invoke(main, args=["ldap", "sync", "--unit", "acme"])
    assert result.exit_code == 1 and "invalid credentials" in result.output

    summary = last_summary(app, directory_id)
    assert summary["failure"] == "credentials"
    assert "invalid credentials" in str(summary["failed"])
    assert ldap_test.SYNC_DN in str(summary["failed"]) and WRONG not in json.dumps(summary)
    with app.app_context():
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "ldap.sync_failed")).one()
        assert event.unit_id == unit_id and WRONG not in json.dumps(event.details)

    html = admin.get(page).get_data(as_text=True)
    assert "failed." in html and "refused the service account's sign-in" in html
    assert "invalid credentials" in html
    assert WRONG not in html and "Traceback" not in html
    assert "Entries read" not in html  # nothing was read: no counts to show
    german = admin.get(page, headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "verweigerte die Anmeldung des Dienstkontos" in german

    listed = runner.invoke(main, args=["ldap", "list"])
    assert "FAILED: bind as" in listed.output and WRONG not in listed.output
    shown = runner.invoke(main, args=["ldap", "show", "--unit", "acme", "--json"])
    assert json.loads(shown.output)["last_run_summary"]["failure"] == "credentials"

    # a dry run records nothing
    with app.app_context():
        row = db.session.get(LdapDirectory, directory_id)
        assert row is not None
        with pytest.raises(ldap_sync.SyncError):
            ldap_sync.run_locked(row, dry_run=True)
    assert db_events(app) == 1


def db_events(app: Flask) -> int:
    with app.app_context():
        return len(db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "ldap.sync_failed")).all())


def test_an_unreachable_directory_replaces_the_last_completed_run(
    app: Flask, admin: FlaskClient, unit_id: str, directory_server: ldap_test.Slapd,
) -> None:
    directory_id = add(app, directory_server)
    with app.app_context():
        row = db.session.get(LdapDirectory, directory_id)
        assert row is not None
        done = ldap_sync.run_locked(row)
    assert done.created > 0
    page = f"/admin/units/{unit_id}/ldap"
    assert "Finished" in admin.get(page).get_data(as_text=True)

    with app.app_context():
        row = db.session.get(LdapDirectory, directory_id)
        assert row is not None
        row.url = f"ldap://127.0.0.1:{ldap_test.free_port()}"  # nobody listens there
        db.session.commit()
        with pytest.raises(ldap_sync.SyncError, match="cannot reach"):
            ldap_sync.run_locked(row)
    summary = last_summary(app, directory_id)
    assert summary["failure"] == "unreachable" and summary["entries"] == 0
    html = admin.get(page).get_data(as_text=True)
    assert "The directory server could not be reached" in html
    assert "cannot reach LDAP server" in html and "Finished" not in html
