"""SECURITY.md "Sessions" through the e-mail-code login: cookie entropy and flags, a
new id at every login, idle and absolute timeouts, blocking ends everything."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from idp.accounts import lifecycle as accounts
from idp.mail.outbox import courier
from idp.store.db import db
from idp.store.models import Account, AuditEvent, Grant, Session, utcnow
from tests.support.login import (
    add_protocol_stand_in,
    code_from_outbox,
    path_of,
    stand_in_merchant,
    start,
    submit_code,
    submit_email,
)

EMAIL = "ann@corp.example"


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    add_protocol_stand_in(app)
    yield client
    courier(app).drain()


def make_account(app: Flask) -> str:
    with app.app_context():
        account = Account(email=EMAIL, email_verified=True, given_name="Ann",
                          family_name="Example")
        db.session.add(account)
        db.session.commit()
        return account.id


def sign_in(app: Flask, web: FlaskClient, **kwargs: object) -> TestResponse:
    """A full e-mail-code login; returns the code POST's response (it sets the cookie)."""
    login = start(web, prompt="login", **kwargs)  # type: ignore[arg-type]
    submit_email(web, login, EMAIL, **kwargs)  # type: ignore[arg-type]
    resp = submit_code(web, login, code_from_outbox(app, EMAIL), **kwargs)  # type: ignore[arg-type]
    assert resp.status_code == 303 and not path_of(resp).endswith("/code")
    return resp


def session_cookie(resp: TestResponse) -> str:
    found = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith("ug_session=")]
    assert len(found) == 1
    return found[0]


def whoami(web: FlaskClient) -> str | None:
    return web.get("/_test/session").get_json()["account_id"]  # type: ignore[no-any-return]


def test_session_id_has_at_least_128_bits_and_safe_flags(app: Flask, web: FlaskClient) -> None:
    make_account(app)
    header = session_cookie(sign_in(app, web))
    value = header.split(";", 1)[0].split("=", 1)[1]
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    assert len(raw) * 8 >= 128
    flags = [p.strip().lower() for p in header.split(";")[1:]]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "secure" not in flags  # this test app runs with IDP_SECURE_COOKIES=false


@pytest.mark.parametrize("settings_overrides", [{"secure_cookies": True}])
def test_secure_flag_when_configured(app: Flask, web: FlaskClient) -> None:
    make_account(app)
    resp = sign_in(app, web, base_url="https://localhost")
    flags = [p.strip().lower() for p in session_cookie(resp).split(";")[1:]]
    assert "secure" in flags and "httponly" in flags


def test_only_the_keyed_hash_of_the_session_id_is_stored(app: Flask, web: FlaskClient) -> None:
    make_account(app)
    value = session_cookie(sign_in(app, web)).split(";", 1)[0].split("=", 1)[1]
    with app.app_context():
        hashes = list(db.session.scalars(select(Session.id_hash)))
    assert len(hashes) == 1 and value not in hashes[0] and len(hashes[0]) == 64


def test_new_session_id_at_every_login(app: Flask, web: FlaskClient) -> None:
    account_id = make_account(app)
    first = session_cookie(sign_in(app, web)).split(";")[0]
    second = session_cookie(sign_in(app, web)).split(";")[0]
    assert first != second
    with app.app_context():
        rows = list(db.session.scalars(select(Session).where(Session.account_id == account_id)))
    assert len(rows) == 1  # the browser's previous session ended
    assert whoami(web) == account_id


def test_idle_timeout(app: Flask, web: FlaskClient) -> None:
    account_id = make_account(app)
    sign_in(app, web)
    assert whoami(web) == account_id
    idle = app.extensions["unitgate"].settings.session_idle_minutes
    with app.app_context():
        db.session.execute(update(Session).values(
            last_seen_at=utcnow() - timedelta(minutes=idle, seconds=1)))
        db.session.commit()
    assert whoami(web) is None
    with app.app_context():
        assert list(db.session.scalars(select(Session))) == []


def test_absolute_timeout(app: Flask, web: FlaskClient) -> None:
    account_id = make_account(app)
    sign_in(app, web)
    with app.app_context():
        row = db.session.scalars(select(Session)).one()
        hours = app.extensions["unitgate"].settings.session_absolute_hours
        assert row.expires_at - row.created_at == timedelta(hours=hours)
        # in use all along (never idle), but the absolute lifetime is over
        db.session.execute(update(Session).values(
            created_at=utcnow() - timedelta(hours=hours), last_seen_at=utcnow(),
            expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert whoami(web) is None
    assert account_id


def test_live_session_skips_the_code(app: Flask, web: FlaskClient) -> None:
    account_id = make_account(app)
    sign_in(app, web)
    login = start(web)  # the protocol side found the live session
    resp = web.get(login)
    assert resp.status_code == 303 and not path_of(resp).endswith(login)
    assert whoami(web) == account_id


def test_block_ends_sessions_and_grants_and_stops_sign_in(app: Flask, web: FlaskClient) -> None:
    account_id = make_account(app)
    sign_in(app, web)
    with app.app_context():
        db.session.add(Grant(account_id=account_id, client_id="shop-1", scope="openid",
                             merchant_id=stand_in_merchant("shop-1"),
                             expires_at=utcnow() + timedelta(days=1)))
        db.session.commit()
    assert whoami(web) == account_id
    with app.app_context():
        assert accounts.block("Ann@Corp.Example") is True
        assert db.session.scalars(select(Grant)).one().revoked_at is not None
        account = db.session.get(Account, account_id)
        assert account is not None and account.status == "blocked"
        actions = set(db.session.scalars(select(AuditEvent.action)))
        assert "account.block" in actions
    assert whoami(web) is None
    # a blocked account gets the same code page but its mail carries no code
    login = start(web, prompt="login")
    assert path_of(submit_email(web, login, EMAIL)) == login + "/code"
    template, text = newest_mail(app)
    assert template == "locked" and not re.search(r"\b\d{6}\b", text)
    with app.app_context():
        assert accounts.unblock(EMAIL) is True
        account = db.session.get(Account, account_id)
        assert account is not None and account.status == "active"
    sign_in(app, web)
    assert whoami(web) == account_id


def newest_mail(app: Flask) -> tuple[str, str]:
    """Template name and text body of the newest outbox message."""
    from idp.mail.outbox import open_body
    from idp.store import outbox_repo

    courier(app).drain()
    with app.app_context():
        newest = outbox_repo.recent(1)[0]
        body = open_body(newest)
        assert body is not None
        return str(newest.payload["template"]), body["text"]


def test_unknown_accounts_for_admin_levers(app: Flask) -> None:
    with app.app_context():
        assert accounts.block("ghost@corp.example") is False
        assert accounts.unblock("ghost@corp.example") is False
        assert accounts.unlock("not an address") is False


def test_unblock_leaves_directory_deactivation_alone(app: Flask) -> None:
    account_id = make_account(app)
    with app.app_context():
        db.session.execute(update(Account).values(status="deactivated"))
        db.session.commit()
        assert accounts.unblock(EMAIL) is True
        account = db.session.get(Account, account_id)
        assert account is not None and account.status == "deactivated"
