"""Merchants: one record behind each OIDC client and each SAML service provider.

Consents, sign-ins and grants refer to a merchant by foreign key
(:class:`idp.store.models.Merchant`). A merchant is created together with its
client (:func:`idp.release.clients.register`) or SP (:func:`idp.saml.registry.register`), in
the same transaction, and *retired* (never deleted) when that registration is
deleted: its status becomes ``removed``, its live grants are revoked, and the
employee's sign-ins and consents keep showing its name in the dashboard.

The protocol hot paths never query merchants: the client snapshot
(:class:`idp.release.clients.ClientInfo`) and the SP row carry ``merchant_id``, and the
interaction carries it from the request to the consent and the sign-in record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from idp.store import merchants_repo
from idp.store.models import Merchant, utcnow

OIDC = "oidc"
SAML = "saml"
ACTIVE = merchants_repo.ACTIVE
REMOVED = merchants_repo.REMOVED


@dataclass(frozen=True)
class MerchantName:
    """What the dashboard shows for a merchant."""

    name: str
    removed: bool


def stage(protocol: str, identifier: str, name: str) -> Merchant:
    """Stage a new active merchant for a client or SP being registered; the caller
    commits both together."""
    return merchants_repo.stage(protocol, identifier, name)


def get(merchant_id: str) -> Merchant | None:
    """The merchant, active or removed, or None."""
    return merchants_repo.get(merchant_id)


def of_client(client_id: str) -> Merchant | None:
    """The merchant behind a registered OIDC client (by its public ``client_id``)."""
    if not client_id or len(client_id) > 64:
        return None
    return merchants_repo.of_client(client_id)


def of_service_provider(entity_id: str) -> Merchant | None:
    """The merchant behind a registered SAML SP (by its entity ID)."""
    if not entity_id or len(entity_id) > 500:
        return None
    return merchants_repo.of_service_provider(entity_id)


def names(ids: Iterable[str]) -> dict[str, MerchantName]:
    """Display names by merchant id, one query; removed merchants keep their name."""
    return {
        mid: MerchantName(m.name, m.status == REMOVED)
        for mid, m in merchants_repo.names(ids).items()
    }


def stage_rename(merchant_id: str, name: str) -> None:
    """Stage a merchant's new display name (its client was renamed)."""
    merchants_repo.rename(merchant_id, name)


def stage_retirement(merchant_id: str) -> int:
    """Stage the retirement of a merchant whose client or SP is being deleted (the
    caller deletes it in the same transaction): status ``removed`` and its live
    grants revoked; its sign-ins and consents stay. Returns the grants revoked."""
    return merchants_repo.retire(merchant_id, utcnow())
