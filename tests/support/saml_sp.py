"""A real SAML service provider for the IdP tests: python3-saml in strict mode.

It produces its metadata (registered with ``idp saml sps add``), builds
AuthnRequests and LogoutRequests exactly as a merchant's python3-saml would
(HTTP-Redirect, optionally signed; HTTP-POST built and signed with its helpers), and
validates the IdP's Responses, LogoutRequests and LogoutResponses end to end:
signatures against the certificates in the IdP's metadata, Destination, Recipient,
Audience, InResponseTo, NotOnOrAfter and the XML schema.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.constants import OneLogin_Saml2_Constants as Const
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from werkzeug.test import TestResponse


@cache
def keypair(common_name: str) -> tuple[str, str]:
    """An RSA private key and a self-signed certificate (PEM), cached per name."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class ServiceProvider:
    """One merchant's SP. ``idp_metadata`` is the XML served at /saml/metadata."""

    idp_metadata: bytes
    host: str = "merchant.example"
    scheme: str = "https"
    sign_requests: bool = False
    want_assertions_signed: bool = True
    want_messages_signed: bool = True
    want_assertions_encrypted: bool = False
    extra_security: dict[str, Any] = field(default_factory=dict)

    @property
    def entity_id(self) -> str:
        return f"{self.scheme}://{self.host}/saml/metadata"

    @property
    def acs_url(self) -> str:
        return f"{self.scheme}://{self.host}/saml/acs"

    @property
    def sls_url(self) -> str:
        return f"{self.scheme}://{self.host}/saml/sls"

    def settings_dict(self) -> dict[str, Any]:
        key, cert = keypair(self.host)
        idp = OneLogin_Saml2_IdPMetadataParser.parse(self.idp_metadata)["idp"]
        security = {
            "authnRequestsSigned": self.sign_requests,
            "logoutRequestSigned": self.sign_requests,
            "logoutResponseSigned": self.sign_requests,
            "wantMessagesSigned": self.want_messages_signed,
            "wantAssertionsSigned": self.want_assertions_signed,
            "wantAssertionsEncrypted": self.want_assertions_encrypted,
            "wantNameId": True,
            "wantAttributeStatement": True,
            "requestedAuthnContext": False,
            "rejectDeprecatedAlgorithm": True,
            "signatureAlgorithm": Const.RSA_SHA256,
            "digestAlgorithm": Const.SHA256,
        }
        security.update(self.extra_security)
        return {
            "strict": True,
            "debug": False,
            "sp": {
                "entityId": self.entity_id,
                "assertionConsumerService": {
                    "url": self.acs_url,
                    "binding": Const.BINDING_HTTP_POST,
                },
                "singleLogoutService": {
                    "url": self.sls_url,
                    "binding": Const.BINDING_HTTP_REDIRECT,
                },
                "NameIDFormat": Const.NAMEID_UNSPECIFIED,
                "x509cert": cert,
                "privateKey": key,
            },
            "idp": idp,
            "security": security,
        }

    def settings(self) -> OneLogin_Saml2_Settings:
        return OneLogin_Saml2_Settings(self.settings_dict())

    def metadata(self) -> bytes:
        """The SP's metadata, as the merchant would hand it over."""
        xml = self.settings().get_sp_metadata()
        return xml if isinstance(xml, bytes) else xml.encode()

    def _request_data(
        self,
        path: str,
        get: dict[str, str] | None = None,
        post: dict[str, str] | None = None,
        query: str = "",
    ) -> dict[str, Any]:
        return {
            "https": "on" if self.scheme == "https" else "off",
            "http_host": self.host,
            "script_name": path,
            "get_data": get or {},
            "post_data": post or {},
            "query_string": query,
            "validate_signature_from_qs": bool(query),
        }

    def auth(self, **request_data: Any) -> OneLogin_Saml2_Auth:
        return OneLogin_Saml2_Auth(
            self._request_data("/saml/acs", **request_data), old_settings=self.settings()
        )

    # -- SSO -----------------------------------------------------------------------
    def login_redirect(
        self, relay_state: str = "/basket", force_authn: bool = False, is_passive: bool = False
    ) -> tuple[str, str]:
        """(the IdP URL with the HTTP-Redirect AuthnRequest, the request ID)."""
        auth = self.auth()
        url = auth.login(return_to=relay_state, force_authn=force_authn, is_passive=is_passive)
        return url, auth.get_last_request_id()

    def authn_request_xml(
        self, force_authn: bool = False, is_passive: bool = False
    ) -> tuple[str, str]:
        """(AuthnRequest XML, its ID) as python3-saml builds it."""
        req = OneLogin_Saml2_Authn_Request(self.settings(), force_authn, is_passive)
        return req.get_xml().decode() if isinstance(
            req.get_xml(), bytes
        ) else req.get_xml(), req.get_id()

    def login_post(
        self, sign: bool | None = None, force_authn: bool = False
    ) -> tuple[dict[str, str], str]:
        """(form fields of an HTTP-POST AuthnRequest, the request ID); signed
        enveloped with the SP key when ``sign`` (default: ``sign_requests``)."""
        xml, request_id = self.authn_request_xml(force_authn=force_authn)
        if self.sign_requests if sign is None else sign:
            key, cert = keypair(self.host)
            signed = OneLogin_Saml2_Utils.add_sign(
                xml, key, cert, sign_algorithm=Const.RSA_SHA256, digest_algorithm=Const.SHA256
            )
            xml = signed.decode() if isinstance(signed, bytes) else signed
        return {
            "SAMLRequest": base64.b64encode(xml.encode()).decode(),
            "RelayState": "/post",
        }, request_id

    def accept(self, form: dict[str, str], request_id: str | None) -> OneLogin_Saml2_Auth:
        """Process a posted SAMLResponse at the ACS like the merchant would."""
        auth = self.auth(post=form)
        auth.process_response(request_id=request_id)
        return auth

    # -- SLO -----------------------------------------------------------------------
    def logout_redirect(
        self,
        name_id: str,
        session_index: str | None,
        name_id_format: str,
        relay_state: str = "/bye",
    ) -> tuple[str, str]:
        auth = self.auth()
        url = auth.logout(
            return_to=relay_state,
            name_id=name_id,
            session_index=session_index,
            name_id_format=name_id_format,
            nq=None,
            spnq=self.entity_id,
        )
        return url, auth.get_last_request_id()

    def handle_logout(
        self, url: str, request_id: str | None = None
    ) -> tuple[OneLogin_Saml2_Auth, str | None]:
        """Process a LogoutRequest or LogoutResponse the IdP redirected to the SLS;
        returns the auth object and, for a request, the URL of the SP's answer."""
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == self.sls_url, url
        get = {k: v[0] for k, v in parse_qs(parts.query).items()}
        auth = OneLogin_Saml2_Auth(
            self._request_data("/saml/sls", get=get, query=parts.query),
            old_settings=self.settings(),
        )
        answer = auth.process_slo(request_id=request_id, keep_local_session=True)
        return auth, answer


FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')
FORM_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def posted_form(resp: TestResponse) -> tuple[str, dict[str, str]]:
    """(action, fields) of the IdP's auto-submitting POST page."""
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    html = resp.get_data(as_text=True)
    action = FORM_ACTION.search(html)
    assert action is not None, html[:500]
    return unescape(action.group(1)), {
        unescape(k): unescape(v) for k, v in FORM_FIELD.findall(html)
    }


def response_xml(fields: dict[str, str]) -> str:
    return base64.b64decode(fields["SAMLResponse"]).decode()


def with_soap_logout(sp: ServiceProvider, soap_url: str | None, browser: bool = True) -> bytes:
    """``sp``'s metadata that also names a SOAP SingleLogoutService at ``soap_url``
    (None: none), keeping its HTTP-Redirect one when ``browser``."""
    from lxml import etree

    from idp.saml.constants import BINDING_SOAP, NS_MD

    doc = etree.fromstring(sp.metadata())
    descriptor = doc.find(f"{{{NS_MD}}}SPSSODescriptor")
    assert descriptor is not None
    redirect_slo = descriptor.find(f"{{{NS_MD}}}SingleLogoutService")
    assert redirect_slo is not None
    if soap_url is not None:
        redirect_slo.addnext(etree.Element(f"{{{NS_MD}}}SingleLogoutService",
                                           Binding=BINDING_SOAP, Location=soap_url))
    if not browser:
        descriptor.remove(redirect_slo)
    return bytes(etree.tostring(doc))


@dataclass
class MetadataServer:
    """SP metadata served over plain HTTP on loopback: ``url`` is the document, other
    paths answer 404; ``hits`` lists every path asked for."""

    base: str
    hits: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.base + "/saml/metadata"


@contextmanager
def metadata_server(body: bytes) -> Iterator[MetadataServer]:
    """A real HTTP server on loopback serving ``body`` at ``/saml/metadata``."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = MetadataServer("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            if self.path != "/saml/metadata":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/samlmetadata+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
