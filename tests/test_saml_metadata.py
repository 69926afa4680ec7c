"""IdP metadata and certificate rollover: the RS256 keys of the key subsystem carry
self-signed certificates; after `idp keys rotate --alg RS256` the metadata lists both
certificates, responses are signed with the new key, and an SP that trusts the new
certificate validates them."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from lxml import etree
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from sqlalchemy import text

from idp.cli import main
from idp.crypto.keyring import KeyRing
from idp.saml import idp_metadata
from idp.services import keyring, services
from idp.store.db import db
from tests.support import oidc, saml_flow
from tests.support.saml_sp import ServiceProvider

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"md": MD, "ds": DS}


@pytest.fixture(autouse=True)
def _login_endpoint(app: Flask) -> None:
    oidc.ensure_login_endpoint(app)


@pytest.fixture
def restore_keys(app: Flask) -> Iterator[None]:
    """Keys survive between tests: undo this test's rotations."""
    with app.app_context():
        before = dict(db.session.execute(text("SELECT kid, state FROM signing_keys")).all())
    yield
    with app.app_context(), db.engine.begin() as conn:
        for (kid,) in conn.execute(text("SELECT kid FROM signing_keys")).all():
            if kid not in before:
                conn.execute(text("DELETE FROM signing_keys WHERE kid = :k"), {"k": kid})
        for kid, state in before.items():
            conn.execute(
                text("UPDATE signing_keys SET state = :s, retired_at = NULL WHERE kid = :k"),
                {"s": state, "k": kid},
            )


def cli(runner: FlaskCliRunner, *args: str) -> Any:
    result = runner.invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def certificates(metadata: bytes) -> list[str]:
    doc = etree.fromstring(metadata)
    return [
        "".join((c.text or "").split())
        for c in doc.iterfind(
            "md:IDPSSODescriptor/md:KeyDescriptor[@use='signing']/ds:KeyInfo/ds:X509Data/"
            "ds:X509Certificate",
            NS,
        )
    ]


def test_metadata_describes_the_idp(app: Flask, client: FlaskClient) -> None:
    resp = client.get("/saml/metadata")
    assert resp.status_code == 200
    assert resp.mimetype == "application/samlmetadata+xml"
    doc = etree.fromstring(resp.data)
    assert doc.get("entityID") == "http://localhost/saml/metadata"
    idp = doc.find("md:IDPSSODescriptor", NS)
    assert "urn:oasis:names:tc:SAML:2.0:protocol" in idp.get("protocolSupportEnumeration")
    bindings = {
        (e.tag.split("}")[1], e.get("Binding").rsplit(":", 1)[1], e.get("Location"))
        for e in idp
        if e.get("Binding")
    }
    assert bindings == {
        ("SingleSignOnService", "HTTP-Redirect", "http://localhost/saml/sso"),
        ("SingleSignOnService", "HTTP-POST", "http://localhost/saml/sso"),
        ("SingleLogoutService", "HTTP-Redirect", "http://localhost/saml/slo"),
        ("SingleLogoutService", "HTTP-POST", "http://localhost/saml/slo"),
    }
    formats = {e.text for e in idp.iterfind("md:NameIDFormat", NS)}
    assert "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" in formats
    [cert] = certificates(resp.data)
    # the certificate holds the public key of the active RS256 signing key
    with app.app_context():
        active = keyring().active("RS256")
        public = x509.load_der_x509_certificate(base64.b64decode(cert)).public_key()
        assert public.public_numbers() == active.key.public_key.public_numbers()
    parsed = OneLogin_Saml2_IdPMetadataParser.parse(resp.data)["idp"]
    assert parsed["entityId"] == "http://localhost/saml/metadata"


def test_every_worker_publishes_the_same_certificate(app: Flask, client: FlaskClient) -> None:
    first = certificates(client.get("/saml/metadata").data)
    with app.app_context():
        other_worker = KeyRing(services().sealer)
        pems = [k.certificate_pem for k in other_worker.certified("localhost")]
        assert [idp_metadata.certificate_base64(p) for p in pems if p] == first
    assert certificates(client.get("/saml/metadata").data) == first


def test_certificate_rollover(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, restore_keys: None
) -> None:
    account = oidc.make_account(app, "rolf@corp.example")
    before = saml_flow.idp_metadata(client)
    old_sp = saml_flow.make_sp(app, client, host="old.example")
    [old_cert] = certificates(before)

    rotated = cli(runner, "keys", "rotate", "--alg", "RS256", "--json")
    after = saml_flow.idp_metadata(client)
    assert certificates(after)[1:] == [old_cert]  # both listed, the new one first
    new_cert = certificates(after)[0]
    assert new_cert != old_cert

    # an SP that refreshed the metadata (both certificates) validates new responses
    fields, request_id = saml_flow.sign_in(app, client, old_sp, account)
    refreshed = ServiceProvider(after, host="old.example")
    assert refreshed.settings_dict()["idp"]["x509certMulti"]["signing"]
    auth = refreshed.accept(fields, request_id)
    assert auth.get_errors() == [], auth.get_last_error_reason()

    # an SP that trusts only the new certificate validates them as well
    only_new = ServiceProvider(after, host="old.example")
    settings = only_new.settings_dict()
    settings["idp"].pop("x509certMulti")
    settings["idp"]["x509cert"] = new_cert
    from onelogin.saml2.auth import OneLogin_Saml2_Auth

    auth = OneLogin_Saml2_Auth(only_new._request_data("/saml/acs", post=fields), settings)
    auth.process_response(request_id=request_id)
    assert auth.get_errors() == [], auth.get_last_error_reason()

    # an SP still trusting only the old certificate does not: the new key signs
    stale = old_sp.accept(fields, request_id)
    assert "invalid_response" in stale.get_errors()

    cli(runner, "keys", "retire", rotated["previous"][0], "--json")
    assert certificates(saml_flow.idp_metadata(client)) == [new_cert]
