"""Step-up with a SAML RequestedAuthnContext (saml-core 3.3.2.2.1) through the real
login pages and real e-mail: the mfa class (``urn:unitgate:acr:mfa`` or
``TimeSyncToken``) forces a TOTP code on a fresh sign-in and on a live e-mail-only
session, the assertion's AuthnContextClassRef says what was reached (checked by
python3-saml in strict mode), IsPassive cannot step up, and a context that cannot be
met is answered with ``NoAuthnContext``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from idp.factors.acr import ACR_EMAIL, ACR_MFA
from idp.mail.outbox import courier
from idp.saml.constants import (
    AC_TIME_SYNC_TOKEN,
    AC_UNSPECIFIED,
    STATUS_NO_AUTHN_CONTEXT,
    STATUS_NO_PASSIVE,
)
from tests.support import oidc, saml_flow
from tests.support.login import post_form
from tests.support.saml_sp import ServiceProvider, posted_form, response_xml
from tests.support.step_up import EMAIL, allow_and_follow, email_factor, enrol, path

NS = {
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
}


@pytest.fixture
def account(app: Flask) -> Iterator[str]:
    account_id = oidc.make_account(app, EMAIL)
    oidc.make_unit(app, account_id, "Corp GmbH")  # require_totp is off
    yield account_id
    courier(app).drain()


def sp_asking(app: Flask, client: FlaskClient, refs: list[str] | None,
              comparison: str = "exact") -> ServiceProvider:  # fmt: skip
    """A registered python3-saml SP whose AuthnRequests carry ``refs``."""
    security = {"requestedAuthnContext": refs or False,
                "requestedAuthnContextComparison": comparison}
    return saml_flow.make_sp(app, client, extra_security=security)


def same_sp_asking(client: FlaskClient, refs: list[str], comparison: str) -> ServiceProvider:
    """The already registered SP (same entity ID), now sending ``refs``."""
    security = {"requestedAuthnContext": refs, "requestedAuthnContextComparison": comparison}
    return ServiceProvider(saml_flow.idp_metadata(client), extra_security=security)


def statuses(fields: dict[str, str]) -> list[str]:
    root = etree.fromstring(response_xml(fields).encode())
    return [e.get("Value") for e in root.iterfind(".//samlp:StatusCode", NS)]


def class_ref(fields: dict[str, str]) -> str:
    root = etree.fromstring(response_xml(fields).encode())
    found = root.find(".//saml:AuthnContextClassRef", NS)
    assert found is not None
    return str(found.text)


def accepted(sp: ServiceProvider, fields: dict[str, str], request_id: str) -> None:
    auth = sp.accept(fields, request_id)
    assert auth.get_errors() == [], auth.get_last_error_reason()


def email_sign_in(app: Flask, client: FlaskClient, sp: ServiceProvider) -> dict[str, str]:
    """An SP-initiated sign-in with the e-mail code only; the posted fields."""
    resp, request_id = saml_flow.start(client, sp)
    login = path(resp)
    after = email_factor(app, client, login)
    assert "/totp" not in path(after)
    action, fields = posted_form(allow_and_follow(client, login, after))
    assert action == sp.acs_url
    accepted(sp, fields, request_id)
    return fields


@pytest.mark.parametrize("ref", [ACR_MFA, AC_TIME_SYNC_TOKEN])
def test_mfa_context_forces_totp_on_a_fresh_sign_in(
    app: Flask, client: FlaskClient, account: str, ref: str
) -> None:
    sp = sp_asking(app, client, [ref])
    resp, request_id = saml_flow.start(client, sp)
    login = path(resp)
    after = email_factor(app, client, login)
    assert path(after) == login + "/totp"
    assert path(client.get(login + "/totp")) == login + "/totp/setup"
    _secret, resp = enrol(client, login)
    action, fields = posted_form(allow_and_follow(client, login, resp))
    assert action == sp.acs_url
    accepted(sp, fields, request_id)
    assert class_ref(fields) == ref  # what was asked for, and reached


def test_mfa_context_steps_up_a_live_email_session(
    app: Flask, client: FlaskClient, account: str
) -> None:
    plain = sp_asking(app, client, None)
    fields = email_sign_in(app, client, plain)
    assert class_ref(fields) == AC_UNSPECIFIED  # e-mail code only, as before

    sp = same_sp_asking(client, [ACR_MFA], "minimum")  # the same merchant asks for more
    url, _ = sp.login_redirect(is_passive=True)
    _action, fields = posted_form(saml_flow.get_url(client, url))
    assert statuses(fields)[-1] == STATUS_NO_PASSIVE  # IsPassive cannot step up

    resp, request_id = saml_flow.start(client, sp)
    login = path(resp)
    assert path(client.get(login)) == login + "/totp"  # account known: no e-mail step
    _secret, resp = enrol(client, login)
    action, fields = posted_form(allow_and_follow(client, login, resp))
    assert action == sp.acs_url
    accepted(sp, fields, request_id)
    assert class_ref(fields) == ACR_MFA

    # The stepped-up session now answers at once.
    _action, fields = posted_form(saml_flow.start(client, sp)[0])
    assert class_ref(fields) == ACR_MFA


def test_email_context_does_not_force_totp(
    app: Flask, client: FlaskClient, account: str
) -> None:
    sp = sp_asking(app, client, [ACR_EMAIL])
    assert class_ref(email_sign_in(app, client, sp)) == ACR_EMAIL


@pytest.mark.parametrize(
    ("refs", "comparison"),
    [
        (["urn:example:ac:retina-scan"], "exact"),
        (["urn:example:ac:retina-scan"], "minimum"),
        ([ACR_MFA], "better"),
    ],
)
def test_context_that_cannot_be_met_answers_no_authn_context(
    app: Flask, client: FlaskClient, account: str, refs: list[str], comparison: str
) -> None:
    sp = sp_asking(app, client, refs, comparison)
    resp, _ = saml_flow.start(client, sp)
    action, fields = posted_form(resp)
    assert action == sp.acs_url
    assert statuses(fields) == [
        "urn:oasis:names:tc:SAML:2.0:status:Responder", STATUS_NO_AUTHN_CONTEXT
    ]
    assert "Assertion" not in response_xml(fields)


def test_skipping_the_totp_page_posts_nothing_to_the_sp(
    app: Flask, client: FlaskClient, account: str
) -> None:
    email_sign_in(app, client, sp_asking(app, client, None))
    sp = same_sp_asking(client, [AC_TIME_SYNC_TOKEN], "exact")
    resp, _ = saml_flow.start(client, sp)
    login = path(resp)
    # Post consent directly instead of giving the TOTP code: back to the login.
    resp = post_form(client, login + "/totp/setup", login + "/consent", {"decision": "allow"})
    resp = client.get(resp.headers["Location"])
    assert path(resp) == login
    assert path(client.get(resp.headers["Location"])) == login + "/totp"
