"""``idp demo``: idempotent seeding of the demo unit, merchant client and membership."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from idp.cli import main
from idp.config import demo
from idp.release import clients
from idp.store.db import db
from idp.store.models import Access, Account, Client, Unit, UnitProfileField


def run_demo(runner: FlaskCliRunner, *extra: str) -> dict[str, Any]:
    result = runner.invoke(main, ["demo", "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def count(model: type, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_demo_seeds_once_and_issues_a_working_secret(app: Flask, runner: FlaskCliRunner) -> None:
    first = run_demo(runner)
    assert first["unit_created"] is True and first["client_created"] is True
    assert first["membership"] == "missing"
    assert first["redirect_uri"] == "http://127.0.0.1:5001/callback"
    assert first["authorize_url"].startswith("http://localhost/authorize?")
    assert f"client_id={first['client_id']}" in first["authorize_url"]

    second = run_demo(runner)
    assert second["unit_created"] is False and second["client_created"] is False
    assert second["unit_id"] == first["unit_id"]
    assert second["client_id"] == first["client_id"]
    assert second["client_secret"] != first["client_secret"]

    with app.app_context():
        assert count(Unit, Unit.slug == "acme-demo") == 1
        unit = db.session.scalars(select(Unit).where(Unit.slug == "acme-demo")).one()
        assert unit.name == "Acme Demo GmbH"
        assert count(UnitProfileField, UnitProfileField.unit_id == unit.id) == 2
        assert count(Client, Client.name == demo.CLIENT_NAME) == 1
        client = clients.get(first["client_id"])
        assert client is not None
        assert client.redirect_uris == ["http://127.0.0.1:5001/callback"]
        assert "client_credentials" in client.grant_types
        # Only the newest secret works; it is stored as a keyed hash, never in clear.
        assert client.secret_hash and second["client_secret"] not in client.secret_hash
        info = clients.lookup(first["client_id"])
        assert info is not None
        assert info.check_secret(second["client_secret"])
        assert not info.check_secret(first["client_secret"])


def test_demo_adds_membership_only_for_an_existing_account(
    app: Flask, runner: FlaskCliRunner
) -> None:
    email = "jane@acme-demo.example"
    assert run_demo(runner, "--employee-email", email)["membership"] == "missing"
    with app.app_context():
        assert count(Account, Account.email == email) == 0
        db.session.add(Account(email=email, email_verified=True, given_name="Jane"))
        db.session.commit()
    assert run_demo(runner, "--employee-email", email)["membership"] == "created"
    assert run_demo(runner, "--employee-email", email)["membership"] == "present"
    with app.app_context():
        account = db.session.scalars(select(Account).where(Account.email == email)).one()
        assert count(Access, Access.account_id == account.id) == 1
        assert account.accesses[0].roles == ["employee"]


def test_demo_text_output_says_what_to_try(runner: FlaskCliRunner) -> None:
    result = runner.invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "client_id:" in out and "client_secret:" in out
    assert "/dev/outbox" in out
    assert "http://localhost/authorize?" in out
    assert "http://localhost/token" in out


def test_demo_domain_lets_new_employees_join_at_first_sign_in(
    app: Flask, runner: FlaskCliRunner
) -> None:
    """The demo unit owns acme-demo.example (verified by hand, audited) with auto-join,
    so the first e-mail-code sign-in of such an address lands in the unit."""
    from idp.domains import registry as domains
    from idp.domains import rules as domain_rules
    from idp.store.models import AuditEvent

    first = run_demo(runner)
    run_demo(runner)  # idempotent
    with app.app_context():
        domain = domains.get("acme-demo.example")
        assert domain.state == "verified" and domain.verified_method == "manual"
        assert domain.unit_id == first["unit_id"]
        assert domain_rules.membership_for_email("new.hire@acme-demo.example") == (
            first["unit_id"],
            ["employee"],
        )
        assert count(AuditEvent, AuditEvent.action == "domain.verified") == 1
