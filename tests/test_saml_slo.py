"""Single logout (SP-initiated, front channel): the Unitgate session ends, the other
SPs of the session are asked to log out (signed LogoutRequests they validate in strict
mode), and the initiating SP gets a signed LogoutResponse."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants as Const
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
from onelogin.saml2.logout_response import OneLogin_Saml2_Logout_Response
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from werkzeug.test import TestResponse

from idp.interaction import sessions
from idp.saml import registry
from idp.store import saml_repo, sessions_repo
from tests.support import oidc, saml_flow
from tests.support.saml_sp import ServiceProvider, posted_form


@pytest.fixture(autouse=True)
def _login_endpoint(app: Flask) -> None:
    oidc.ensure_login_endpoint(app)


@pytest.fixture
def account_id(app: Flask) -> str:
    return oidc.make_account(app, "sam@corp.example")


def signed_in(
    app: Flask, client: FlaskClient, sp: ServiceProvider, account: str
) -> OneLogin_Saml2_Auth:
    auth = sp.accept(*saml_flow.sign_in(app, client, sp, account))
    assert auth.get_errors() == [], auth.get_last_error_reason()
    return auth


def session_rows(app: Flask, account: str) -> int:
    with app.app_context():
        return len(sessions_repo.for_account(account))


def redirect_target(resp: TestResponse) -> str:
    assert resp.status_code == 302, resp.get_data(as_text=True)[:400]
    return resp.headers["Location"]


def status_of(url: str) -> list[str]:
    query = parse_qs(urlsplit(url).query)
    xml = OneLogin_Saml2_Utils.decode_base64_and_inflate(query["SAMLResponse"][0])
    doc = etree.fromstring(xml)
    return [c.get("Value") for c in doc.iter("{urn:oasis:names:tc:SAML:2.0:protocol}StatusCode")]


def test_slo_round_trip_through_every_session_participant(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    oidc.start_session(app, client, account_id)
    shop = saml_flow.make_sp(app, client, host="shop.example")
    erp = saml_flow.make_sp(app, client, host="erp.example")
    at_shop = signed_in(app, client, shop, account_id)
    signed_in(app, client, erp, account_id)
    assert session_rows(app, account_id) == 1

    url, logout_id = shop.logout_redirect(
        at_shop.get_nameid(), at_shop.get_session_index(), at_shop.get_nameid_format()
    )
    resp = saml_flow.get_url(client, url)
    # the session is over at once, whatever the other SPs answer
    assert session_rows(app, account_id) == 0
    # erp is asked to log out with a signed LogoutRequest it validates strictly
    to_erp = redirect_target(resp)
    assert to_erp.startswith(erp.sls_url + "?") and "Signature=" in to_erp
    erp_auth, erp_answer = erp.handle_logout(to_erp)
    assert erp_auth.get_errors() == [], erp_auth.get_last_error_reason()
    assert erp_answer is not None
    # erp's LogoutResponse comes back; then shop gets the final LogoutResponse
    final = redirect_target(saml_flow.get_url(client, erp_answer))
    assert final.startswith(shop.sls_url + "?")
    shop_auth, _ = shop.handle_logout(final, request_id=logout_id)
    assert shop_auth.get_errors() == [], shop_auth.get_last_error_reason()
    assert parse_qs(urlsplit(final).query)["RelayState"] == ["/bye"]
    assert status_of(final) == [Const.STATUS_SUCCESS]

    # no session any more: the next sign-in needs the login pages
    resp, _ = saml_flow.start(client, shop)
    assert oidc.is_login_redirect(app, resp)


def test_a_failing_participant_makes_it_a_partial_logout(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    oidc.start_session(app, client, account_id)
    shop = saml_flow.make_sp(app, client, host="shop.example")
    erp = saml_flow.make_sp(app, client, host="erp.example")
    at_shop = signed_in(app, client, shop, account_id)
    signed_in(app, client, erp, account_id)
    url, logout_id = shop.logout_redirect(
        at_shop.get_nameid(), at_shop.get_session_index(), at_shop.get_nameid_format()
    )
    to_erp = redirect_target(saml_flow.get_url(client, url))
    request_id = etree.fromstring(
        OneLogin_Saml2_Utils.decode_base64_and_inflate(
            parse_qs(urlsplit(to_erp).query)["SAMLRequest"][0]
        )
    ).get("ID")
    failed = OneLogin_Saml2_Logout_Response(erp.settings())
    failed.build(request_id, status=Const.STATUS_RESPONDER)
    relay = parse_qs(urlsplit(to_erp).query)["RelayState"][0]
    answer = OneLogin_Saml2_Auth(erp._request_data("/saml/sls"), erp.settings()).redirect_to(
        "http://localhost/saml/slo", {"SAMLResponse": failed.get_response(), "RelayState": relay}
    )
    final = redirect_target(saml_flow.get_url(client, answer))
    assert status_of(final) == [
        Const.STATUS_SUCCESS,
        "urn:oasis:names:tc:SAML:2.0:status:PartialLogout",
    ]
    # the Response is valid; python3-saml accepts a top-level Success with a sub-status
    assert shop.handle_logout(final, request_id=logout_id)[0].get_errors() == []


def test_participant_with_post_binding_gets_a_signed_posted_logout_request(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    oidc.start_session(app, client, account_id)
    shop = saml_flow.make_sp(app, client, host="shop.example")
    erp = ServiceProvider(saml_flow.idp_metadata(client), host="erp.example")
    metadata = erp.metadata().replace(
        Const.BINDING_HTTP_REDIRECT.encode(), Const.BINDING_HTTP_POST.encode()
    )
    with app.app_context():
        from idp.saml import registry

        registry.register(metadata, actor="test")
    at_shop = signed_in(app, client, shop, account_id)
    signed_in(app, client, erp, account_id)
    url, logout_id = shop.logout_redirect(
        at_shop.get_nameid(), at_shop.get_session_index(), at_shop.get_nameid_format()
    )
    action, fields = posted_form(saml_flow.get_url(client, url))
    assert action == erp.sls_url
    xml = base64.b64decode(fields["SAMLRequest"])
    idp_cert = OneLogin_Saml2_Utils.format_cert(erp.settings_dict()["idp"]["x509cert"])
    assert OneLogin_Saml2_Utils.validate_sign(
        xml, idp_cert, xpath="/samlp:LogoutRequest/ds:Signature", raise_exceptions=True
    )
    # the signature is verified above; python3-saml checks the rest (it looks for
    # signatures in the query string only)
    checker = ServiceProvider(erp.idp_metadata, host="erp.example", want_messages_signed=False)
    request = OneLogin_Saml2_Logout_Request(checker.settings(), base64.b64encode(xml).decode())
    posted = erp._request_data("/saml/sls", post={"SAMLRequest": fields["SAMLRequest"]})
    assert request.is_valid(posted, raise_exceptions=True)
    ok = OneLogin_Saml2_Logout_Response(erp.settings())
    ok.build(request.id)
    answer = OneLogin_Saml2_Auth(erp._request_data("/saml/sls"), erp.settings()).redirect_to(
        "http://localhost/saml/slo",
        {"SAMLResponse": ok.get_response(), "RelayState": fields["RelayState"]},
    )
    final = redirect_target(saml_flow.get_url(client, answer))
    assert shop.handle_logout(final, request_id=logout_id)[0].get_errors() == []


def test_posted_logout_request(app: Flask, client: FlaskClient, account_id: str) -> None:
    oidc.start_session(app, client, account_id)
    shop = saml_flow.make_sp(app, client, host="shop.example")
    at_shop = signed_in(app, client, shop, account_id)
    request = OneLogin_Saml2_Logout_Request(
        shop.settings(),
        name_id=at_shop.get_nameid(),
        session_index=at_shop.get_session_index(),
        name_id_format=at_shop.get_nameid_format(),
        spnq=shop.entity_id,
    )
    xml = request.get_xml()
    form = {
        "SAMLRequest": base64.b64encode(xml if isinstance(xml, bytes) else xml.encode()).decode(),
        "RelayState": "/after",
    }
    # posted from the SP's site: no SameSite=Lax cookie comes along, so the IdP
    # re-delivers the message through a top-level GET that carries the session cookie
    bounced = app.test_client().post("/saml/slo", data=form)
    assert bounced.status_code == 303
    assert session_rows(app, account_id) == 1
    final = redirect_target(saml_flow.get_url(client, bounced.headers["Location"]))
    assert shop.handle_logout(final, request_id=request.id)[0].get_errors() == []
    assert parse_qs(urlsplit(final).query)["RelayState"] == ["/after"]
    assert session_rows(app, account_id) == 0


def test_logout_for_another_subject_ends_nothing(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    oidc.start_session(app, client, account_id)
    shop = saml_flow.make_sp(app, client, host="shop.example")
    at_shop = signed_in(app, client, shop, account_id)
    url, _ = shop.logout_redirect(
        "someone-else", at_shop.get_session_index(), at_shop.get_nameid_format()
    )
    final = redirect_target(saml_flow.get_url(client, url))
    assert status_of(final) == [
        Const.STATUS_REQUESTER,
        "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal",
    ]
    assert session_rows(app, account_id) == 1
    url, _ = shop.logout_redirect(at_shop.get_nameid(), "_wrong-index", at_shop.get_nameid_format())
    redirect_target(saml_flow.get_url(client, url))
    assert session_rows(app, account_id) == 1


def test_logout_without_a_session_succeeds_and_is_not_replayable(
    app: Flask, client: FlaskClient
) -> None:
    shop = saml_flow.make_sp(app, client, host="shop.example")
    url, logout_id = shop.logout_redirect("x", None, Const.NAMEID_PERSISTENT)
    final = redirect_target(saml_flow.get_url(client, url))
    assert shop.handle_logout(final, request_id=logout_id)[0].get_errors() == []
    again = saml_flow.get_url(client, url)
    assert again.status_code == 400 and "Location" not in again.headers


def test_signed_logout_required(app: Flask, client: FlaskClient, account_id: str) -> None:
    oidc.start_session(app, client, account_id)
    shop = saml_flow.make_sp(
        app, client, {"require_signed_requests": True}, host="shop.example", sign_requests=True
    )
    at_shop = signed_in(app, client, shop, account_id)
    unsigned = ServiceProvider(shop.idp_metadata, host="shop.example")
    url, _ = unsigned.logout_redirect(
        at_shop.get_nameid(), at_shop.get_session_index(), at_shop.get_nameid_format()
    )
    refused = saml_flow.get_url(client, url)
    assert refused.status_code == 400 and "Location" not in refused.headers
    assert session_rows(app, account_id) == 1
    url, logout_id = shop.logout_redirect(
        at_shop.get_nameid(), at_shop.get_session_index(), at_shop.get_nameid_format()
    )
    final = redirect_target(saml_flow.get_url(client, url))
    assert shop.handle_logout(final, request_id=logout_id)[0].get_errors() == []
    assert session_rows(app, account_id) == 0


def test_logout_response_needs_the_chain_and_its_browser(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    oidc.start_session(app, client, account_id)
    shop = saml_flow.make_sp(app, client, host="shop.example")
    erp = saml_flow.make_sp(app, client, host="erp.example")
    at_shop = signed_in(app, client, shop, account_id)
    signed_in(app, client, erp, account_id)
    url, _ = shop.logout_redirect(
        at_shop.get_nameid(), at_shop.get_session_index(), at_shop.get_nameid_format()
    )
    to_erp = redirect_target(saml_flow.get_url(client, url))
    _, erp_answer = erp.handle_logout(to_erp)
    assert erp_answer is not None
    stranger = app.test_client()
    resp = saml_flow.get_url(stranger, erp_answer)
    assert resp.status_code == 400 and "Location" not in resp.headers
    assert redirect_target(saml_flow.get_url(client, erp_answer)).startswith(shop.sls_url)
    # the same LogoutResponse again: the chain is over
    assert saml_flow.get_url(client, erp_answer).status_code == 400


def test_deleting_an_sp_forgets_its_participations(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    oidc.start_session(app, client, account_id)
    shop = saml_flow.make_sp(app, client, host="shop.example")
    signed_in(app, client, shop, account_id)
    cookie = client.get_cookie(sessions.COOKIE, domain="localhost")
    assert cookie is not None
    with app.test_request_context("/", headers={"Cookie": f"{sessions.COOKIE}={cookie.value}"}):
        row = sessions.current()
        assert row is not None
        assert len(saml_repo.participants(row.id_hash)) == 1
        assert registry.unregister(shop.entity_id, actor="test") is not None
        assert saml_repo.participants(row.id_hash) == []


def test_comment_injected_into_the_nameid_is_refused(
    app: Flask, client: FlaskClient, account_id: str
) -> None:
    oidc.start_session(app, client, account_id)
    shop = saml_flow.make_sp(app, client, {"nameid_format": "email"}, host="shop.example")
    at_shop = signed_in(app, client, shop, account_id)
    assert at_shop.get_nameid() == "sam@corp.example"
    request = OneLogin_Saml2_Logout_Request(
        shop.settings(), name_id="sam@corp.example", name_id_format=at_shop.get_nameid_format()
    )
    xml = request.get_xml()
    xml = xml.decode() if isinstance(xml, bytes) else xml
    injected = xml.replace("sam@corp.example", "sam@corp.example<!---->.evil.example")
    assert injected != xml
    query = "SAMLRequest=" + OneLogin_Saml2_Utils.escape_url(
        OneLogin_Saml2_Utils.deflate_and_base64_encode(injected)
    )
    resp = client.get("/saml/slo?" + query)
    assert resp.status_code == 400 and "Location" not in resp.headers
    assert session_rows(app, account_id) == 1
