"""Consent: which scopes and claims an employee agreed to release to one merchant.

A consent is recorded per (account, merchant) with the scopes and claim names and
the time (:class:`~idp.store.models.Consent`), and audited. Granting adds to what was
granted before, so the consent page is shown again only when a merchant asks for
more than the employee already agreed to (or sends ``prompt=consent``, OpenID
Connect Core 1.0 §3.1.2.1).
"""

from __future__ import annotations

from collections.abc import Iterable

from idp import audit
from idp.store import consent_repo, grants_repo


def granted_scopes(account_id: str, client_id: str) -> set[str]:
    """The scopes ``account_id`` has released to ``client_id`` (empty when none)."""
    row = consent_repo.get(account_id, client_id)
    return set(row.scopes or []) if row is not None else set()


def granted_claims(account_id: str, client_id: str) -> set[str]:
    """The claim names ``account_id`` has released to ``client_id``."""
    row = consent_repo.get(account_id, client_id)
    return set(row.claims or []) if row is not None else set()


def covers(
    account_id: str, client_id: str, scopes: Iterable[str], claims: Iterable[str] = ()
) -> bool:
    """True when earlier consent already includes every one of ``scopes`` and of the
    individually requested ``claims``."""
    row = consent_repo.get(account_id, client_id)
    if row is None:
        return False
    return set(scopes) <= set(row.scopes or []) and set(claims) <= set(row.claims or [])


def grant(account_id: str, client_id: str, scopes: list[str], claims: list[str]) -> None:
    """Record that ``account_id`` releases ``scopes`` and ``claims`` to ``client_id``
    now, in addition to what it released before, with an audit event, in one
    transaction."""
    consent_repo.add(
        account_id,
        client_id,
        list(scopes),
        list(claims),
        audit.event(
            audit.account_actor(account_id),
            "consent.grant",
            client_id,
            {"scopes": list(scopes), "claims": list(claims)},
        ),
    )


def revoke(account_id: str, client_id: str) -> bool:
    """Withdraw every consent of ``account_id`` for ``client_id`` (audited); True when
    there was one. The merchant's tokens of this account are revoked in the same
    transaction (refresh tokens stop, access tokens turn inactive) and the next
    sign-in at that merchant asks again."""
    grants_repo.revoke_for_client(account_id, client_id, commit=False)
    return consent_repo.remove(
        account_id,
        client_id,
        audit.event(audit.account_actor(account_id), "consent.revoke", client_id, {}),
    )
