"""SECURITY.md "Failure" for the SAML endpoints: with the ephemeral store (a real,
private Redis) down, an AuthnRequest is answered 503 without detail and nothing is
posted (fail closed: the replay check cannot be skipped); after Redis is back the
same app answers again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from idp.app import create_app
from idp.config import bootstrap
from idp.saml import registry
from idp.store.db import db
from tests.support import oidc, saml_flow
from tests.support.apps import clean, make_settings
from tests.support.backends import Backend
from tests.support.processes import RedisServer
from tests.support.saml_sp import ServiceProvider


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_app(migrated: Backend, redis_server: RedisServer) -> Iterator[Flask]:
    app = create_app(make_settings(migrated, redis_url=redis_server.url))
    app.config["TESTING"] = True
    clean(app)
    bootstrap.ensure_keys(app)
    oidc.ensure_login_endpoint(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_redis_down_fails_closed_and_recovers(redis_app: Flask, redis_server: RedisServer) -> None:
    client = redis_app.test_client()
    sp = ServiceProvider(saml_flow.idp_metadata(client), host="outage.example")
    with redis_app.app_context():
        registry.register(sp.metadata(), actor="test")

    redis_server.stop()
    url, _ = sp.login_redirect()
    resp = saml_flow.get_url(client, url)
    assert resp.status_code == 503
    body = resp.get_data(as_text=True)
    assert "<form" not in body and "SAMLResponse" not in body
    assert "Traceback" not in body and "redis" not in body.lower()

    redis_server.start()
    # the request was never recorded, so it is not a replay now
    assert oidc.is_login_redirect(redis_app, saml_flow.get_url(client, url))
    assert saml_flow.get_url(client, url).status_code == 400
