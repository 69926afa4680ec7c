"""SP-initiated (and IdP-initiated) web-browser SSO, validated end to end by
python3-saml in strict mode: signatures, encryption, Destination, Recipient,
Audience, InResponseTo, NotOnOrAfter, NameID formats, ForceAuthn and IsPassive."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from idp.interaction import pending as interaction
from idp.release import consent, merchants
from idp.saml import registry
from idp.saml.attributes import DEFAULT_CLAIMS, scopes_for
from idp.saml.constants import (
    ENC_AES128_CBC,
    NAMEID_EMAIL,
    NAMEID_PERSISTENT,
    NAMEID_TRANSIENT,
    STATUS_AUTHN_FAILED,
    STATUS_INVALID_NAMEID_POLICY,
    STATUS_NO_PASSIVE,
    STATUS_REQUEST_DENIED,
)
from idp.services import ephemeral
from idp.store.db import db
from idp.store.models import SignIn
from tests.support import oidc, saml_flow
from tests.support.saml_sp import ServiceProvider, posted_form, response_xml

NS = {
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
}


@pytest.fixture(autouse=True)
def _login_endpoint(app: Flask) -> None:
    oidc.ensure_login_endpoint(app)


@pytest.fixture
def account_id(app: Flask) -> str:
    account = oidc.make_account(app, "ann@corp.example")
    oidc.make_unit(app, account, "Corp GmbH", roles=["buyer", "approver"], fields=("desk",),
                   facts={"cost_centre": "CC-4711", "personnel_number": "P-0815",
                          "extra.desk": "B-12"})
    return account


def statuses(fields: dict[str, str]) -> list[str]:
    doc = etree.fromstring(response_xml(fields).encode())
    return [c.get("Value") for c in doc.iterfind(".//samlp:StatusCode", NS)]


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
    assert auth.get_nameid_spnq() == sp.entity_id
    attrs = auth.get_friendlyname_attributes()
    assert attrs["mail"] == ["ann@corp.example"]
    assert attrs["givenName"] == ["Ann"]
    assert attrs["sn"] == ["Example"]
    assert attrs["costCentre"] == ["CC-4711"]
    assert attrs["employeeNumber"] == ["P-0815"]
    assert attrs["o"] == ["Corp GmbH"]
    assert attrs["desk"] == ["B-12"]
    assert sorted(attrs["roles"]) == ["approver", "buyer"]
    assert auth.get_attribute("urn:oid:0.9.2342.19200300.100.1.3") == ["ann@corp.example"]
    assert auth.get_session_index()
    assert auth.get_last_response_in_response_to() == request_id

    doc = etree.fromstring(response_xml(fields).encode())
    assert doc.get("Destination") == sp.acs_url
    assert doc.find("ds:Signature", NS) is not None
    assertion = doc.find("saml:Assertion", NS)
    assert assertion.find("ds:Signature", NS) is not None
    method = assertion.find("ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS)
    assert method.get("Algorithm").endswith("rsa-sha256")
    data = assertion.find(".//saml:SubjectConfirmationData", NS)
    assert data.get("Recipient") == sp.acs_url
    assert data.get("InResponseTo") == request_id
    assert assertion.findtext(".//saml:Audience", namespaces=NS) == sp.entity_id
    ref = assertion.findtext(".//saml:AuthnContextClassRef", namespaces=NS)
    assert ref.startswith("urn:oasis:names:tc:SAML:2.0:ac:classes:")


def test_the_sign_in_is_recorded_for_the_dashboard(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = saml_flow.make_sp(app, client)
    saml_flow.sign_in(app, client, sp, account_id)
    with app.app_context():
        rows = db.session.query(SignIn).filter_by(account_id=account_id).all()
        merchant = merchants.of_service_provider(sp.entity_id)
        assert merchant is not None
        assert [(r.merchant_id, r.protocol) for r in rows] == [(merchant.id, "saml")]
        assert "email" in rows[0].released and "cost_centre" in rows[0].released


@pytest.mark.parametrize(("sign_assertion", "sign_response"), [(True, False), (False, True)])
def test_only_the_configured_element_is_signed(
    app: Flask, client: FlaskClient, account_id: str, sign_assertion: bool, sign_response: bool
) -> None:
    sp = saml_flow.make_sp(
        app,
        client,
        {"sign_assertion": sign_assertion, "sign_response": sign_response},
        want_assertions_signed=sign_assertion,
        want_messages_signed=sign_response,
    )
    fields, request_id = saml_flow.sign_in(app, client, sp, account_id)
    doc = etree.fromstring(response_xml(fields).encode())
    assert (doc.find("ds:Signature", NS) is not None) is sign_response
    assert (doc.find("saml:Assertion/ds:Signature", NS) is not None) is sign_assertion
    auth = sp.accept(fields, request_id)
    assert auth.get_errors() == [], auth.get_last_error_reason()

    strict = ServiceProvider(
        sp.idp_metadata, want_assertions_signed=True, want_messages_signed=True
    )
    assert strict.accept(fields, request_id).get_errors() != []


def test_encrypted_assertion_for_an_sp_with_an_encryption_certificate(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = saml_flow.make_sp(app, client, want_assertions_encrypted=True)
    fields, request_id = saml_flow.sign_in(app, client, sp, account_id)
    xml = response_xml(fields)
    assert "ann@corp.example" not in xml and "CC-4711" not in xml
    doc = etree.fromstring(xml.encode())
    method = doc.find("saml:EncryptedAssertion/xenc:EncryptedData/xenc:EncryptionMethod", NS)
    assert method.get("Algorithm") == "http://www.w3.org/2009/xmlenc11#aes256-gcm"
    auth = sp.accept(fields, request_id)
    assert auth.get_errors() == [], auth.get_last_error_reason()
    assert auth.get_friendlyname_attributes()["mail"] == ["ann@corp.example"]


def test_encryption_honours_the_algorithms_the_sp_lists(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = ServiceProvider(saml_flow.idp_metadata(client), want_assertions_encrypted=True)
    metadata = sp.metadata().replace(
        b'<md:KeyDescriptor use="encryption">',
        b'<md:KeyDescriptor use="encryption">',
    )
    doc = etree.fromstring(metadata)
    kd = doc.find(".//{urn:oasis:names:tc:SAML:2.0:metadata}KeyDescriptor[@use='encryption']")
    etree.SubElement(
        kd, "{urn:oasis:names:tc:SAML:2.0:metadata}EncryptionMethod", Algorithm=ENC_AES128_CBC
    )
    with app.app_context():
        from idp.saml import registry

        registry.register(etree.tostring(doc), actor="test")
    fields, request_id = saml_flow.sign_in(app, client, sp, account_id)
    xml_doc = etree.fromstring(response_xml(fields).encode())
    method = xml_doc.find("saml:EncryptedAssertion/xenc:EncryptedData/xenc:EncryptionMethod", NS)
    assert method.get("Algorithm") == ENC_AES128_CBC
    assert sp.accept(fields, request_id).get_errors() == []


def test_persistent_nameid_is_stable_per_sp_and_differs_between_sps(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    shop = saml_flow.make_sp(app, client, host="shop.example")
    erp = saml_flow.make_sp(app, client, host="erp.example")
    first = shop.accept(*saml_flow.sign_in(app, client, shop, account_id)).get_nameid()
    again = shop.accept(*saml_flow.sign_in(app, client, shop, account_id)).get_nameid()
    other = erp.accept(*saml_flow.sign_in(app, client, erp, account_id)).get_nameid()
    assert first == again
    assert first != other
    assert account_id not in first and "ann@" not in first


def test_email_and_transient_nameid_formats(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    mail = saml_flow.make_sp(app, client, {"nameid_format": "email"}, host="mail.example")
    auth = mail.accept(*saml_flow.sign_in(app, client, mail, account_id))
    assert auth.get_errors() == []
    assert (auth.get_nameid(), auth.get_nameid_format()) == ("ann@corp.example", NAMEID_EMAIL)

    temp = saml_flow.make_sp(app, client, {"nameid_format": "transient"}, host="temp.example")
    one = temp.accept(*saml_flow.sign_in(app, client, temp, account_id))
    two = temp.accept(*saml_flow.sign_in(app, client, temp, account_id))
    assert one.get_errors() == [] and two.get_errors() == []
    assert one.get_nameid_format() == NAMEID_TRANSIENT
    assert one.get_nameid() != two.get_nameid()


def test_nameid_policy_the_sp_was_not_registered_for_is_refused(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = saml_flow.make_sp(app, client)
    sp.extra_security = {}
    settings = sp.settings_dict()
    settings["sp"]["NameIDFormat"] = NAMEID_EMAIL
    from onelogin.saml2.auth import OneLogin_Saml2_Auth

    auth = OneLogin_Saml2_Auth(sp._request_data("/saml/acs"), old_settings=settings)
    resp = saml_flow.get_url(client, auth.login(return_to="/x"))
    action, fields = posted_form(resp)
    assert action == sp.acs_url
    assert statuses(fields)[1] == STATUS_INVALID_NAMEID_POLICY


def test_http_post_binding_request(app: Flask, client: FlaskClient, account_id: str) -> None:
    sp = saml_flow.make_sp(app, client)
    form, request_id = sp.login_post()
    resp = saml_flow.post(client, "/saml/sso", form)
    ix_id = saml_flow.finish_login(app, resp, account_id)
    fields = posted_form(saml_flow.resume(client, ix_id))[1]
    assert fields["RelayState"] == "/post"
    assert sp.accept(fields, request_id).get_errors() == []


def test_cross_site_post_is_redelivered_with_the_browser_cookies(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = saml_flow.make_sp(app, client, {"nameid_format": "email"})
    oidc.start_session(app, client, account_id)
    with app.app_context():
        merchant = merchants.of_service_provider(sp.entity_id)
        assert merchant is not None
        consent.grant(account_id, merchant.id, scopes_for(DEFAULT_CLAIMS), DEFAULT_CLAIMS)
    form, request_id = sp.login_post()
    # a cross-site POST carries no SameSite=Lax cookie: the IdP bounces it to a GET
    bare = app.test_client()
    bare.set_cookie("lb-sticky", "node-2", domain="localhost")  # not one of ours
    resp = bare.post("/saml/sso", data=form)
    assert resp.status_code == 303
    location = urlsplit(resp.headers["Location"])
    assert location.path == "/saml/sso" and location.query.startswith("bounce=")
    # the top-level GET navigation carries the session cookie
    followed = client.get(location.path + "?" + location.query)
    fields = posted_form(followed)[1]
    auth = sp.accept(fields, request_id)
    assert auth.get_errors() == [], auth.get_last_error_reason()
    assert auth.get_nameid() == "ann@corp.example"
    # the stored message is single use
    assert client.get(location.path + "?" + location.query).status_code == 400


def test_live_session_with_consent_answers_without_login(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = saml_flow.make_sp(app, client)
    oidc.start_session(app, client, account_id)
    saml_flow.sign_in(app, client, sp, account_id)  # first time: login and consent
    resp, request_id = saml_flow.start(client, sp)
    fields = posted_form(resp)[1]
    assert sp.accept(fields, request_id).get_errors() == []


def test_live_session_without_consent_goes_to_the_login_pages_prefilled(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = saml_flow.make_sp(app, client)
    oidc.start_session(app, client, account_id)
    resp, _ = saml_flow.start(client, sp)
    assert oidc.is_login_redirect(app, resp)
    with app.app_context():
        ix = ephemeral().get(f"ix:{oidc.interaction_id(resp)}")
    assert ix["protocol"] == "saml" and ix["client_id"] == sp.entity_id
    assert ix["account_id"] == account_id and ix["prompt"] == []
    assert ix["resume_endpoint"] == "saml.resume"
    assert set(ix["scopes"]) == {"openid", "email", "profile", "phone", "wallet", "org"}


def test_force_authn_asks_for_a_fresh_login(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = saml_flow.make_sp(app, client)
    oidc.start_session(app, client, account_id)
    saml_flow.sign_in(app, client, sp, account_id)
    resp, request_id = saml_flow.start(client, sp, force_authn=True)
    assert oidc.is_login_redirect(app, resp)
    ix_id = oidc.interaction_id(resp)
    with app.app_context():
        ix = ephemeral().get(f"ix:{ix_id}")
    assert ix["prompt"] == ["login"] and ix["account_id"] is None
    # a login older than the request does not count as fresh
    oidc.finish(app, ix_id, account_id, auth_time=time.time() - 3600)
    fields = posted_form(saml_flow.resume(client, ix_id))[1]
    assert statuses(fields)[1] == STATUS_AUTHN_FAILED
    assert sp.accept(fields, request_id).get_errors() != []

    resp, request_id = saml_flow.start(client, sp, force_authn=True)
    ix_id = saml_flow.finish_login(app, resp, account_id)
    fields = posted_form(saml_flow.resume(client, ix_id))[1]
    assert sp.accept(fields, request_id).get_errors() == []


def test_is_passive_without_session_answers_no_passive(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = saml_flow.make_sp(app, client)
    resp, request_id = saml_flow.start(client, sp, is_passive=True)
    action, fields = posted_form(resp)
    assert action == sp.acs_url
    assert statuses(fields)[1] == STATUS_NO_PASSIVE
    auth = sp.accept(fields, request_id)
    assert not auth.is_authenticated()


def test_is_passive_with_session_and_consent_answers_at_once(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = saml_flow.make_sp(app, client)
    oidc.start_session(app, client, account_id)
    resp, _ = saml_flow.start(client, sp, is_passive=True)
    assert statuses(posted_form(resp)[1])[1] == STATUS_NO_PASSIVE  # no consent yet
    saml_flow.sign_in(app, client, sp, account_id)
    resp, request_id = saml_flow.start(client, sp, is_passive=True)
    auth = sp.accept(posted_form(resp)[1], request_id)
    assert auth.get_errors() == [] and auth.is_authenticated()


def _finish_without(app: Flask, ix_id: str, account_id: str | None) -> None:
    with app.test_request_context("/"):
        ix = interaction.Interaction(**ephemeral().get(f"ix:{ix_id}"))
        if account_id:
            ix.account_id = account_id
            ix.auth_time = time.time()
        interaction.save(ix)


@pytest.mark.parametrize(
    ("authenticated", "status"), [(True, STATUS_REQUEST_DENIED), (False, STATUS_AUTHN_FAILED)]
)
def test_unfinished_interaction_answers_an_error_status(
    app: Flask, client: FlaskClient, account_id: str, authenticated: bool, status: str
) -> None:
    sp = saml_flow.make_sp(app, client)
    resp, request_id = saml_flow.start(client, sp)
    ix_id = oidc.interaction_id(resp)
    _finish_without(app, ix_id, account_id if authenticated else None)
    action, fields = posted_form(saml_flow.resume(client, ix_id))
    assert action == sp.acs_url
    assert statuses(fields)[1] == status
    auth = sp.accept(fields, request_id)
    assert not auth.is_authenticated()


def test_blocked_account_gets_no_assertion(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = saml_flow.make_sp(app, client)
    resp, _ = saml_flow.start(client, sp)
    ix_id = saml_flow.finish_login(app, resp, account_id)
    oidc.set_status(app, account_id, "blocked")
    fields = posted_form(saml_flow.resume(client, ix_id))[1]
    assert statuses(fields)[1] == STATUS_AUTHN_FAILED


def test_resume_is_single_use_and_bound_to_the_browser(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = saml_flow.make_sp(app, client)
    resp, _ = saml_flow.start(client, sp)
    ix_id = saml_flow.finish_login(app, resp, account_id)
    other = app.test_client()
    stolen = saml_flow.resume(other, ix_id)
    assert stolen.status_code == 400 and b"<form" not in stolen.data
    assert saml_flow.resume(client, ix_id).status_code == 200
    again = saml_flow.resume(client, ix_id)
    assert again.status_code == 400 and b"SAMLResponse" not in again.data


def test_post_page_has_a_nonce_script_and_a_narrow_form_action(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = saml_flow.make_sp(app, client)
    resp, _ = saml_flow.start(client, sp)
    ix_id = saml_flow.finish_login(app, resp, account_id)
    page = saml_flow.resume(client, ix_id)
    csp = page.headers["Content-Security-Policy"]
    assert "form-action https://merchant.example;" in csp
    assert "frame-ancestors 'none'" in csp and "script-src 'nonce-" in csp
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"


def test_idp_initiated_sso_is_off_by_default(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    sp = saml_flow.make_sp(app, client)
    resp = client.get("/saml/idp-initiated", query_string={"sp": sp.entity_id})
    assert resp.status_code == 403 and b"<form" not in resp.data


def test_idp_initiated_sso_when_enabled(app: Flask, client: FlaskClient, account_id: str) -> None:
    sp = saml_flow.make_sp(app, client, {"idp_initiated": True})
    resp = client.get(
        "/saml/idp-initiated", query_string={"sp": sp.entity_id, "RelayState": "/catalogue"}
    )
    ix_id = saml_flow.finish_login(app, resp, account_id)
    action, fields = posted_form(saml_flow.resume(client, ix_id))
    assert action == sp.acs_url and fields["RelayState"] == "/catalogue"
    doc = etree.fromstring(response_xml(fields).encode())
    assert doc.get("InResponseTo") is None
    auth = sp.accept(fields, None)
    assert auth.get_errors() == [], auth.get_last_error_reason()


def test_deleted_sp_cannot_be_answered(app: Flask, client: FlaskClient, account_id: str) -> None:
    sp = saml_flow.make_sp(app, client)
    resp, _ = saml_flow.start(client, sp)
    ix_id = saml_flow.finish_login(app, resp, account_id)
    with app.app_context():
        assert registry.unregister(sp.entity_id, actor="test") is not None
    page = saml_flow.resume(client, ix_id)
    assert page.status_code == 400 and b"<form" not in page.data


def test_fresh_code_policy_forces_authn_for_every_saml_request(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    """The unit policy fresh_code_every_sign_in (idp.factors.fresh_code): a live session
    and earlier consent no longer sign in silently; IsPassive gets NoPassive."""
    from idp.factors import fresh_code

    sp = saml_flow.make_sp(app, client)
    oidc.start_session(app, client, account_id)
    saml_flow.sign_in(app, client, sp, account_id)
    resp, _ = saml_flow.start(client, sp)
    assert not oidc.is_login_redirect(app, resp)  # single sign-on without the policy
    with app.app_context():
        fresh_code.set_unit_policy("corp-gmbh", True, "test")
    resp, _ = saml_flow.start(client, sp)
    assert oidc.is_login_redirect(app, resp)
    ix_id = oidc.interaction_id(resp)
    with app.app_context():
        ix = ephemeral().get(f"ix:{ix_id}")
    assert ix["prompt"] == ["login"] and ix["account_id"] is None
    resp, _ = saml_flow.start(client, sp, is_passive=True)
    assert statuses(posted_form(resp)[1])[1] == STATUS_NO_PASSIVE
