"""Observability: ``/metrics`` (Prometheus text, guarded, per route rule, sign-ins,
codes, outbox backlog, caches), ``/healthz`` (liveness) and ``/readyz`` (readiness),
JSON logs with the request id carried into the outbox delivery, ``idp migrate``, and
the metrics of several gunicorn workers added up under a real ``idp serve``."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from idp.app import create_app
from idp.mail import outbox
from idp.observability.logs import (
    JsonFormatter,
    RequestIdFilter,
    bound_request_id,
    current_request_id,
)
from idp.store import migrate, outbox_repo
from idp.store.db import db
from idp.store.models import utcnow
from tests.support.apps import make_settings
from tests.support.backends import Backend
from tests.support.login import sign_in_to_dashboard
from tests.support.oidc import make_account
from tests.support.processes import RedisServer, free_port, idp_env, idp_serve, run_idp

ANN = "ann@corp.example"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for (n, lbls), v in samples(text).items():
        if n == name and all((k, want) in lbls for k, want in labels.items()):
            total += v
    return total


def scrape(client: FlaskClient, **headers: str) -> str:
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return resp.get_data(as_text=True)


# -- /metrics -----------------------------------------------------------------------


def test_requests_are_counted_per_route_rule_with_latency(client: FlaskClient) -> None:
    before = scrape(client)
    for _ in range(3):
        assert client.get("/jwks").status_code == 200
    assert client.get("/no/such/page/42").status_code == 404
    after = scrape(client)
    rule = {"method": "GET", "endpoint": "/jwks", "status": "200"}
    assert value(after, "unitgate_http_requests_total", **rule) - value(
        before, "unitgate_http_requests_total", **rule) == 3
    timed = {"method": "GET", "endpoint": "/jwks"}
    assert value(after, "unitgate_http_request_duration_seconds_count", **timed) - value(
        before, "unitgate_http_request_duration_seconds_count", **timed) == 3
    assert value(after, "unitgate_http_request_duration_seconds_sum", **timed) > 0
    # an unknown path is one label, never the raw path (no unbounded label values)
    assert value(after, "unitgate_http_requests_total", endpoint="<unmatched>", status="404") >= 1
    assert "/no/such/page/42" not in after


def test_scim_requests_are_counted_by_resource(client: FlaskClient) -> None:
    client.get("/scim/v2/Users/abc", headers={"Authorization": "Bearer nope"})
    text = scrape(client)
    assert value(text, "unitgate_scim_operations_total", resource="Users", method="GET") >= 1
    rule = "/scim/v2/<any(Users, Groups):kind>/<resource_id>"
    assert value(text, "unitgate_http_requests_total", endpoint=rule, method="GET") >= 1
    assert value(text, "unitgate_scim_operations_total", resource="Groups") == value(
        scrape(client), "unitgate_scim_operations_total", resource="Groups")


def test_metrics_still_answer_while_the_database_is_down(migrated: Backend) -> None:
    dead_db = f"postgresql+psycopg://unitgate@127.0.0.1:{free_port()}/unitgate"
    app = create_app(make_settings(migrated, database_url=dead_db, redis_url=None))
    try:
        text = scrape(app.test_client())
        assert value(text, "unitgate_outbox_readable") == 0
        assert "unitgate_outbox_depth" not in text
    finally:
        with app.app_context():
            db.engine.dispose()


def test_metrics_refuse_non_loopback_peers_without_a_token(client: FlaskClient) -> None:
    resp = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert resp.status_code == 403
    assert "unitgate_" not in resp.get_data(as_text=True)
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200


@pytest.fixture
def token_app(migrated: Backend) -> Iterator[Flask]:
    app = create_app(make_settings(migrated, metrics_token="s3cret-scrape-token"))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_metrics_token_is_required_when_set_even_on_loopback(token_app: Flask) -> None:
    client = token_app.test_client()
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    remote = client.get(
        "/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert remote.status_code == 200
    assert "unitgate_outbox_depth" in remote.get_data(as_text=True)


def test_a_sign_in_counts_the_code_sent_and_the_sign_in(app: Flask, client: FlaskClient) -> None:
    make_account(app, ANN)
    before = scrape(client)
    sign_in_to_dashboard(app, client)
    outbox.courier(app).drain()
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("unitgate_codes_sent_total", channel="email", outcome="sent") == 1
    assert delta("unitgate_signins_total", method="otp", outcome="success") == 1
    # a wrong code is a failed sign-in step
    assert delta("unitgate_signins_total", outcome="wrong") == 0
    # the sign-in's lookups went through the process caches
    assert delta("unitgate_cache_lookups_total") > 0


def test_outbox_depth_and_age_are_read_at_scrape_time(app: Flask, client: FlaskClient) -> None:
    with app.test_request_context("/", headers={"X-Request-Id": "rid-outbox-7"}):
        message_id = outbox.enqueue_email(ANN, "code", "en", {
            "code": "123456", "long_code": False, "minutes": 10, "client_name": "Shop",
            "expires_at": utcnow() + timedelta(minutes=10),
        })
    text = scrape(client)
    assert value(text, "unitgate_outbox_depth") == 1
    assert value(text, "unitgate_outbox_oldest_age_seconds") >= 0
    assert value(text, "unitgate_outbox_dead") == 0
    assert value(text, "unitgate_outbox_readable") == 1

    # The request id of the cause travels with the message into the delivery's logs.
    with app.app_context():
        message = outbox_repo.get(message_id)
        assert message is not None and message.payload["request_id"] == "rid-outbox-7"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    mail_log = logging.getLogger("idp.mail")
    mail_log.addHandler(handler)
    old_level = mail_log.level
    mail_log.setLevel(logging.INFO)
    try:
        with app.app_context():  # after the first lease: the retry loop's delivery
            assert outbox.deliver_one(message_id, utcnow() + timedelta(minutes=2))
    finally:
        mail_log.removeHandler(handler)
        mail_log.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(
        line["request_id"] == "rid-outbox-7" and message_id in line["message"] for line in lines
    ), lines
    after = scrape(client)
    assert value(after, "unitgate_outbox_depth") == 0
    assert value(after, "unitgate_outbox_deliveries_total", kind="email", outcome="sent") >= 1


# -- probes -------------------------------------------------------------------------


def test_healthz_is_liveness_and_readyz_checks_everything(client: FlaskClient) -> None:
    live = client.get("/healthz")
    assert live.status_code == 200 and live.get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "ephemeral": "ok"},
    }


def test_readyz_fails_but_healthz_lives_when_dependencies_are_down(
    migrated: Backend, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    dead_db = f"postgresql+psycopg://unitgate@127.0.0.1:{free_port()}/unitgate"
    app = create_app(make_settings(migrated, database_url=dead_db, redis_url=redis.url))
    try:
        client = app.test_client()
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["checks"] == {
            "database": "unavailable", "migrations": "unknown", "ephemeral": "ok",
        }
        redis.stop()
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").get_json()["checks"]["ephemeral"] == "unavailable"
    finally:
        redis.stop()
        with app.app_context():
            db.engine.dispose()


def test_readyz_says_behind_until_the_schema_is_migrated(migrated: Backend, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    app = create_app(make_settings(migrated, database_url=url, redis_url=None))
    try:
        client = app.test_client()
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["checks"]["migrations"] == "behind"
        migrate.upgrade(url)
        assert client.get("/readyz").status_code == 200
    finally:
        with app.app_context():
            db.engine.dispose()


def test_schema_is_current_at_head_or_newer_never_behind() -> None:
    head, known = migrate.known_revisions()
    assert migrate.schema_is_current(head)
    assert migrate.schema_is_current("9999_from_a_newer_release")  # rolling upgrade
    assert not migrate.schema_is_current(None)
    older = sorted(known - {head})
    assert older and not any(migrate.schema_is_current(rev) for rev in older)


# -- logs ---------------------------------------------------------------------------


def test_json_log_lines_carry_the_request_id(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("idp.x", logging.WARNING, __file__, 1, "hello %s", ("ann",), None)
    with app.test_request_context("/", headers={"X-Request-Id": "rid-json-1"}):
        from idp.errors import request_id

        request_id()
        RequestIdFilter().filter(record)
    line = json.loads(formatter.format(record))
    assert line["message"] == "hello ann" and line["request_id"] == "rid-json-1"
    assert line["level"] == "WARNING" and line["logger"] == "idp.x"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["ts"])
    with bound_request_id("rid-bound"):
        assert current_request_id() == "rid-bound"
    assert current_request_id() == ""


def test_log_format_setting_is_checked(migrated: Backend) -> None:
    with pytest.raises(ValueError, match="IDP_LOG_FORMAT"):
        make_settings(migrated, log_format="xml")


# -- idp migrate and idp serve ------------------------------------------------------


def test_idp_migrate_needs_no_master_key_and_check_says_behind(tmp_path: Path) -> None:
    env = idp_env(database_url=f"sqlite:///{tmp_path / 'm.db'}",
                  master_key_file=str(tmp_path / "absent.key"))
    behind = run_idp(["migrate", "--check", "--json"], env)
    assert behind.returncode == 1 and json.loads(behind.stdout)["current"] is False
    done = run_idp(["migrate", "--json"], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["migrated"] is True
    again = run_idp(["migrate", "--json"], env)
    assert json.loads(again.stdout)["migrated"] is False
    assert run_idp(["migrate", "--check"], env).returncode == 0
    assert not (tmp_path / "absent.key").exists()  # no key file was made


@pytest.mark.slow
def test_serve_adds_up_the_metrics_of_every_worker_and_logs_json(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "prom"
    env = idp_env(
        database_url=f"sqlite:///{tmp_path / 'unitgate.db'}",
        master_key_file=str(tmp_path / "master.key"),
        issuer="http://127.0.0.1:5000",
        log_format="json",
        metrics_token="scrape-me",
    )
    assert run_idp(["init"], env).returncode == 0
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale file of an earlier run")
    auth = {"Authorization": "Bearer scrape-me"}
    with idp_serve(env, tmp_path / "serve.log", workers=2) as served:
        for _ in range(40):  # new connections: both workers answer some
            assert requests.get(served.url + "/jwks", timeout=60).status_code == 200
        assert requests.get(served.url + "/metrics", timeout=60).status_code == 401
        text = requests.get(served.url + "/metrics", headers=auth, timeout=60).text
        files = sorted(p.name for p in metrics_dir.glob("*.db"))
        assert requests.get(served.url + "/readyz", timeout=60).status_code == 200
        served.stop()
    counted = value(text, "unitgate_http_requests_total", endpoint="/jwks", status="200")
    assert counted == 40
    pids = {m.group(1) for m in (re.match(r"\w+_(\d+)\.db", f) for f in files) if m}
    assert 1 <= len(pids) <= 2, files  # one file set per worker that answered
    assert "counter_1.db" not in files
    log = served.log_text()
    assert "Traceback" not in log
    json_lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert json_lines and all({"ts", "level", "message", "request_id"} <= set(j)
                              for j in json_lines)
