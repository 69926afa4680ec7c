"""Driving the IdP's SAML endpoints through the Flask test client: register a
python3-saml SP, send its AuthnRequest, finish the login interaction the way the login
pages do, and collect the form the IdP posts to the ACS."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from idp.saml import registry
from tests.support import oidc
from tests.support.saml_sp import ServiceProvider, posted_form


def idp_metadata(client: FlaskClient) -> bytes:
    resp = client.get("/saml/metadata")
    assert resp.status_code == 200
    return resp.data


def register(app: Flask, sp: ServiceProvider, **options: Any) -> str:
    """Register ``sp`` from its metadata; returns the registry id."""
    with app.app_context():
        return registry.register(sp.metadata(), **options, actor="test").id


def make_sp(
    app: Flask,
    client: FlaskClient,
    register_options: dict[str, Any] | None = None,
    **sp_options: Any,
) -> ServiceProvider:
    """A python3-saml SP trusting the IdP's current metadata, registered."""
    sp = ServiceProvider(idp_metadata(client), **sp_options)
    register(app, sp, **(register_options or {}))
    return sp


def get_url(client: FlaskClient, url: str) -> TestResponse:
    """GET an absolute IdP URL, keeping its raw query string (signatures cover it)."""
    parts = urlsplit(url)
    return client.get(parts.path + ("?" + parts.query if parts.query else ""))


def start(client: FlaskClient, sp: ServiceProvider, **login: Any) -> tuple[TestResponse, str]:
    url, request_id = sp.login_redirect(**login)
    return get_url(client, url), request_id


def finish_login(app: Flask, resp: TestResponse, account_id: str, **kw: Any) -> str:
    """Finish the interaction the SSO endpoint started; returns its id."""
    assert oidc.is_login_redirect(app, resp), resp.get_data(as_text=True)[:300]
    ix_id = oidc.interaction_id(resp)
    oidc.finish(app, ix_id, account_id, **kw)
    return ix_id


def resume(client: FlaskClient, ix_id: str) -> TestResponse:
    return client.get(f"/saml/resume/{ix_id}")


def sign_in(
    app: Flask, client: FlaskClient, sp: ServiceProvider, account_id: str, **login: Any
) -> tuple[dict[str, str], str]:
    """The full SP-initiated flow; returns (the posted form fields, the request ID)."""
    resp, request_id = start(client, sp, **login)
    ix_id = finish_login(app, resp, account_id)
    action, fields = posted_form(resume(client, ix_id))
    assert action == sp.acs_url
    return fields, request_id


def post(client: FlaskClient, path: str, form: dict[str, str]) -> TestResponse:
    """POST a SAML message the way an SP's page does (cross-site: no Unitgate cookie
    comes along) and follow the IdP's re-delivery through a GET, which carries the
    browser's cookies."""
    resp = client.post(path, data=form)
    location = resp.headers.get("Location", "")
    if resp.status_code == 303 and "bounce=" in location:
        return get_url(client, location)
    return resp
