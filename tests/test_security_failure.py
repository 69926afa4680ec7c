"""SECURITY.md, Failure: "every error is logged with a request id" for the outage
answers of real endpoints (the 500 path is in tests/test_failures.py): with the
database or Redis really down, each 503 carries an ``X-Request-Id`` and the log has a
record naming that id, while the body names neither the store nor the library."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from idp.app import create_app
from idp.release import clients
from idp.store import migrate
from idp.store.db import db
from tests.support.apps import make_settings
from tests.support.backends import Backend
from tests.support.processes import RedisServer, free_port

REDIRECT = "http://127.0.0.1:5001/callback"
BASIC = {"Authorization": "Basic " + base64.b64encode(b"some-client:some-secret").decode()}
LEAKS = re.compile(r"Traceback|sqlalchemy|psycopg|redis|sqlite|OperationalError|127\.0\.0\.1",
                   re.IGNORECASE)


def dispose(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def assert_logged_503(resp: TestResponse, caplog: pytest.LogCaptureFixture) -> None:
    body = resp.get_data(as_text=True)
    assert resp.status_code == 503, body[:300]
    # (the header's language links repeat the request's own query: not a leak)
    assert LEAKS.search(body.split("</header>", 1)[-1]) is None, body
    rid = resp.headers["X-Request-Id"]
    assert (rid and rid in body) or resp.mimetype == "application/json"
    logged = [r for r in caplog.records if rid in r.getMessage()]
    assert logged and all(r.levelno >= logging.ERROR for r in logged), caplog.text[-500:]


def test_database_outage_answers_are_logged_with_their_request_id(
    migrated: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"postgresql+psycopg://unitgate@127.0.0.1:{free_port()}/unitgate"
    app = create_app(make_settings(migrated, database_url=url, redis_url=None))
    caplog.set_level(logging.ERROR, logger="idp")
    try:
        client = app.test_client()
        for resp in (
            client.get("/jwks"),
            client.post("/token", data={"grant_type": "authorization_code", "code": "x"},
                        headers=BASIC),
            client.get("/scim/v2/Users", headers={"Authorization": "Bearer ugscim_" + "x" * 43}),
            client.get("/authorize?client_id=x", headers={"Accept": "text/html"}),
        ):
            assert_logged_503(resp, caplog)
    finally:
        dispose(app)


def test_redis_outage_answers_are_logged_with_their_request_id(
    migrated: Backend, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(migrated, redis_url=redis_server.url))
    caplog.set_level(logging.ERROR, logger="idp")
    try:
        with app.app_context():
            registered, secret = clients.register("Outage Shop", [REDIRECT], actor="test")
            client_id = registered.client_id
        assert secret
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        redis_server.stop()
        resp = client.get("/readyz", headers={"X-Request-Id": "outage-42"})
        assert resp.status_code == 503 and resp.headers["X-Request-Id"] == "outage-42"
        authorize = client.get("/authorize", headers={"Accept": "text/html"}, query_string={
            "response_type": "code", "client_id": client_id,
            "redirect_uri": REDIRECT, "scope": "openid", "state": "s"})  # fmt: skip
        assert_logged_503(authorize, caplog)
    finally:
        dispose(app)


def test_database_outage_recovers_without_restart(
    migrated: Backend, tmp_path: Path
) -> None:
    """"recover without restart" for the database: an app whose SQLite file cannot be
    opened answers 503; once the file is there (created and migrated by an operator)
    the same app object serves again — no code was accepted meanwhile."""
    folder = tmp_path / "later"
    url = f"sqlite:///{folder / 'unitgate.db'}"
    app = create_app(make_settings(migrated, database_url=url, redis_url=None))
    try:
        client = app.test_client()
        assert client.get("/readyz").status_code == 503
        assert client.get("/jwks").status_code == 503
        folder.mkdir()
        migrate.upgrade(url)
        assert client.get("/readyz").status_code == 200
        jwks = client.get("/jwks")
        assert jwks.status_code == 200 and isinstance(jwks.get_json()["keys"], list)
    finally:
        dispose(app)
