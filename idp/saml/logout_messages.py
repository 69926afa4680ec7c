"""Single-logout messages (saml-core 3.7): reading inbound ``LogoutRequest`` /
``LogoutResponse`` and building the ones the IdP sends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from idp.saml import xmlsafe
from idp.saml.assertion import Subject, name_id_element, new_id
from idp.saml.constants import NS_SAML, NS_SAMLP, STATUS_SUCCESS
from idp.saml.messages import Inbound
from idp.saml.xmlsafe import MalformedMessage

MAX_AGE = timedelta(minutes=10)
FUTURE_SKEW = timedelta(minutes=3)
REPLAY_TTL_SECONDS = int((MAX_AGE + FUTURE_SKEW).total_seconds()) + 60
REQUEST_LIFETIME = timedelta(minutes=5)

_SAML = f"{{{NS_SAML}}}"
_SAMLP = f"{{{NS_SAMLP}}}"


@dataclass
class LogoutRequest:
    """Whom an inbound LogoutRequest is about."""

    id: str
    name_id: str
    session_indexes: list[str]


def _check_common(msg: Inbound, slo_url: str, now: datetime) -> None:
    if msg.destination is not None and msg.destination != slo_url:
        raise MalformedMessage("the message is addressed to another Destination")
    if msg.issue_instant < now - MAX_AGE or msg.issue_instant > now + FUTURE_SKEW:
        raise MalformedMessage("the message is too old or from the future (check clocks)")


def read_request(msg: Inbound, slo_url: str, now: datetime) -> LogoutRequest:
    """The NameID and SessionIndexes of a LogoutRequest (saml-core 3.7.1); raises
    :class:`MalformedMessage` when stale, expired or misaddressed. An encrypted
    NameID is not supported (the IdP never issues one)."""
    if msg.kind != "LogoutRequest":
        raise MalformedMessage("expected a LogoutRequest")
    _check_common(msg, slo_url, now)
    not_on_or_after = msg.root.get("NotOnOrAfter")
    if not_on_or_after is not None and xmlsafe.parse_instant(not_on_or_after) <= now:
        raise MalformedMessage("the LogoutRequest has expired")
    name_ids = msg.root.findall(f"{_SAML}NameID")
    if len(name_ids) != 1:
        raise MalformedMessage("the LogoutRequest must name exactly one NameID")
    name_id = xmlsafe.text_of(name_ids[0]) or ""
    indexes = [xmlsafe.text_of(e) or "" for e in msg.root.findall(f"{_SAMLP}SessionIndex")]
    return LogoutRequest(id=msg.id, name_id=name_id, session_indexes=indexes)


def read_response_status(msg: Inbound, slo_url: str, now: datetime) -> tuple[str, str]:
    """(InResponseTo, top-level status code) of a LogoutResponse (saml-core 3.7.2)."""
    if msg.kind != "LogoutResponse":
        raise MalformedMessage("expected a LogoutResponse")
    _check_common(msg, slo_url, now)
    in_response_to = msg.root.get("InResponseTo") or ""
    code = msg.root.find(f"{_SAMLP}Status/{_SAMLP}StatusCode")
    if code is None or not code.get("Value"):
        raise MalformedMessage("the LogoutResponse has no status")
    return in_response_to, str(code.get("Value"))


def build_request(
    *, issuer: str, destination: str, subject: Subject, session_index: str, now: datetime
) -> etree._Element:
    """A LogoutRequest the IdP sends to a session participant."""
    r = etree.Element(
        f"{_SAMLP}LogoutRequest",
        nsmap={"samlp": NS_SAMLP, "saml": NS_SAML},
        ID=new_id(),
        Version="2.0",
        IssueInstant=xmlsafe.format_instant(now),
        Destination=destination,
        NotOnOrAfter=xmlsafe.format_instant(now + REQUEST_LIFETIME),
    )
    etree.SubElement(r, f"{_SAML}Issuer").text = issuer
    name_id_element(r, subject)
    etree.SubElement(r, f"{_SAMLP}SessionIndex").text = session_index
    return r


def build_response(
    *,
    issuer: str,
    destination: str,
    in_response_to: str,
    now: datetime,
    status: str = STATUS_SUCCESS,
    sub_status: str | None = None,
) -> etree._Element:
    """A LogoutResponse to the SP that asked for logout."""
    r = etree.Element(
        f"{_SAMLP}LogoutResponse",
        nsmap={"samlp": NS_SAMLP, "saml": NS_SAML},
        ID=new_id(),
        Version="2.0",
        IssueInstant=xmlsafe.format_instant(now),
        Destination=destination,
        InResponseTo=in_response_to,
    )
    etree.SubElement(r, f"{_SAML}Issuer").text = issuer
    st = etree.SubElement(r, f"{_SAMLP}Status")
    code = etree.SubElement(st, f"{_SAMLP}StatusCode", Value=status)
    if sub_status:
        etree.SubElement(code, f"{_SAMLP}StatusCode", Value=sub_status)
    return r
