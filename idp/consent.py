"""Consent per merchant: which scopes and claims an employee agreed to release.

The protocol side asks :func:`granted_scopes` whether a request is already covered;
the consent page calls :func:`grant` when the employee agrees. A merchant asking for
more than was granted is asked again.
"""

from __future__ import annotations

from idp.store import consent_repo


def granted_scopes(account_id: str, client_id: str) -> set[str]:
    """The scopes ``account_id`` has granted to ``client_id`` (empty when none)."""
    row = consent_repo.get(account_id, client_id)
    return set(row.scopes or []) if row is not None else set()


def grant(account_id: str, client_id: str, scopes: list[str], claims: list[str]) -> None:
    """Record that ``account_id`` agreed to release ``scopes`` (and the claim names
    ``claims``) to ``client_id``; earlier grants to that client are kept."""
    consent_repo.upsert(account_id, client_id, scopes, claims)
