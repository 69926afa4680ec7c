"""A real SAML SP's SOAP SingleLogoutService for tests (saml-bindings 3.2): a server
thread on 127.0.0.1 that takes ``POST text/xml`` SOAP 1.1 envelopes, checks the
``SOAPAction``, finds the LogoutRequest in the body and validates it as an SP would:
its enveloped XML signature with python3-saml (xmlsec) against the IdP certificate
from the IdP's metadata, ``Issuer``, ``Destination``, ``IssueInstant`` and
``NotOnOrAfter``, and an ``ID`` not seen before. Valid requests answer a SOAP
LogoutResponse (``Success``) and land in ``got`` (``name_id``, ``session_index``);
invalid ones answer 400 and land in ``rejected``; while ``down`` it answers 503."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

from lxml import etree
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from tests.support.webhook_receiver import Recording

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


def _instant(text: str | None) -> datetime:
    return datetime.strptime(text or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass
class SoapLogoutReceiver(Recording):
    port: int
    idp_metadata: bytes
    seen_ids: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/saml/slo/soap"

    def idp(self) -> dict[str, Any]:
        parsed: dict[str, Any] = OneLogin_Saml2_IdPMetadataParser.parse(self.idp_metadata)
        return dict(parsed["idp"])

    def validate(self, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        """What a valid LogoutRequest names, else ValueError naming the check."""
        if not headers.get("content-type", "").startswith("text/xml"):
            raise ValueError("content type")
        if "oasis-open.org/committees/security" not in headers.get("soapaction", ""):
            raise ValueError("SOAPAction")
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        envelope = etree.fromstring(body, parser)
        if envelope.tag != f"{{{SOAP}}}Envelope":
            raise ValueError("envelope")
        request = envelope.find(f"{{{SOAP}}}Body/{{{SAMLP}}}LogoutRequest")
        if request is None:
            raise ValueError("no LogoutRequest")
        idp = self.idp()
        certs = [OneLogin_Saml2_Utils.format_cert(c) for c in
                 idp.get("x509certMulti", {}).get("signing") or [idp["x509cert"]]]
        if not OneLogin_Saml2_Utils.validate_sign(
                etree.tostring(request), xpath="/samlp:LogoutRequest/ds:Signature",
                multicerts=certs):
            raise ValueError("signature")
        if request.findtext(f"{{{SAML}}}Issuer") != idp["entityId"]:
            raise ValueError("Issuer")
        if request.get("Destination") != self.url:
            raise ValueError("Destination")
        now = datetime.now(UTC)
        if abs(now - _instant(request.get("IssueInstant"))) > timedelta(minutes=5):
            raise ValueError("IssueInstant")
        if _instant(request.get("NotOnOrAfter")) <= now:
            raise ValueError("NotOnOrAfter")
        request_id = request.get("ID") or ""
        if not request_id or request_id in self.seen_ids:
            raise ValueError("ID")
        self.seen_ids.add(request_id)
        return {"id": request_id, "name_id": request.findtext(f"{{{SAML}}}NameID"),
                "session_index": request.findtext(f"{{{SAMLP}}}SessionIndex")}

    def start(self) -> SoapLogoutReceiver:
        self.serve_posts(self.port, self.answer)
        return self

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        """Validate one POST and answer it: a SOAP LogoutResponse, or 400."""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            got = self.validate(body, headers)
        except (ValueError, etree.XMLSyntaxError) as exc:
            self.rejected.append(str(exc))
            handler.send_response(400)
            handler.end_headers()
            return
        self.got.append(got)
        answer = (
            f'<soap11:Envelope xmlns:soap11="{SOAP}"><soap11:Body>'
            f'<samlp:LogoutResponse xmlns:samlp="{SAMLP}" ID="_r{got["id"]}"'
            f' Version="2.0" InResponseTo="{got["id"]}"'
            f' IssueInstant="{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}">'
            f'<samlp:Status><samlp:StatusCode'
            f' Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
            f"</samlp:LogoutResponse></soap11:Body></soap11:Envelope>"
        ).encode()
        handler.send_response(200)
        handler.send_header("content-type", "text/xml")
        handler.send_header("content-length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)
