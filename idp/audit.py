"""The audit log: an append-only record of security-relevant changes.

:func:`record` stages the event in the current database transaction, so the event
and the change it describes are committed (or rolled back) together; ``commit=True``
writes it at once. :func:`event` builds an unsaved event for repositories that add
it to their own transaction. Details name what changed (field names, counts), not
personal values, so events can be kept after an account is anonymised
(``docs/scim.md``, retention). Inside a request an event carries the request id that
the error pages and the log show, so an operator can join the three.

Actors are strings such as ``account:<id>`` (:func:`account_actor`), ``admin``,
``scim:<token name>``, ``ldap-sync:<unit>`` or ``system``.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context

from idp.store import audit_repo
from idp.store.models import AuditEvent


def event(
    actor: str, action: str, target: str | None, details: dict[str, Any] | None = None
) -> AuditEvent:
    """An unsaved audit event by ``actor`` about ``target``, with the current request
    id when in a request."""
    request_id: str | None = None
    if has_request_context():
        from idp.errors import request_id as current_request_id

        request_id = current_request_id()
    return AuditEvent(
        actor=actor[:200],
        action=action[:100],
        target=target[:200] if target else None,
        details=dict(details or {}),
        request_id=request_id,
    )


def record(
    actor: str,
    action: str,
    target: str | None,
    details: dict[str, Any] | None = None,
    commit: bool = False,
) -> AuditEvent:
    """Stage an audit event by ``actor`` about ``target`` in the current transaction
    (committed or rolled back with the caller's change); ``commit=True`` commits it
    at once."""
    row = event(actor, action, target, details)
    audit_repo.add(row, commit=commit)
    return row


def account_actor(account_id: str) -> str:
    """The actor string of an employee acting on their own behalf."""
    return f"account:{account_id}"
