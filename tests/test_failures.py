"""Failure behaviour (SECURITY.md "Failure"): Redis or the database down gives a clear
503 (JSON for API clients, an HTML page for browsers), fails closed, recovers without
a restart; no response ever carries a stack trace or internal detail; every response
carries a request id that the log repeats.

The outages are real: a private ``redis-server`` this test starts and stops, a
PostgreSQL URL pointing at a closed port, a SQLite file that cannot be opened.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Blueprint, Flask, Response, jsonify, render_template_string, request
from flask.testing import FlaskClient

from idp.app import create_app, csrf
from idp.crypto.primitives import random_token
from idp.services import ephemeral, keyring
from idp.store.db import db
from tests.support.apps import make_settings
from tests.support.backends import Backend
from tests.support.processes import RedisServer, free_port

LEAKS = re.compile(
    r"Traceback|File \"|sqlalchemy|psycopg|sqlite3|OperationalError|redis\.|"
    r"ConnectionError|Errno|\.py\b|hunter2|/etc/",
    re.IGNORECASE,
)
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


def probe_blueprint() -> Blueprint:
    """Routes that use the stores exactly the way feature code does: a rate-limit
    counter and an atomic single-use redemption (ephemeral store), the key set
    (database), and an unexpected crash."""
    bp = Blueprint("failure_probe", __name__)

    @bp.post("/probe/redeem/<code>")
    def redeem(code: str) -> Response:
        request.form.get("unused")  # read the body like a real form endpoint
        tries = ephemeral().incr(f"probe-tries:{code}", 60)
        if tries > 5:
            return jsonify({"accepted": False, "reason": "throttled"})
        accepted = ephemeral().take(f"probe-code:{code}") is not None
        return jsonify({"accepted": accepted})

    @bp.get("/probe/page")
    def page() -> str:
        ephemeral().incr("probe-page-views", 60)
        return render_template_string(
            "<!doctype html><p>{{ n }} keys</p>", n=len(keyring().jwks()["keys"])
        )

    @bp.get("/probe/crash")
    def crash() -> Response:
        raise RuntimeError("internal detail: /etc/unitgate password=hunter2")

    csrf.exempt(bp)  # an API-style probe, like the token endpoint
    return bp


def with_probes(app: Flask) -> Flask:
    app.register_blueprint(probe_blueprint())
    return app


def assert_clean(body: str) -> None:
    leak = LEAKS.search(body)
    assert leak is None, f"response leaks internal detail {leak.group(0)!r}: {body[:300]}"


def assert_unavailable(resp: object, kind: str) -> None:
    assert resp.status_code == 503  # type: ignore[attr-defined]
    body = resp.get_data(as_text=True)  # type: ignore[attr-defined]
    assert_clean(body)
    assert resp.headers["Retry-After"]  # type: ignore[attr-defined]
    if kind == "json":
        assert resp.mimetype == "application/json"  # type: ignore[attr-defined]
        assert resp.get_json()["error"] == "temporarily_unavailable"  # type: ignore[attr-defined]
    else:
        assert resp.mimetype == "text/html"  # type: ignore[attr-defined]
        assert "temporarily unavailable" in body
        assert "<html" in body.lower()


def dispose(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# -- Redis down ---------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_app(migrated: Backend, redis_server: RedisServer) -> Iterator[Flask]:
    app = with_probes(create_app(make_settings(migrated, redis_url=redis_server.url)))
    yield app
    dispose(app)


def seed_code(app: Flask) -> str:
    code = random_token(8)
    with app.app_context():
        ephemeral().put(f"probe-code:{code}", {"ok": True}, 60)
    return code


def test_redis_down_answers_503_fails_closed_and_recovers(
    redis_app: Flask, redis_server: RedisServer
) -> None:
    client = redis_app.test_client()
    assert client.get("/readyz").status_code == 200
    code = seed_code(redis_app)

    redis_server.stop()
    resp = client.post(f"/probe/redeem/{code}", headers=JSON)
    assert_unavailable(resp, "json")
    assert_unavailable(client.get("/probe/page", headers=HTML), "html")
    health = client.get("/readyz")
    assert health.status_code == 503 and health.get_json()["status"] == "unavailable"
    assert health.get_json()["checks"]["ephemeral"] == "unavailable"
    assert client.get("/healthz").status_code == 200  # liveness asks no dependency

    # Same app object, no restart: the store answers again once Redis is back.
    redis_server.start()
    assert client.get("/readyz").status_code == 200
    assert client.get("/probe/page", headers=HTML).status_code == 200
    # Fail closed: nothing was accepted during the outage (the code was not stored in
    # the fresh Redis, so it is unknown now, never silently "valid").
    fresh = seed_code(redis_app)
    assert client.post(f"/probe/redeem/{fresh}").get_json() == {"accepted": True}
    assert client.post(f"/probe/redeem/{fresh}").get_json() == {"accepted": False}
    assert client.post(f"/probe/redeem/{code}").get_json() == {"accepted": False}


def test_redis_down_never_skips_a_rate_limit(redis_app: Flask, redis_server: RedisServer) -> None:
    client = redis_app.test_client()
    code = seed_code(redis_app)
    redis_server.stop()
    for _ in range(8):
        resp = client.post(f"/probe/redeem/{code}", headers=JSON)
        assert resp.status_code == 503
        assert "accepted" not in resp.get_data(as_text=True)


# -- database down ------------------------------------------------------------------


def dead_postgres_url() -> str:
    return f"postgresql+psycopg://unitgate@127.0.0.1:{free_port()}/unitgate"


@pytest.fixture(params=["postgres-closed-port", "sqlite-unopenable"])
def dead_db_app(
    request: pytest.FixtureRequest, migrated: Backend, tmp_path: Path
) -> Iterator[Flask]:
    """An app whose database (and so its SQL ephemeral store) cannot be reached."""
    if request.param == "postgres-closed-port":
        url = dead_postgres_url()
    else:
        url = f"sqlite:///{tmp_path / 'missing-dir' / 'sub' / 'unitgate.db'}"
    app = with_probes(create_app(make_settings(migrated, database_url=url, redis_url=None)))
    yield app
    dispose(app)


def test_database_down_answers_503_without_detail(dead_db_app: Flask) -> None:
    client = dead_db_app.test_client()
    assert_unavailable(client.get("/jwks"), "json")
    assert_unavailable(client.get("/probe/page", headers=HTML), "html")
    assert_unavailable(client.post("/probe/redeem/abc", headers=JSON), "json")
    health = client.get("/readyz")
    assert health.status_code == 503
    assert_clean(health.get_data(as_text=True))


def test_database_down_with_redis_up_still_fails_closed(
    migrated: Backend, redis_server: RedisServer
) -> None:
    app = with_probes(
        create_app(
            make_settings(migrated, database_url=dead_postgres_url(), redis_url=redis_server.url)
        )
    )
    try:
        client = app.test_client()
        health = client.get("/readyz")
        assert health.status_code == 503
        assert_unavailable(client.get("/jwks"), "json")
    finally:
        dispose(app)


# -- no internal detail, request ids --------------------------------------------------


@pytest.fixture
def probe_client(app: Flask) -> FlaskClient:
    return with_probes(app).test_client()


def test_unexpected_error_is_a_bare_500_with_request_id(
    probe_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="idp")
    for headers, kind in ((HTML, "text/html"), (JSON, "application/json")):
        resp = probe_client.get("/probe/crash", headers=headers)
        assert resp.status_code == 500
        assert resp.mimetype == kind
        body = resp.get_data(as_text=True)
        assert_clean(body)
        rid = resp.headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{16}", rid)
        assert rid in body
        logged = [r for r in caplog.records if rid in r.getMessage()]
        assert logged, "the error was not logged with its request id"
        assert logged[0].exc_info is not None  # the stack trace goes to the log only


def test_request_id_is_echoed(probe_client: FlaskClient) -> None:
    resp = probe_client.get("/healthz", headers={"X-Request-Id": "rid-from-proxy-42"})
    assert resp.headers["X-Request-Id"] == "rid-from-proxy-42"
    generated = probe_client.get("/healthz").headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{16}", generated)
    assert probe_client.get("/healthz").headers["X-Request-Id"] != generated
    long = probe_client.get("/healthz", headers={"X-Request-Id": "x" * 500})
    assert long.headers["X-Request-Id"] == "x" * 64
    missing = probe_client.get("/no-such-page", headers={"X-Request-Id": "rid-404", **HTML})
    assert missing.status_code == 404 and missing.headers["X-Request-Id"] == "rid-404"
    assert "rid-404" in missing.get_data(as_text=True)


def test_malformed_requests_are_4xx_not_500(probe_client: FlaskClient) -> None:
    assert probe_client.get("/no-such-page").status_code == 404
    assert probe_client.delete("/healthz").status_code == 405
    big = probe_client.post("/probe/redeem/x", data=b"x" * (2 * 1024 * 1024))
    assert big.status_code == 413
    for resp in (big, probe_client.get("/%ff%fe")):
        assert resp.status_code < 500
        assert_clean(resp.get_data(as_text=True))


def test_healthz_ok(probe_client: FlaskClient) -> None:
    resp = probe_client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}


def test_real_endpoints_fail_closed_while_redis_is_down(
    redis_app: Flask, redis_server: RedisServer
) -> None:
    """The authorization endpoint (a browser page) and the token endpoint (an API)
    answer 503 in their own shape while Redis is down, and work again afterwards."""
    from idp.release import clients

    redirect_uri = "http://127.0.0.1:5001/callback"
    with redis_app.app_context():
        client, secret = clients.register("Outage Shop", [redirect_uri], actor="test")
        client_id = client.client_id
    assert secret
    authorize = (
        f"/authorize?response_type=code&client_id={client_id}"
        f"&redirect_uri={redirect_uri}&scope=openid&state=s1"
    )
    token_form = {
        "grant_type": "authorization_code",
        "code": "x" * 43,
        "redirect_uri": redirect_uri,
    }
    browser = redis_app.test_client()
    merchant = redis_app.test_client()

    redis_server.stop()
    page = browser.get(authorize, headers=HTML)
    assert_unavailable(page, "html")
    assert "Location" not in page.headers  # never a redirect to the merchant
    token = merchant.post("/token", data=token_form, auth=(client_id, secret))
    assert_unavailable(token, "json")

    redis_server.start()
    resumed = browser.get(authorize, headers=HTML)
    assert resumed.status_code in (302, 303)
    assert not resumed.headers["Location"].startswith(redirect_uri)  # the login, not a code
    refused = merchant.post("/token", data=token_form, auth=(client_id, secret))
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
