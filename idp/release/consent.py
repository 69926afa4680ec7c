"""Consent: which scopes and claims an employee agreed to release to one merchant.

A consent is recorded per (account, merchant) with the scopes and claim names and
the time (:class:`~idp.store.models.Consent`), and audited. Granting adds to what
was granted before, so the consent page is shown again only when a merchant asks
for more than the employee already agreed to (or sends ``prompt=consent``, OpenID
Connect Core 1.0 §3.1.2.1).

Per item (:mod:`idp.release.items`): the consent also keeps the optional items the
employee left out (``Consent.withheld``); the consent check reads them with the
consent row (:func:`covered`, no second query) and carries them to the code, the
grant and the SAML answer. :func:`choose` changes them from the dashboard, for the
consent and the live grants alike.

The merchant is the record behind the OIDC client or SAML SP (:mod:`idp.release.merchants`),
not its protocol identifier: a consent given to an SP does not pass to a later
registration of the same entity ID.
"""

from __future__ import annotations

from collections.abc import Iterable

from idp import audit
from idp.accounts import accesses
from idp.release import clients, items, merchants
from idp.store import consent_repo, grants_repo
from idp.store.models import Consent
from idp.store.unit_of_work import Conflict, atomic
from idp.webhooks import emit


def _announce(event_type: str, account_id: str, merchant_id: str, **extra: object) -> None:
    """Stage the consent's webhook event for every unit the account has an access
    to (a consent is the employee's own, not one unit's)."""
    for unit_id in sorted({row.unit_id for row in accesses.of_account(account_id)}):
        emit(unit_id=unit_id, event_type=event_type, data={
            "account_id": account_id, "unit_id": unit_id, "merchant_id": merchant_id,
            **extra})


def granted_scopes(account_id: str, merchant_id: str) -> set[str]:
    """The scopes ``account_id`` has released to the merchant (empty when none)."""
    row = consent_repo.get(account_id, merchant_id)
    return set(row.scopes or []) if row is not None else set()


def granted_claims(account_id: str, merchant_id: str) -> set[str]:
    """The claim names ``account_id`` has released to the merchant."""
    row = consent_repo.get(account_id, merchant_id)
    return set(row.claims or []) if row is not None else set()


def current(account_id: str, merchant_id: str) -> Consent | None:
    """The consent of ``account_id`` for the merchant (one read), or None."""
    return consent_repo.get(account_id, merchant_id) if merchant_id else None


def covered(
    account_id: str, merchant_id: str, scopes: Iterable[str], claims: Iterable[str] = ()
) -> list[str] | None:
    """The items the employee left out when earlier consent already includes every one
    of ``scopes`` and of the individually requested ``claims``; None when it does not
    (one read of the consent row)."""
    row = current(account_id, merchant_id)
    if row is None:
        return None
    if set(scopes) <= set(row.scopes or []) and set(claims) <= set(row.claims or []):
        return list(row.withheld or [])
    return None


def covers(
    account_id: str, merchant_id: str, scopes: Iterable[str], claims: Iterable[str] = ()
) -> bool:
    """True when earlier consent already includes every one of ``scopes`` and of the
    individually requested ``claims``."""
    return covered(account_id, merchant_id, scopes, claims) is not None


def required_items(merchant_id: str) -> frozenset[str]:
    """The items the merchant requires (:func:`idp.release.items.required`): an OIDC
    client's ``required_claims``, else (a SAML SP, a client without a declaration)
    the default."""
    merchant = merchants.get(merchant_id) if merchant_id else None
    info = clients.lookup(merchant.identifier) if merchant and merchant.protocol == "oidc" else None
    return items.required(info.required_claims if info is not None else None)


def grant(
    account_id: str, merchant_id: str, scopes: list[str], claims: list[str],
    offered: Iterable[str] = (), shared: Iterable[str] | None = None,
) -> list[str]:
    """Record that ``account_id`` releases ``scopes`` and ``claims`` to the merchant
    now, in addition to what it released before, with an audit event (target: the
    merchant id), in one transaction. Of the ``offered`` optional items, those not
    ``shared`` are left out from now on (``shared`` None: all of them shared); items
    not offered keep their earlier choice. Returns the items left out. A parallel
    first consent of the same pair is retried once as an update (merging again), so
    the unique (account, merchant) row never fails a request."""
    offered = list(offered)
    chosen = offered if shared is None else list(shared)
    needed = required_items(merchant_id)
    for _attempt in range(2):
        try:
            with atomic():
                row = consent_repo.get(account_id, merchant_id)
                withheld = items.withheld_after(
                    list(row.withheld or []) if row is not None else [], offered, chosen,
                    needed,
                )
                event = audit.event(  # a fresh event each try (a rolled-back one keeps its seq)
                    audit.account_actor(account_id),
                    "consent.grant",
                    merchant_id,
                    {"scopes": list(scopes), "claims": list(claims), "withheld": withheld},
                )
                consent_repo.merge(
                    account_id, merchant_id, list(scopes), list(claims), event, withheld
                )
                grants_repo.set_withheld(account_id, merchant_id, withheld)
                _announce("consent.granted", account_id, merchant_id, scopes=sorted(scopes))
            return withheld
        except Conflict:
            continue
    raise RuntimeError("consent row could not be written")


def choose(
    account_id: str, merchant_id: str, offered: Iterable[str], shared: Iterable[str]
) -> bool:
    """The dashboard's per-merchant choice: of the ``offered`` items, leave out those
    not ``shared`` (a required item is never left out), for the consent and the
    merchant's live grants of the account, audited. False when there is no consent."""
    row = current(account_id, merchant_id)
    if row is None:
        return False
    needed = required_items(merchant_id)
    optional = [i for i in offered if i not in needed]
    withheld = items.withheld_after(list(row.withheld or []), optional, list(shared), needed)
    if withheld == list(row.withheld or []):
        return True
    with atomic():
        consent_repo.set_withheld(row, withheld, audit.event(
            audit.account_actor(account_id), "consent.choose", merchant_id,
            {"withheld": withheld},
        ))
        grants_repo.set_withheld(account_id, merchant_id, withheld)
    return True


def revoke(account_id: str, merchant_id: str) -> bool:
    """Withdraw every consent of ``account_id`` for the merchant (audited); True when
    there was one. The merchant's tokens of this account are revoked in the same
    transaction (refresh tokens stop, access tokens turn inactive) and the next
    sign-in at that merchant asks again."""
    with atomic():
        grants_repo.revoke_for_merchant(account_id, merchant_id)
        removed = consent_repo.remove(
            account_id,
            merchant_id,
            audit.event(audit.account_actor(account_id), "consent.revoke", merchant_id, {}),
        )
        if removed:
            _announce("consent.withdrawn", account_id, merchant_id)
        return removed
