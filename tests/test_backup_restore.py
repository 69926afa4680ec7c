"""Backup and restore of PostgreSQL (docs/operations.md, "Backups and restore"): a
database filled through the services (a unit with an access, a client, a consent, a
session, tokens) is dumped with ``pg_dump -Fc`` and restored with ``pg_restore`` into a
new database; an app on the restored database with the same master key knows the
session, refreshes the refresh token, and verifies the access token issued before the
backup (the signing keys were restored). Flushing Redis as well loses only what was in
flight: an interaction started before cannot be resumed; nothing else changes."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt

from idp.app import create_app
from idp.interaction import sessions
from tests.support.apps import clean, make_settings
from tests.support.backends import Backend, fresh_postgres
from tests.support.oidc import (
    auth_params,
    exchange,
    interaction_id,
    make_account,
    make_unit,
    query,
    refresh,
    register,
    served_keys,
    sign_in,
    start_session,
)


def copy_cookies(source: FlaskClient, target: FlaskClient) -> None:
    for cookie in source._cookies.values():
        target.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as pg_dump understands it (no driver name)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def restored_url(migrated: Backend) -> Iterator[str]:
    if not migrated.is_postgres:
        pytest.skip("pg_dump and pg_restore are PostgreSQL's")
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump/pg_restore not installed")
    with fresh_postgres("unitgate_restore") as url:
        yield url


def test_pg_dump_and_restore_keep_sign_ins_sessions_and_keys(
    app: Flask, migrated: Backend, restored_url: str, tmp_path: Path
) -> None:
    account_id = make_account(app, "backup@corp.example")
    unit_id = make_unit(app, account_id)
    rp = register(app)
    web = app.test_client()
    tokens = exchange(web, rp, sign_in(app, web, rp, account_id, unit_id=unit_id,
                                       scope="openid email org offline_access")).get_json()
    assert "refresh_token" in tokens and "access_token" in tokens, tokens
    browser = app.test_client()
    start_session(app, browser, account_id)
    session_cookie = browser.get_cookie(sessions.COOKIE, domain="localhost")
    assert session_cookie is not None
    in_flight = app.test_client()
    ix = interaction_id(in_flight.get("/authorize", query_string=auth_params(rp)))

    dump = tmp_path / "unitgate.dump"
    subprocess.run(["pg_dump", "-Fc", "--no-owner", "-f", str(dump),
                    libpq_url(migrated.database_url)], check=True, timeout=60)
    subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "-d",
                    libpq_url(restored_url), str(dump)], check=True, timeout=60)

    restored = create_app(make_settings(migrated, database_url=restored_url))
    restored.config["TESTING"] = True
    # The old database and Redis are gone: only the restored database and an empty
    # Redis remain.
    clean(app)
    web2 = restored.test_client()

    # Tokens: the access token issued before verifies against the restored JWKS, the
    # refresh token (stored hashed) refreshes, the client secret still authenticates.
    claims = jwt.decode(tokens["access_token"], served_keys(web2)).claims
    assert claims["sub"]
    resp = refresh(web2, rp, tokens["refresh_token"])
    assert resp.status_code == 200, resp.get_data(as_text=True)
    info = web2.get("/userinfo",
                    headers={"Authorization": "Bearer " + resp.get_json()["access_token"]})
    assert info.status_code == 200 and info.get_json()["email"] == "backup@corp.example"

    # The session and its consent: a silent sign-in gives a code at once.
    browser2 = restored.test_client()
    browser2.set_cookie(session_cookie.key, session_cookie.value, domain="localhost")
    silent = auth_params(rp, prompt="none", scope="openid email")
    resp = browser2.get("/authorize", query_string=silent)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert "code" in query(resp), resp.headers["Location"]

    # In flight: the interaction started before the backup lived in Redis only; it is
    # gone, answered with a page (never a 500, never a code).
    resumed = restored.test_client()
    copy_cookies(in_flight, resumed)
    resp = resumed.get(f"/authorize/resume/{ix}")
    assert resp.status_code < 500
    assert "code=" not in resp.headers.get("Location", "")

    with restored.app_context():
        from idp.store.db import db

        db.session.remove()
        db.engine.dispose()
