"""``idp serve`` as a real gunicorn process: several workers, each with its own app,
an access log with request ids, graceful stop on SIGTERM, and a Redis outage that a
running server survives without restart."""

from __future__ import annotations

import re
from pathlib import Path

import requests
from flask import Flask, request

from idp.cli.serve import trust_proxies
from tests.support.processes import RedisServer, idp_env, idp_serve, run_idp


def fresh_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = idp_env(
        database_url=f"sqlite:///{tmp_path / 'unitgate.db'}",
        master_key_file=str(tmp_path / "master.key"),
        issuer="http://127.0.0.1:5000",
        **extra,
    )
    result = run_idp(["init"], env)
    assert result.returncode == 0, result.stderr
    return env


def test_serve_runs_gunicorn_workers_and_stops_gracefully(tmp_path: Path) -> None:
    env = fresh_env(tmp_path)
    with idp_serve(env, tmp_path / "serve.log", workers=2) as served:
        health = requests.get(served.url + "/healthz", timeout=60)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert health.headers["Server"].startswith("gunicorn")
        keys = requests.get(
            served.url + "/jwks", headers={"X-Request-Id": "rid-serve-1"}, timeout=60
        )
        assert keys.status_code == 200
        assert keys.headers["X-Request-Id"] == "rid-serve-1"
        assert {k["alg"] for k in keys.json()["keys"]} == {"ES256", "RS256"}
        # Keep-alive connection: several requests on one session.
        with requests.Session() as session:
            for _ in range(5):
                assert session.get(served.url + "/jwks", timeout=60).status_code == 200
        status = served.stop()
    assert status == 0
    log = served.log_text()
    assert log.count("Booting worker") == 2
    assert len(set(re.findall(r"worker (\d+) ready", log))) == 2
    assert re.search(r'"GET /jwks HTTP/1.1" 200 \d+ \d+ms rid=rid-serve-1', log)
    assert "Handling signal: term" in log and "Shutting down: Master" in log
    assert "Traceback" not in log


def test_running_server_survives_a_redis_outage(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    try:
        env = fresh_env(tmp_path, redis_url=redis_server.url, redis_prefix="ugserve:")
        with idp_serve(env, tmp_path / "serve.log", workers=1) as served:
            assert requests.get(served.url + "/readyz", timeout=60).status_code == 200
            redis_server.stop()
            down = requests.get(served.url + "/readyz", timeout=60)
            assert down.status_code == 503
            assert down.json()["status"] == "unavailable"
            assert requests.get(served.url + "/healthz", timeout=60).status_code == 200
            redis_server.start()
            assert requests.get(served.url + "/readyz", timeout=60).status_code == 200
            assert served.proc.poll() is None
    finally:
        redis_server.stop()


def test_forwarded_headers_are_trusted_only_with_proxy_hops(app: Flask) -> None:
    @app.get("/probe/peer")
    def peer() -> dict[str, str]:
        return {"addr": request.remote_addr or "", "scheme": request.scheme}

    forwarded = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7", "X-Forwarded-Proto": "https"}
    direct = app.test_client().get("/probe/peer", headers=forwarded).get_json()
    assert direct == {"addr": "127.0.0.1", "scheme": "http"}

    proxied = trust_proxies(app, 1).test_client()
    assert proxied.get("/probe/peer", headers=forwarded).get_json() == {
        "addr": "198.51.100.7",
        "scheme": "https",
    }
    # Only the entry our own proxy appended counts; a client cannot choose its address.
    forged = {"X-Forwarded-For": "10.0.0.1, 203.0.113.50"}
    assert proxied.get("/probe/peer", headers=forged).get_json()["addr"] == "203.0.113.50"
