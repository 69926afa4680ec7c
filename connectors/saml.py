"""Generic SAML 2.0 upstream (Unitgate as the service provider) via python3-saml.

Each connector is its own SP: entity id = its metadata URL, its own RSA key and
certificate (the private key sealed by the caller), metadata served per connector.

What a sign-in through this connector guarantees (SAML 2.0 Core, Profiles section
4.1.4 "Web Browser SSO", and python3-saml in strict mode):

* AuthnRequests are signed (rsa-sha256, HTTP-Redirect binding) and their ID is kept
  with the pending state; the Response's ``InResponseTo`` must equal it (no
  unsolicited responses).
* The assertion must be signed by one of the IdP's signing certificates (several
  are allowed for rollover); unsigned assertions, rsa-sha1 and sha1 digests are
  refused; only the signed node is read (python3-saml's signed-element checks
  defeat signature wrapping); NameID text is read whole, so a comment inside it
  cannot truncate it.
* ``Destination``/``Recipient`` must equal this ACS URL, ``Audience`` this SP's
  entity id, ``NotBefore``/``NotOnOrAfter`` hold, DTDs and entities are refused.
* Replay: each assertion ID is accepted once (``first_use`` in the shared ephemeral
  store) until its ``NotOnOrAfter``.
"""

from __future__ import annotations

import base64
import time
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants as Const
from onelogin.saml2.errors import OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from connectors import (
    ConfigurationError,
    ConnectorError,
    ReplayGuard,
    StartRequest,
    UpstreamIdentity,
)
from connectors.http import check_url, request

MAX_RESPONSE_BYTES = 256 * 1024
MAX_METADATA_BYTES = 512 * 1024
FRESH_SKEW_SECONDS = 120  # clock skew allowed for AuthnInstant after ForceAuthn
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
EMAIL_ATTRIBUTES = (
    "email",
    "mail",
    "emailAddress",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
)


def generate_sp_keypair(common_name: str) -> tuple[str, str]:
    """A new SP signing key and self-signed certificate (PEM private key, PEM cert)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def parse_idp_metadata(xml: str, entity_id: str | None = None) -> dict[str, Any]:
    """The IdP's entity id, SSO URL (HTTP-Redirect) and signing certificates.

    Raises :class:`ConfigurationError` when the metadata lacks any of them.
    """
    if len(xml) > MAX_METADATA_BYTES:
        raise ConfigurationError("IdP metadata is too large")
    try:
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(xml, entity_id=entity_id)
    except Exception as exc:  # python3-saml raises plain Exceptions for bad XML
        raise ConfigurationError(f"cannot read IdP metadata: {exc}") from exc
    idp = parsed.get("idp") or {}
    certs: list[str] = []
    multi = idp.get("x509certMulti") or {}
    certs += list(multi.get("signing") or [])
    if idp.get("x509cert"):
        certs.append(idp["x509cert"])
    sso = (idp.get("singleSignOnService") or {}).get("url")
    if not idp.get("entityId") or not sso or not certs:
        raise ConfigurationError("IdP metadata needs an entityID, an HTTP-Redirect "
                                 "SingleSignOnService and a signing certificate")
    return {"idp_entity_id": idp["entityId"], "sso_url": sso,
            "idp_certs": list(dict.fromkeys(certs))}


def fetch_idp_metadata(url: str) -> str:
    """Download IdP metadata over https (http only on loopback)."""
    check_url(url, "metadata URL")
    status, body = request(url)
    if status != 200:
        raise ConfigurationError(f"metadata URL answered {status}")
    return body.decode("utf-8", errors="replace")


class SamlConnector:
    kind = "saml"

    def __init__(self, settings: Mapping[str, Any], secret: str | None, sp: Mapping[str, str]):
        self.settings = dict(settings)
        for name in ("idp_entity_id", "sso_url", "idp_certs", "sp_cert"):
            if not self.settings.get(name):
                raise ConfigurationError(f"SAML connector setting {name} is missing")
        if not secret:
            raise ConfigurationError("SAML connector has no SP private key")
        check_url(self.settings["sso_url"], "IdP SSO URL")
        self.sp_key = secret
        self.entity_id = sp["entity_id"]
        self.acs_url = sp["acs_url"]
        self.issuer = str(self.settings["idp_entity_id"])

    # -- python3-saml plumbing ---------------------------------------------------
    def saml_settings(self) -> dict[str, Any]:
        return {
            "strict": True,
            "debug": False,
            "sp": {
                "entityId": self.entity_id,
                "assertionConsumerService": {"url": self.acs_url,
                                             "binding": Const.BINDING_HTTP_POST},
                "NameIDFormat": Const.NAMEID_UNSPECIFIED,
                "x509cert": self.settings["sp_cert"],
                "privateKey": self.sp_key,
            },
            "idp": {
                "entityId": self.issuer,
                "singleSignOnService": {"url": self.settings["sso_url"],
                                        "binding": Const.BINDING_HTTP_REDIRECT},
                "x509certMulti": {"signing": list(self.settings["idp_certs"])},
            },
            "security": {
                "authnRequestsSigned": True,
                "wantAssertionsSigned": True,
                "wantMessagesSigned": bool(self.settings.get("want_messages_signed", False)),
                "wantNameId": True,
                "wantAttributeStatement": False,
                "signatureAlgorithm": Const.RSA_SHA256,
                "digestAlgorithm": Const.SHA256,
                "rejectDeprecatedAlgorithm": True,
                "rejectUnsolicitedResponsesWithInResponseTo": True,
                "requestedAuthnContext": False,
                "allowRepeatAttributeName": True,
            },
        }

    def _request_data(self, post: Mapping[str, str] | None = None) -> dict[str, Any]:
        parts = urllib.parse.urlsplit(self.acs_url)
        https = parts.scheme == "https"
        return {
            "https": "on" if https else "off",
            "http_host": parts.netloc,
            "script_name": parts.path,
            "get_data": {},
            "post_data": dict(post or {}),
        }

    def sp_metadata(self) -> str:
        """This SP's metadata XML (entity id, ACS, signing certificate)."""
        settings = OneLogin_Saml2_Settings(self.saml_settings(), sp_validation_only=True)
        metadata = settings.get_sp_metadata()
        return metadata.decode() if isinstance(metadata, bytes) else str(metadata)

    # -- the connector interface -----------------------------------------------------
    def start(self, redirect_uri: str, state: str, login_hint: str | None = None,
              force: bool = False) -> StartRequest:
        """A signed AuthnRequest (HTTP-Redirect binding) with ``state`` as RelayState;
        ``force`` sets ``ForceAuthn="true"``."""
        auth = OneLogin_Saml2_Auth(self._request_data(), self.saml_settings())
        url = auth.login(return_to=state, force_authn=force, set_nameid_policy=True)
        if login_hint:
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}{urllib.parse.urlencode({'login_hint': login_hint})}"
        pending: dict[str, Any] = {"request_id": auth.get_last_request_id()}
        if force:
            pending["not_before"] = int(time.time())
        return StartRequest(url=url, pending=pending)

    def callback(
        self,
        params: Mapping[str, str],
        pending: Mapping[str, Any],
        redirect_uri: str,
        first_use: ReplayGuard,
    ) -> UpstreamIdentity:
        """Validate the POSTed SAMLResponse against the pending AuthnRequest."""
        raw = params.get("SAMLResponse") or ""
        if not raw or len(raw) > MAX_RESPONSE_BYTES:
            raise ConnectorError("missing_response", "no SAMLResponse or too large")
        try:
            base64.b64decode(raw, validate=False)
        except ValueError as exc:
            raise ConnectorError("malformed_response", "SAMLResponse is not base64") from exc
        auth = OneLogin_Saml2_Auth(self._request_data({"SAMLResponse": raw}),
                                   self.saml_settings())
        try:
            auth.process_response(request_id=str(pending["request_id"]))
        except (OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError) as exc:
            raise ConnectorError("invalid_response", str(exc)[:300]) from exc
        except Exception as exc:  # malformed XML surfaces as lxml/xmlsec errors
            raise ConnectorError("invalid_response", type(exc).__name__) from exc
        if auth.get_errors() or not auth.is_authenticated():
            reason = auth.get_last_error_reason() or ",".join(auth.get_errors())
            raise ConnectorError("invalid_response", str(reason)[:300])
        assertion_id = auth.get_last_assertion_id()
        not_on_or_after = auth.get_last_assertion_not_on_or_after() or int(time.time()) + 300
        if not assertion_id:
            raise ConnectorError("invalid_response", "assertion without ID")
        ttl = max(60, int(not_on_or_after - time.time()) + 300)
        if not first_use(f"saml:{self.issuer}:{assertion_id}", ttl):
            raise ConnectorError("replay", "assertion already used")
        if pending.get("not_before") is not None:
            self.check_fresh(auth, int(pending["not_before"]))
        return self.identity(auth)

    @staticmethod
    def check_fresh(auth: OneLogin_Saml2_Auth, not_before: int) -> None:
        """After ``ForceAuthn``: the validated assertion's ``AuthnInstant`` must not be
        older than the request (a clock skew of :data:`FRESH_SKEW_SECONDS` allowed)."""
        xml = auth.get_last_response_xml()
        dom = OneLogin_Saml2_XML.to_etree(xml) if xml else None
        nodes = OneLogin_Saml2_XML.query(
            dom, "/samlp:Response/saml:Assertion/saml:AuthnStatement") if dom is not None else []
        instants = [n.get("AuthnInstant") for n in nodes if n.get("AuthnInstant")]
        try:
            when = min(OneLogin_Saml2_Utils.parse_SAML_to_time(i) for i in instants)
        except ValueError:
            when = None
        if when is None or when < not_before - FRESH_SKEW_SECONDS:
            raise ConnectorError("stale_authentication",
                                 "the upstream did not sign the user in anew (AuthnInstant)")

    def identity(self, auth: OneLogin_Saml2_Auth) -> UpstreamIdentity:
        attributes = {k: list(v) for k, v in (auth.get_attributes() or {}).items()}
        subject_attr = self.settings.get("subject_attribute")
        if subject_attr:
            values = attributes.get(subject_attr) or []
            subject = values[0] if values else ""
        else:
            if auth.get_nameid_format() == TRANSIENT:
                raise ConnectorError("transient_nameid", "transient NameID is not a stable key; "
                                     "set subject_attribute")
            subject = auth.get_nameid() or ""
        if not subject or len(subject) > 255:
            raise ConnectorError("invalid_subject", "no usable subject in the assertion")
        email = None
        for name in EMAIL_ATTRIBUTES:
            if attributes.get(name):
                email = attributes[name][0]
                break
        if email is None and auth.get_nameid_format() == Const.NAMEID_EMAIL_ADDRESS:
            email = auth.get_nameid()
        trusted = bool(self.settings.get("trust_email", True)) and isinstance(email, str) and (
            "@" in email)
        claims: dict[str, Any] = dict(attributes)
        claims.update(iss=self.issuer, sub=subject)
        if trusted:
            claims["email"] = email
        return UpstreamIdentity(
            issuer=self.issuer,
            subject=subject,
            claims=claims,
            email=email if trusted else None,
            email_verified=trusted,
            amr=[],
        )
