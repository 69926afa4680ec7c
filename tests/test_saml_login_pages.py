"""One SAML sign-in through the real login pages: AuthnRequest from a python3-saml
SP, e-mail code over a real SMTP server (aiosmtpd), consent page, resume, and the
strictly validated assertion; then the same SP again is answered from the session
without any page, and denying consent answers RequestDenied."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from idp.mail.outbox import courier
from idp.saml.constants import STATUS_REQUEST_DENIED
from tests.support import oidc, saml_flow
from tests.support.login import csrf_token, path_of, submit_code, submit_email
from tests.support.saml_sp import posted_form, response_xml
from tests.support.smtp import SmtpSink, code_in

EMAIL = "ann@corp.example"


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url}


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    yield client
    courier(app).drain()


def login_with_code(app: Flask, web: FlaskClient, smtp: SmtpSink, login: str) -> str:
    """E-mail page, code from the mail, code page; returns the next page's path."""
    before = len(smtp.messages)
    resp = submit_email(web, login, EMAIL)
    assert resp.status_code == 303 and path_of(resp) == login + "/code"
    resp = submit_code(web, login, code_in(smtp.last_to(EMAIL, after=before)))
    assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
    return path_of(resp)


def decide(web: FlaskClient, consent_path: str, decision: str) -> str:
    page = web.get(consent_path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "CC-4711" in html  # the employee sees what the merchant will get
    resp = web.post(consent_path, data={"csrf_token": csrf_token(html), "decision": decision})
    assert resp.status_code == 303
    return path_of(resp)


def test_saml_sign_in_through_the_login_pages(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink
) -> None:
    account = oidc.make_account(app, EMAIL)
    oidc.make_unit(app, account, "Corp GmbH", roles=["buyer"], facts={"cost_centre": "CC-4711"})
    sp = saml_flow.make_sp(app, web)

    resp, request_id = saml_flow.start(web, sp)
    assert resp.status_code == 303
    login = path_of(resp)
    consent_path = login_with_code(app, web, smtp_server, login)
    assert consent_path == login + "/consent"
    resume_path = decide(web, consent_path, "allow")
    assert resume_path.startswith("/saml/resume/")
    action, fields = posted_form(web.get(resume_path))
    assert action == sp.acs_url
    auth = sp.accept(fields, request_id)
    assert auth.get_errors() == [], auth.get_last_error_reason()
    attrs = auth.get_friendlyname_attributes()
    assert attrs["mail"] == [EMAIL] and attrs["costCentre"] == ["CC-4711"]
    assert attrs["o"] == ["Corp GmbH"] and attrs["roles"] == ["buyer"]

    # the login left a session and consent: the next request is answered at once
    resp, request_id = saml_flow.start(web, sp)
    auth = sp.accept(posted_form(resp)[1], request_id)
    assert auth.get_errors() == [] and auth.get_nameid()


def test_denying_consent_answers_request_denied(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink
) -> None:
    account = oidc.make_account(app, EMAIL)
    oidc.make_unit(app, account, "Corp GmbH", facts={"cost_centre": "CC-4711"})
    sp = saml_flow.make_sp(app, web)
    resp, request_id = saml_flow.start(web, sp)
    login = path_of(resp)
    consent_path = login_with_code(app, web, smtp_server, login)
    resume_path = decide(web, consent_path, "deny")
    action, fields = posted_form(web.get(resume_path))
    assert action == sp.acs_url
    doc = etree.fromstring(response_xml(fields).encode())
    codes = [c.get("Value") for c in doc.iter("{urn:oasis:names:tc:SAML:2.0:protocol}StatusCode")]
    assert codes[1] == STATUS_REQUEST_DENIED
    assert not sp.accept(fields, request_id).is_authenticated()
