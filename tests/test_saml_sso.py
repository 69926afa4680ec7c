"""SP-initiated web-browser SSO validated end to end by python3-saml in strict mode."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.saml.constants import NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_TRANSIENT
from tests.support import oidc, saml_flow
from tests.support.saml_sp import posted_form, response_xml


@pytest.fixture(autouse=True)
def _login_endpoint(app: Flask) -> None:
    oidc.ensure_login_endpoint(app)


@pytest.fixture
def account_id(app: Flask) -> str:
    account = oidc.make_account(
        app, "ann@corp.example", cost_centre="CC-4711", personnel_number="P-0815"
    )
    oidc.make_unit(app, account, "Corp GmbH", roles=["buyer", "approver"])
    return account


def test_signed_response_and_assertion_pass_strict_python3_saml(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = saml_flow.make_sp(app, client)
    fields, request_id = saml_flow.sign_in(app, client, sp, account_id)
    assert fields["RelayState"] == "/basket"
    auth = sp.accept(fields, request_id)
    assert auth.get_errors() == [], auth.get_last_error_reason()
    assert auth.is_authenticated()
    assert auth.get_nameid_format() == NAMEID_PERSISTENT
    attrs = auth.get_friendlyname_attributes()
    assert attrs["mail"] == ["ann@corp.example"]
    assert attrs["givenName"] == ["Ann"]
    assert attrs["costCentre"] == ["CC-4711"]
    assert attrs["employeeNumber"] == ["P-0815"]
    assert attrs["o"] == ["Corp GmbH"]
    assert sorted(attrs["roles"]) == ["approver", "buyer"]
    assert auth.get_session_index()
    assert auth.get_last_response_in_response_to() == request_id
