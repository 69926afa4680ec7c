"""``idp accounts unlock|block|unblock EMAIL``: an administrator's levers."""

from __future__ import annotations

import json
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from idp.cli import main
from idp.store.db import db
from idp.store.models import Account, Session, utcnow

EMAIL = "locked.out@acme.example"


def add_account(app: Flask, **values: object) -> str:
    with app.app_context():
        account = Account(email=EMAIL, email_verified=True, given_name="Lou", **values)
        db.session.add(account)
        db.session.commit()
        return account.id


def add_session(app: Flask, account_id: str, name: str) -> None:
    with app.app_context():
        db.session.add(
            Session(
                id_hash=f"test-session-{name}",
                account_id=account_id,
                amr=["otp"],
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
        db.session.commit()


def account(app: Flask) -> Account:
    with app.app_context():
        row = db.session.scalars(select(Account).where(Account.email == EMAIL)).one()
        db.session.expunge(row)
        return row


def sessions_of(app: Flask, account_id: str) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(Session).where(Session.account_id == account_id)
        )


def test_unlock_lifts_the_lockout(app: Flask, runner: FlaskCliRunner) -> None:
    add_account(app, failed_code_attempts=100, locked_at=utcnow())
    result = runner.invoke(main, ["accounts", "unlock", "  Locked.Out@ACME.example "])
    assert result.exit_code == 0, result.output
    assert "unlocked" in result.output
    row = account(app)
    assert row.locked_at is None and row.failed_code_attempts == 0


def test_block_ends_sessions_and_unblock_restores(app: Flask, runner: FlaskCliRunner) -> None:
    account_id = add_account(app)
    add_session(app, account_id, "a")
    add_session(app, account_id, "b")
    assert sessions_of(app, account_id) == 2

    result = runner.invoke(main, ["accounts", "block", EMAIL, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"email": EMAIL, "action": "block", "done": True}
    assert account(app).status == "blocked"
    assert sessions_of(app, account_id) == 0

    result = runner.invoke(main, ["accounts", "unblock", EMAIL])
    assert result.exit_code == 0, result.output
    assert account(app).status == "active"


def test_unknown_or_malformed_address_is_a_clear_error(runner: FlaskCliRunner) -> None:
    for action in ("unlock", "block", "unblock"):
        for email in ("nobody@acme.example", "not an address"):
            result = runner.invoke(main, ["accounts", action, email])
            assert result.exit_code != 0
            assert "no account" in result.output
            assert result.exception is None or isinstance(result.exception, SystemExit)
