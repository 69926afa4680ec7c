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


OPTIONS = (
    "name", "nameid_format", "sign_assertion", "sign_response", "require_signed_requests",
    "idp_initiated",
)


def _parsed(metadata: bytes) -> sp_metadata.SpMetadata:
    try:
        return sp_metadata.parse(metadata)
    except MetadataError as exc:
        raise RegistrationError(str(exc)) from exc


def _signing(
    md: sp_metadata.SpMetadata,
    nameid_format: str,
    sign_assertion: bool,
    sign_response: bool,
    require_signed_requests: bool,
) -> bool:
    """The checks every registration and update passes (raises
    :class:`RegistrationError`); returns whether the SP must sign its requests."""
    if nameid_format not in NAMEID_FORMATS:
        raise RegistrationError(
            f"unknown NameID format {nameid_format!r}; one of {', '.join(NAMEID_FORMATS)}"
        )
    if md.want_assertions_signed and not sign_assertion:
        raise RegistrationError("the SP's metadata requires signed assertions")
    if not (sign_assertion or sign_response):
        raise RegistrationError("sign the response, the assertion, or both")
    must_sign = require_signed_requests or md.authn_requests_signed
    if must_sign and not md.signing_certificates:
        raise RegistrationError(
            "the SP must sign its requests but its metadata has no signing certificate"
        )
    return must_sign


def _from_metadata(md: sp_metadata.SpMetadata, metadata: bytes) -> dict[str, Any]:
    """The columns an SP takes from its metadata."""
    return {
        "metadata_xml": metadata.decode("utf-8", "replace"),
        "acs_endpoints": md.acs_endpoints,
        "slo_endpoints": md.slo_endpoints,
        "signing_certificates": md.signing_certificates,
        "encryption_certificates": md.encryption_certificates,
        "encryption_method": md.encryption_method,
        "attributes": claims_for_requested(md.requested_attributes) or list(DEFAULT_CLAIMS),
    }


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
    md = _parsed(metadata)
    assertion_signed = True if sign_assertion is None else sign_assertion
    response_signed = True if sign_response is None else sign_response
    must_sign = _signing(md, nameid_format, assertion_signed, response_signed,
                         require_signed_requests)
    sp = SamlServiceProvider(
        entity_id=md.entity_id,
        name=(name or md.name or md.entity_id)[:200],
        nameid_format=nameid_format,
        sign_assertion=assertion_signed,
        sign_response=response_signed,
        require_signed_requests=must_sign,
        idp_initiated=idp_initiated,
        **_from_metadata(md, metadata),
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


def validate_registration(metadata: bytes, entity_id: str | None = None,
                          **options: Any) -> None:
    """Raise :class:`RegistrationError` when :func:`register` would refuse ``metadata``
    with these ``options`` (its keywords), or when the metadata is not that of
    ``entity_id``; writes nothing (``idp apply`` plans with it)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise RegistrationError(f"unknown option(s) {', '.join(unknown)}")
    md = _parsed(metadata)
    if entity_id is not None and md.entity_id != entity_id:
        raise RegistrationError(f"the metadata is that of {md.entity_id!r}, not {entity_id!r}")
    sign_assertion = options.get("sign_assertion")
    sign_response = options.get("sign_response")
    _signing(md, options.get("nameid_format") or "persistent",
             True if sign_assertion is None else sign_assertion,
             True if sign_response is None else sign_response,
             bool(options.get("require_signed_requests")))


def _changes(
    sp: SamlServiceProvider, metadata: bytes | None, options: dict[str, Any]
) -> dict[str, Any]:
    """The columns that change when ``sp`` takes ``metadata`` (None: keeps its own) and
    the ``options`` given (None: keeps the value); raises :class:`RegistrationError`."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise RegistrationError(f"unknown option(s) {', '.join(unknown)}")
    given = {k: v for k, v in options.items() if v is not None}
    if "name" in given:
        name = str(given["name"]).strip()
        if not name or len(name) > 200:
            raise RegistrationError("name: required, at most 200 characters")
        given["name"] = name
    wanted: dict[str, Any] = {k: getattr(sp, k) for k in OPTIONS}
    wanted.update(given)
    if metadata is not None:
        md = _parsed(metadata)
        if md.entity_id != sp.entity_id:
            raise RegistrationError(
                f"the metadata is that of {md.entity_id!r}, not {sp.entity_id!r}"
            )
        if metadata.decode("utf-8", "replace") != sp.metadata_xml:
            wanted.update(_from_metadata(md, metadata))
    else:
        md = _parsed(sp.metadata_xml.encode("utf-8"))
    wanted["require_signed_requests"] = _signing(
        md, wanted["nameid_format"], bool(wanted["sign_assertion"]),
        bool(wanted["sign_response"]), bool(wanted["require_signed_requests"]),
    )
    return {k: v for k, v in wanted.items() if v != getattr(sp, k)}


def changes(entity_id: str, metadata: bytes | None = None, **options: Any) -> dict[str, Any]:
    """What :func:`update` would change, as ``{column: {"from": old, "to": new}}``
    (the metadata as its ACS and SLO URLs); raises :class:`RegistrationError` (also for
    an unknown ``entity_id``). Writes nothing."""
    sp = saml_repo.by_entity_id(entity_id)
    if sp is None:
        raise RegistrationError(f"no service provider {entity_id!r}")
    out: dict[str, Any] = {}
    for key, value in _changes(sp, metadata, options).items():
        if key == "metadata_xml":
            out["metadata"] = "replaced"
        elif key in ("acs_endpoints", "slo_endpoints"):
            name = key.replace("endpoints", "urls")
            out[name] = {"from": [e["url"] for e in getattr(sp, key) or []],
                         "to": [e["url"] for e in value]}
        elif key in ("signing_certificates", "encryption_certificates"):
            out[key] = {"from": len(getattr(sp, key) or []), "to": len(value)}
        else:
            out[key] = {"from": getattr(sp, key), "to": value}
    return out


def update(
    entity_id: str, metadata: bytes | None = None, *, actor: audit.Actor | str, **options: Any
) -> SamlServiceProvider:
    """Change a registered SP in place: new ``metadata`` (its endpoints, certificates
    and requested attributes; the entity ID must stay) and/or the ``options`` of
    :func:`register` given (None keeps a value), validated like a registration.
    Audited as ``saml_sp.update`` with the names of the changed fields; a rename
    renames its merchant. Raises :class:`RegistrationError`; writes nothing then."""
    sp = saml_repo.by_entity_id(entity_id)
    if sp is None:
        raise RegistrationError(f"no service provider {entity_id!r}")
    changed = _changes(sp, metadata, options)
    if not changed:
        return sp
    event = audit.event(actor, "saml_sp.update", sp.entity_id,
                        {"name": changed.get("name", sp.name), "changed": sorted(changed)})
    with atomic():
        saml_repo.update(sp, changed, event)
        if "name" in changed:
            merchants.stage_rename(sp.merchant_id, changed["name"])
    return sp


def export(sp: SamlServiceProvider) -> dict[str, Any]:
    """The SP as an ``idp apply`` entry (``saml_sps``): entity ID, name, its metadata
    (public; an export re-registers it elsewhere) and every option."""
    return {
        "entity_id": sp.entity_id,
        "name": sp.name,
        "metadata": sp.metadata_xml,
        "nameid_format": sp.nameid_format,
        "sign_assertion": bool(sp.sign_assertion),
        "sign_response": bool(sp.sign_response),
        "require_signed_requests": bool(sp.require_signed_requests),
        "idp_initiated": bool(sp.idp_initiated),
    }


def listing() -> list[SamlServiceProvider]:
    """Every registered SP, by name."""
    return list(saml_repo.listing())


def find(entity_id: str) -> SamlServiceProvider | None:
    """The SP registered under ``entity_id``, or None."""
    return saml_repo.by_entity_id(entity_id)


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
