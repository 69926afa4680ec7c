"""Reading an authenticated ``samlp:AuthnRequest`` (saml-core 3.4.1) against the
registered SP: which ACS URL to answer, and what the SP asked for.

The ACS URL must be one of the SP's metadata (by URL or index), else the request is
refused with an error page and nothing is posted anywhere (SECURITY.md, SAML "IdP
side"). Requests older than :data:`MAX_AGE` are refused, so the replay cache only
needs to remember IDs that long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from idp.saml import requested_context, xmlsafe
from idp.saml.constants import BINDING_POST, NAMEID_UNSPECIFIED, NS_SAML, NS_SAMLP
from idp.saml.messages import Inbound
from idp.saml.xmlsafe import MalformedMessage
from idp.store.models import SamlServiceProvider

MAX_AGE = timedelta(minutes=10)
FUTURE_SKEW = timedelta(minutes=3)
REPLAY_TTL_SECONDS = int((MAX_AGE + FUTURE_SKEW).total_seconds()) + 60


@dataclass
class AuthnRequest:
    """What an authenticated AuthnRequest asks for, its ACS URL already validated."""

    id: str
    acs_url: str
    relay_state: str | None
    force_authn: bool
    is_passive: bool
    nameid_format: str | None
    has_subject: bool
    binding: str
    requested_context: requested_context.Requested | None = None  # saml-core 3.3.2.2.1


def _acs(root: Any, sp: SamlServiceProvider) -> str:
    url = root.get("AssertionConsumerServiceURL")
    index = root.get("AssertionConsumerServiceIndex")
    binding = root.get("ProtocolBinding")
    endpoints = list(sp.acs_endpoints or [])
    if url is not None and index is not None:
        raise MalformedMessage("AssertionConsumerServiceURL and Index are mutually exclusive")
    if binding is not None and binding != BINDING_POST:
        raise MalformedMessage("only the HTTP-POST binding is supported for responses")
    if url is not None:
        if any(e["url"] == url for e in endpoints):
            return url
        raise MalformedMessage(
            "the AssertionConsumerServiceURL is not registered for this service provider"
        )
    if index is not None:
        for e in endpoints:
            if e.get("index") is not None and str(e["index"]) == index.strip():
                return str(e["url"])
        raise MalformedMessage("the AssertionConsumerServiceIndex is not registered")
    return default_acs(sp)


def default_acs(sp: SamlServiceProvider) -> str:
    """The SP's default ACS URL (saml-metadata 2.2.3): the one marked ``isDefault``,
    else the lowest index, else the first."""
    endpoints = list(sp.acs_endpoints or [])
    if not endpoints:
        raise MalformedMessage("this service provider has no ACS URL")
    default = [e for e in endpoints if e.get("default")]
    if default:
        return str(default[0]["url"])
    indexed = [e for e in endpoints if e.get("index") is not None]
    chosen = min(indexed, key=lambda e: e["index"]) if indexed else endpoints[0]
    return str(chosen["url"])


def read(msg: Inbound, sp: SamlServiceProvider, sso_url: str, now: datetime) -> AuthnRequest:
    """The request's parameters; raises :class:`MalformedMessage` when it is not an
    AuthnRequest for this IdP, is stale, names an ACS the SP did not register, or has
    a malformed RequestedAuthnContext."""
    if msg.kind != "AuthnRequest":
        raise MalformedMessage("expected an AuthnRequest")
    if msg.destination is not None and msg.destination != sso_url:
        raise MalformedMessage("the request is addressed to another Destination")
    if msg.issue_instant < now - MAX_AGE or msg.issue_instant > now + FUTURE_SKEW:
        raise MalformedMessage("the request is too old or from the future (check clocks)")
    root = msg.root
    policy = root.find(f"{{{NS_SAMLP}}}NameIDPolicy")
    fmt = policy.get("Format") if policy is not None else None
    return AuthnRequest(
        id=msg.id,
        acs_url=_acs(root, sp),
        relay_state=msg.relay_state,
        force_authn=xmlsafe.parse_bool(root.get("ForceAuthn")),
        is_passive=xmlsafe.parse_bool(root.get("IsPassive")),
        nameid_format=None if fmt in (None, "", NAMEID_UNSPECIFIED) else fmt,
        has_subject=root.find(f"{{{NS_SAML}}}Subject") is not None,
        binding=msg.binding,
        requested_context=requested_context.read(root),
    )
