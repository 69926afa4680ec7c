"""Registering SAML service providers from their metadata (what ``idp saml sps``
does), with the rules that keep a registration safe:

* ACS and SLO URLs come only from the metadata and must be https (http only on
  loopback, for development).
* At least one of response and assertion is signed (RSA-SHA256); an SP whose metadata
  says ``WantAssertionsSigned="true"`` always gets a signed assertion.
* An SP that must sign its requests (``--require-signed-requests`` or
  ``AuthnRequestsSigned="true"``) needs a signing certificate in its metadata.
* Released attributes default to every mapped claim, or to the ones the SP's
  ``RequestedAttribute`` elements name.
"""

from __future__ import annotations

from typing import Any

from idp import audit
from idp.release import merchants
from idp.saml import sp_metadata
from idp.saml.attributes import DEFAULT_CLAIMS, claims_for_requested
from idp.saml.constants import NAMEID_FORMATS
from idp.saml.sp_metadata import MetadataError
from idp.store import saml_repo
from idp.store.models import SamlServiceProvider
from idp.store.saml_repo import DuplicateServiceProvider
from idp.store.unit_of_work import Conflict, atomic


class RegistrationError(ValueError):
    """The SP cannot be registered; the message says why."""


def load_metadata(source: str) -> bytes:
    """Metadata bytes from an http(s) URL or a file path."""
    if source.startswith(("https://", "http://")):
        try:
            return sp_metadata.fetch(source)
        except MetadataError as exc:
            raise RegistrationError(str(exc)) from exc
    try:
        with open(source, "rb") as fh:
            data = fh.read(sp_metadata.MAX_METADATA_BYTES + 1)
    except OSError as exc:
        raise RegistrationError(f"cannot read {source}: {exc.strerror}") from exc
    if len(data) > sp_metadata.MAX_METADATA_BYTES:
        raise RegistrationError("the metadata is larger than 1 MiB")
    return data


def register(
    metadata: bytes,
    *,
    name: str | None = None,
    nameid_format: str = "persistent",
    sign_assertion: bool | None = None,
    sign_response: bool | None = None,
    require_signed_requests: bool = False,
    idp_initiated: bool = False,
    actor: audit.Actor | str,
) -> SamlServiceProvider:
    """Store a new SP from ``metadata``, audited ``saml_sp.add`` by ``actor`` in the
    same transaction; raises :class:`RegistrationError`."""
    try:
        md = sp_metadata.parse(metadata)
    except MetadataError as exc:
        raise RegistrationError(str(exc)) from exc
    if nameid_format not in NAMEID_FORMATS:
        raise RegistrationError(f"unknown NameID format {nameid_format!r}")
    if md.want_assertions_signed and sign_assertion is False:
        raise RegistrationError("the SP's metadata requires signed assertions")
    assertion_signed = True if sign_assertion is None else sign_assertion
    response_signed = True if sign_response is None else sign_response
    if not (assertion_signed or response_signed):
        raise RegistrationError("sign the response, the assertion, or both")
    must_sign = require_signed_requests or md.authn_requests_signed
    if must_sign and not md.signing_certificates:
        raise RegistrationError(
            "the SP must sign its requests but its metadata has no signing certificate"
        )
    requested = claims_for_requested(md.requested_attributes)
    sp = SamlServiceProvider(
        entity_id=md.entity_id,
        name=(name or md.name or md.entity_id)[:200],
        metadata_xml=metadata.decode("utf-8", "replace"),
        acs_endpoints=md.acs_endpoints,
        slo_endpoints=md.slo_endpoints,
        signing_certificates=md.signing_certificates,
        encryption_certificates=md.encryption_certificates,
        encryption_method=md.encryption_method,
        nameid_format=nameid_format,
        sign_assertion=assertion_signed,
        sign_response=response_signed,
        require_signed_requests=must_sign,
        idp_initiated=idp_initiated,
        attributes=requested or list(DEFAULT_CLAIMS),
    )
    event = audit.event(actor, "saml_sp.add", md.entity_id, {"name": sp.name})
    try:
        with atomic():  # the SP, its merchant and the event together
            sp.merchant_id = merchants.stage(merchants.SAML, sp.entity_id, sp.name).id
            saml_repo.add(sp, event)
    except (DuplicateServiceProvider, Conflict) as exc:  # Conflict: a parallel twin won
        raise RegistrationError(
            f"{md.entity_id} is already registered; delete it first to replace it"
        ) from exc
    return sp


def unregister(ref: str, actor: audit.Actor | str) -> dict[str, Any] | None:
    """Delete the SP with internal id or entity ID ``ref`` (audited ``saml_sp.delete``
    by ``actor``) and return what it was
    (:func:`describe`); None if unknown. Its merchant is retired in the same
    transaction (:func:`idp.release.merchants.stage_retirement`): the employees' sign-ins and
    consents keep it; an SP registered later under the same entity ID gets a new
    merchant and none of the old one's consents."""
    sp = saml_repo.find(ref)
    if sp is None:
        return None
    facts = describe(sp)
    event = audit.event(actor, "saml_sp.delete", sp.entity_id, {"name": sp.name})
    merchant_id = sp.merchant_id  # read before the bulk delete marks the row deleted
    with atomic():
        if not saml_repo.remove(sp.id, event):
            return None
        merchants.stage_retirement(merchant_id)
    return facts


def describe(sp: SamlServiceProvider) -> dict[str, Any]:
    """The public facts about one SP (certificates as counts, never their text)."""
    return {
        "id": sp.id,
        "entity_id": sp.entity_id,
        "name": sp.name,
        "acs_urls": [e["url"] for e in sp.acs_endpoints or []],
        "slo_urls": [e["url"] for e in sp.slo_endpoints or []],
        "nameid_format": sp.nameid_format,
        "sign_assertion": sp.sign_assertion,
        "sign_response": sp.sign_response,
        "encrypt_assertion": bool(sp.encryption_certificates),
        "encryption_method": sp.encryption_method,
        "require_signed_requests": sp.require_signed_requests,
        "signing_certificates": len(sp.signing_certificates or []),
        "idp_initiated": sp.idp_initiated,
        "attributes": list(sp.attributes or []),
        "created": sp.created_at.isoformat() if sp.created_at else None,
    }
