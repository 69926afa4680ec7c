"""Calling the administration API in tests: admin clients, their tokens, and a
small client that sends them (through the Flask test client or a live server)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from idp.rights import admin_clients


@dataclass
class AdminClient:
    client_id: str
    secret: str


def make_admin_client(app: Flask, unit: str | None = None) -> AdminClient:
    """A new admin client acting for ``unit`` (id or slug), or the operator."""
    with app.app_context():
        made = admin_clients.create(unit, actor="test")
    return AdminClient(made.client_id, made.client_secret)


def client_token(http: FlaskClient, who: AdminClient, scope: str | None = "admin") -> str:
    """An access token by the client-credentials grant (RFC 6749 §4.4)."""
    basic = base64.b64encode(f"{who.client_id}:{who.secret}".encode()).decode()
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    resp = http.post("/token", data=data, headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return str(resp.get_json()["access_token"])


class Api:
    """``/api/v1`` with a bearer token, through a Flask test client."""

    def __init__(self, http: FlaskClient, token: str | None) -> None:
        self.http = http
        self.token = token

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra or {})
        return headers

    def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        return self.http.open(
            "/api/v1" + path, method=method, json=json, headers=self._headers(headers), **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.call("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.call("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.call("DELETE", path, json=json, **kwargs)


def api_for(app: Flask, http: FlaskClient, unit: str | None = None) -> Api:
    """An :class:`Api` whose token belongs to a new admin client of ``unit`` (None:
    the operator)."""
    return Api(http, client_token(http, make_admin_client(app, unit)))


def assert_problem(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """``resp`` is an RFC 9457 problem with ``status`` (and ``code``); its body."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
    assert resp.mimetype == "application/problem+json", resp.mimetype
    body = resp.get_json(force=True)
    assert body["status"] == status and body["type"].startswith("urn:unitgate:problem:")
    assert body["title"] and body["detail"] and body["request_id"]
    if code is not None:
        assert body["code"] == code, body
    return dict(body)
