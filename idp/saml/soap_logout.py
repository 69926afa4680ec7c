"""Single Logout over the back channel: the SOAP binding (saml-bindings 3.2).

A session can end without its browser (a block or deactivation, a staff password
reset, an idle or expired session found by the sweeper, another browser's sign-out
of every session). A SAML SP that took part in it can then only be told by a
LogoutRequest sent server to server, and only if its metadata names a
``SingleLogoutService`` with the SOAP binding.
:func:`idp.interaction.rp_logout.session_ending` stages one row of kind ``saml`` in
the back-channel logout queue per such SP (and records in the audit the SPs that
have none); the delivery loop sends it with :func:`soap_request`, registered here as
the ``saml`` sender: a LogoutRequest built and signed afresh at each attempt (new
``ID``, ``IssueInstant`` and ``NotOnOrAfter``, RSA-SHA256 enveloped signature with
the IdP's certificate), naming the NameID, format and SessionIndex the SP was
given, in a SOAP 1.1 envelope. The POST goes through the webhooks' SSRF-checked,
address-pinned client (:mod:`idp.webhooks.targets`; ``IDP_BACKCHANNEL_ALLOW_PRIVATE``
lifts the address checks as for OIDC back-channel URIs); a 2xx answer counts as
delivered, anything else is retried with back-off.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from idp.interaction import rp_logout
from idp.saml import idp_metadata, logout_messages
from idp.saml.assertion import Subject
from idp.saml.constants import NAMEID_PERSISTENT, NAMEID_TRANSIENT
from idp.saml.signatures import sign_xml
from idp.store.models import BackchannelLogout, utcnow

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ACTION = "http://www.oasis-open.org/committees/security"


def logout_request(entry: dict[str, Any], sp_entity_id: str, destination: str) -> etree._Element:
    """The (unsigned) LogoutRequest for one SP's participation ``entry`` (NameID,
    format, SessionIndex), to ``destination``: the browser chain's and the SOAP
    channel's."""
    issuer = idp_metadata.entity_id()
    fmt = entry["format"]
    qualified = fmt in (NAMEID_PERSISTENT, NAMEID_TRANSIENT)
    subject = Subject(entry["name_id"], fmt, issuer if qualified else None,
                      sp_entity_id if qualified else None)
    return logout_messages.build_request(
        issuer=issuer, destination=destination, subject=subject,
        session_index=entry["session_index"], now=utcnow(),
    )


def soap_request(row: BackchannelLogout) -> tuple[dict[str, str], str]:
    """Headers and body of one attempt: the signed LogoutRequest in a SOAP envelope."""
    claims = dict(row.claims)
    signed = sign_xml(logout_request(claims, str(claims["entity_id"]), row.url),
                      idp_metadata.signer())
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap11": SOAP_ENV})
    etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body").append(signed)
    body = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8").decode()
    return {"content-type": "text/xml; charset=utf-8", "soapaction": f'"{SOAP_ACTION}"'}, body


rp_logout.SENDERS["saml"] = soap_request
