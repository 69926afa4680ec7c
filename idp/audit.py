"""The audit log: an append-only record of security-relevant changes.

:func:`record` stages the event in the current database transaction, so the event
and the change it describes are committed (or rolled back) together. Details name
what changed (field names, counts), not personal values, so events can be kept
after an account is anonymised (``docs/scim.md``, retention).
"""

from __future__ import annotations

from typing import Any

from flask import g, has_request_context

from idp.store import audit_repo
from idp.store.models import AuditEvent


def record(
    actor: str,
    action: str,
    target: str | None,
    details: dict[str, Any] | None = None,
    commit: bool = False,
) -> AuditEvent:
    """Stage an audit event by ``actor`` (``"scim:<token name>"``, ``"ldap-sync:<unit>"``,
    ``"admin:<email>"``, ...) about ``target``; ``commit=True`` commits it at once.

    Inside a request the event carries the request id, so it can be matched with logs.
    """
    request_id = g.get("request_id") if has_request_context() else None
    event = AuditEvent(
        actor=actor[:200],
        action=action[:100],
        target=target[:200] if target else None,
        details=dict(details or {}),
        request_id=request_id,
    )
    audit_repo.add(event, commit=commit)
    return event
