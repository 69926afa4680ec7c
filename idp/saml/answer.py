"""Answering an SP: a signed SAML Response posted to its validated ACS URL, either
with an assertion about the employee or with an error status (saml-core 3.2.2.2).

Everything the answer needs is in ``params`` as the SSO endpoint stored it in the
interaction (never taken from the browser at resume time).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from flask import Response

from idp import audit
from idp.crypto.primitives import random_token
from idp.interaction import impersonation
from idp.release import signins
from idp.release.claims import released_claims
from idp.saml import assertion, idp_metadata
from idp.saml.attributes import SamlAttribute, to_attributes
from idp.saml.constants import NAMEID_EMAIL
from idp.saml.messages import post_value
from idp.saml.post_form import post_form
from idp.saml.subject import authn_context, format_uri, pairwise_id, subject_for
from idp.store import accounts_repo, saml_repo
from idp.store.models import Account, Impersonation, SamlServiceProvider, utcnow
from idp.store.unit_of_work import atomic

log = logging.getLogger("idp.saml")


@dataclass
class Login:
    """The authenticated end-user a success answer is about."""

    account: Account
    auth_time: datetime
    amr: list[str]
    unit_id: str | None
    scopes: list[str]
    session_id_hash: str | None
    # The AuthnContextClassRef to state; None: derived from ``amr`` (subject.authn_context)
    authn_context: str | None = None
    # The items the employee's consent leaves out (idp.release.items)
    withheld: list[str] = field(default_factory=list)


ACT_ATTRIBUTE = "urn:unitgate:act:sub"


def actor_attribute(sp: SamlServiceProvider, row: Impersonation) -> SamlAttribute:
    """The attribute naming the impersonator (the SAML counterpart of RFC 8693
    ``act``): ``urn:unitgate:act:sub`` (friendly name ``act``) with the actor's
    identifier at this SP, computed as the subject's NameID is: the e-mail address
    for SPs that use e-mail NameIDs, else the actor's persistent pairwise id at this
    SP (also for transient NameIDs, so the SP can tell two impersonators apart)."""
    actor = accounts_repo.get(row.actor_account_id)
    if actor is not None and actor.email is not None and format_uri(sp) == NAMEID_EMAIL:
        value = actor.email
    else:
        value = pairwise_id(row.actor_account_id, sp.entity_id)
    return SamlAttribute(ACT_ATTRIBUTE, "act", (value,))


def _post(sp: SamlServiceProvider, acs_url: str, xml: bytes, relay_state: str | None) -> Response:
    fields = {"SAMLResponse": post_value(xml)}
    if relay_state:
        fields["RelayState"] = relay_state
    return post_form(acs_url, fields, title=sp.name, target_name=sp.name)


def error(
    sp: SamlServiceProvider,
    acs_url: str,
    in_response_to: str | None,
    relay_state: str | None,
    status: str,
    sub_status: str | None = None,
    message: str | None = None,
) -> Response:
    """Post a signed Response with an error status (no assertion) to ``acs_url``."""
    response = assertion.build_response(
        issuer=idp_metadata.entity_id(),
        destination=acs_url,
        in_response_to=in_response_to,
        now=utcnow(),
        status=status,
        sub_status=sub_status,
        message=message,
    )
    log.info("saml error answer sp=%s status=%s/%s", sp.entity_id, status, sub_status)
    return _post(sp, acs_url, assertion.serialise(response, idp_metadata.signer()), relay_state)


def success(
    sp: SamlServiceProvider,
    acs_url: str,
    in_response_to: str | None,
    relay_state: str | None,
    login: Login,
) -> Response:
    """Post the signed (and, when the SP publishes an encryption certificate,
    encrypted) assertion about ``login`` to ``acs_url``; record the sign-in and the
    session participation single logout needs."""
    now = utcnow()
    issuer = idp_metadata.entity_id()
    subject = subject_for(sp, login.account, issuer)
    session_index = "_" + random_token(24)
    if login.session_id_hash:
        session_index = saml_repo.remember_participant(
            login.session_id_hash, sp.id, subject.name_id, subject.format, session_index
        )
    claims = released_claims(login.account, login.scopes, login.unit_id, login.withheld)
    attributes = to_attributes(claims, sp.attributes or [])
    acting = impersonation.act_for_session(login.session_id_hash)
    if acting is not None:
        attributes.append(actor_attribute(sp, acting))
    element = assertion.build_assertion(
        issuer=issuer,
        audience=sp.entity_id,
        recipient=acs_url,
        in_response_to=in_response_to,
        subject=subject,
        authn_instant=login.auth_time,
        session_index=session_index,
        authn_context=login.authn_context or authn_context(login.amr),
        attributes=attributes,
        now=now,
    )
    response = assertion.build_response(
        issuer=issuer, destination=acs_url, in_response_to=in_response_to, now=now
    )
    encryption_cert = sp.encryption_certificates[0] if sp.encryption_certificates else None
    xml = assertion.protect(
        response,
        element,
        idp_metadata.signer(),
        sign_assertion=sp.sign_assertion,
        sign_response=sp.sign_response,
        encryption_certificate=encryption_cert,
        encryption_method=sp.encryption_method,
    )
    released = [c for c in (sp.attributes or []) if c in claims]
    if acting is not None:
        with atomic():
            audit.record(
                impersonation.audit_actor(acting), "impersonation.assertion_issued",
                f"account:{acting.target_account_id}",
                {"impersonation_id": acting.id, "sp": sp.entity_id,
                 "act": attributes[-1].values[0]},
                unit_id=acting.unit_id,
            )
    signins.record(login.account.id, sp.merchant_id, login.unit_id, "saml", released)
    return _post(sp, acs_url, xml, relay_state)
