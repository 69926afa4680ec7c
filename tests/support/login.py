"""Helpers for the login-interaction tests: a protocol stand-in that starts an
interaction exactly as the OIDC side does (``idp.interaction.pending.start``) and a resume
endpoint that reports how the interaction ended, plus form helpers for the pages."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, redirect, request, url_for
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from idp.interaction import pending as interaction
from idp.interaction import sessions
from idp.release import merchants
from idp.store.db import db
from idp.store.models import Merchant
from idp.store.unit_of_work import atomic

RESUME_ENDPOINT = "test_resume"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def stand_in_merchant(client_id: str = "shop-1") -> str:
    """The id of the merchant the stand-in signs in to for ``client_id`` (created on
    first use, in an app context; no client is registered behind it)."""
    found = db.session.scalars(select(Merchant.id).where(
        Merchant.identifier == client_id, Merchant.protocol == merchants.OIDC)).first()
    if found is not None:
        return found
    with atomic():
        merchant = merchants.stage(merchants.OIDC, client_id, client_id)
    return merchant.id


def add_protocol_stand_in(app: Flask) -> None:
    """``GET /_test/start?client_id=..&scope=..`` starts an interaction and sends the
    browser to ``login.start``; ``GET /_test/resume/<id>`` consumes it and answers
    JSON with its final state (what the OIDC side's resume endpoint would see)."""

    def start() -> Response:
        live = sessions.current()
        fields: dict[str, Any] = {}
        if live is not None and "login" not in request.args.get("prompt", "").split():
            # What the OIDC side does for a browser with a live session.
            fields = {"account_id": live.account_id, "auth_time": live.auth_time.timestamp(),
                      "amr": list(live.amr), "session_id_hash": live.id_hash}
        client_id = request.args.get("client_id", "shop-1")
        ix = interaction.start(
            protocol="oidc",
            client_id=client_id,
            merchant_id=stand_in_merchant(client_id),
            client_name=request.args.get("client_name", "Office Supplies Ltd"),
            resume_endpoint=RESUME_ENDPOINT,
            scopes=request.args.get("scope", "openid profile email").split(),
            claims=[c for c in request.args.get("claims", "").split() if c],
            prompt=[p for p in request.args.get("prompt", "").split() if p],
            login_hint=request.args.get("login_hint"),
            **fields,
        )
        return redirect(url_for("login.start", interaction_id=ix.id), code=303)

    def resume(interaction_id: str) -> Response:
        ix = interaction.load(interaction_id)
        if ix is None:
            return jsonify({"error": "no interaction"})
        done = interaction.consume(ix)
        state = asdict(done) if done is not None else {"error": "consumed"}
        state["finished"] = done is not None and done.finished
        return jsonify(state)

    def whoami() -> Response:
        row = sessions.current()
        return jsonify({"account_id": row.account_id if row is not None else None})

    app.add_url_rule("/_test/start", "test_start", start)
    app.add_url_rule("/_test/resume/<interaction_id>", RESUME_ENDPOINT, resume)
    app.add_url_rule("/_test/session", "test_session", whoami)


def csrf_token(html: str) -> str:
    """The CSRF token of the first form in ``html``."""
    found = CSRF_RE.search(html)
    assert found, "no csrf_token in the page"
    return found.group(1)


def path_of(resp: TestResponse) -> str:
    """The path of a redirect's ``Location``."""
    return urlsplit(resp.headers["Location"]).path


def start(client: FlaskClient, **params: str) -> str:
    """Start an interaction; returns the path of the login page it redirects to."""
    resp = client.get("/_test/start", query_string=params)
    assert resp.status_code == 303, resp.status_code
    return path_of(resp)


def interaction_id_of(path: str) -> str:
    return path.split("/")[2]


def post_form(client: FlaskClient, page: str, action: str, data: dict[str, Any],
              **kwargs: Any) -> TestResponse:
    """GET ``page`` for its CSRF token, then POST ``data`` to ``action``."""
    html = client.get(page, **kwargs).get_data(as_text=True)
    return client.post(action, data={"csrf_token": csrf_token(html), **data}, **kwargs)


def submit_email(client: FlaskClient, login_path: str, email: str, **kwargs: Any) -> TestResponse:
    """Submit ``email`` on the e-mail page of ``login_path``."""
    return post_form(client, login_path, login_path + "/email", {"email": email}, **kwargs)


def submit_code(client: FlaskClient, login_path: str, code: str, **kwargs: Any) -> TestResponse:
    """Submit ``code`` on the code page of ``login_path``."""
    return post_form(client, login_path + "/code", login_path + "/code", {"code": code},
                     **kwargs)


def follow(client: FlaskClient, resp: TestResponse) -> TestResponse:
    """GET the ``Location`` of a 303."""
    assert resp.status_code == 303, resp.status_code
    return client.get(resp.headers["Location"])


def clone(app: Flask, client: FlaskClient) -> FlaskClient:
    """A second test client carrying the same browser cookies (for parallel requests
    from "one browser")."""
    other = app.test_client()
    for name in ("ug_ix", "ug_csrf", "ug_session", "ug_lang"):
        cookie = client.get_cookie(name)
        if cookie is not None:
            other.set_cookie(name, cookie.value)
    return other


def code_from_outbox(app: Flask, email: str) -> str:
    """The code in the newest outbox message to ``email`` (console transport only:
    after an SMTP hand-over the body is gone)."""
    from idp.mail.outbox import courier, open_body
    from idp.store import outbox_repo

    courier(app).drain()
    with app.app_context():
        for message in outbox_repo.recent(200):
            if message.payload.get("to") == email:
                body = open_body(message)
                assert body is not None
                found = re.search(r"\b(\d{6})\b", body["text"])
                assert found
                return found.group(1)
    raise AssertionError(f"no message to {email}")


def sign_in_to_dashboard(
    app: Flask, web: FlaskClient, email: str = "ann@corp.example"
) -> TestResponse:
    """The real login: /account -> e-mail page -> code from the outbox -> dashboard."""
    resp = web.get("/account")
    assert resp.status_code == 303
    login = path_of(resp)
    assert login.startswith("/interaction/")
    submit_email(web, login, email)
    resp = submit_code(web, login, code_from_outbox(app, email))
    assert resp.status_code == 303
    assert path_of(resp).startswith("/account/resume/"), resp.headers["Location"]
    resp = web.get(resp.headers["Location"])
    assert resp.status_code == 303 and path_of(resp) == "/account"
    page = web.get("/account")
    assert page.status_code == 200
    return page


def follow_to_page(client: FlaskClient, start: str) -> tuple[str, TestResponse]:
    """GET ``start`` and follow its 303s: the last address and the page found there."""
    location = start
    page = client.get(location)
    while page.status_code == 303:
        location = page.headers["Location"]
        page = client.get(location)
    return location, page
