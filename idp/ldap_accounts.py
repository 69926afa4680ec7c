"""Account lifecycle steps the LDAP sync needs, inside the sync's page transaction.

Deactivation blocks sign-in (``status``), ends every session and revokes every
grant (so refresh tokens stop working and introspection says inactive);
reactivation restores sign-in. Each step is audited. Nothing here commits: the
caller's page transaction holds the change and its audit events together.

Statuses and the field-ownership rule are :mod:`idp.provisioning`'s; its own
deactivation works on SCIM directory records and commits per account, so the
sync's page-batched variant lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from idp import audit, provisioning
from idp.field_owners import is_fact
from idp.store import grants_repo, sessions_repo
from idp.store.models import Access, Account

ACTIVE = provisioning.ACTIVE
DEACTIVATED = provisioning.DEACTIVATED
DELETED = provisioning.DELETED  # deprovisioned (anonymised) by SCIM
OWNER = "ldap"


def deactivate(account: Account, actor: audit.Actor, reason: str, unit_id: str) -> None:
    """Block sign-in, end all sessions, revoke all grants of ``account``; audited as
    concerning ``unit_id`` (the directory's unit)."""
    account.status = DEACTIVATED
    account.version = (account.version or 1) + 1
    ended = sessions_repo.remove_for_account(account.id, commit=False)
    revoked = grants_repo.revoke_for_account(account.id, commit=False)
    audit.record(
        actor,
        "account.deactivated",
        account.id,
        {"reason": reason, "sessions_ended": ended, "grants_revoked": revoked},
        unit_id=unit_id,
    )


def reactivate(account: Account, actor: audit.Actor, unit_id: str) -> None:
    """Allow sign-in again for an account the sync deactivated; audited."""
    account.status = ACTIVE
    account.version = (account.version or 1) + 1
    audit.record(actor, "account.reactivated", account.id, unit_id=unit_id)


def claim_fields(account: Account, access: Access | None, values: dict[str, Any]) -> None:
    """Record field ownership as ``idp.provisioning`` defines it: LDAP owns each field
    it fills; a field the directory clears goes back to the employee. Owners of
    personal fields are kept on the account, of employer facts on the unit's access."""
    _claim(account, {k: v for k, v in values.items() if not is_fact(k)})
    if access is not None:
        _claim(access, {k: v for k, v in values.items() if is_fact(k)})


def _claim(row: Account | Access, values: dict[str, Any]) -> None:
    owners = dict(row.field_owners or {})
    for name, value in values.items():
        if value is None or value == "":
            if owners.get(name) == OWNER:
                del owners[name]
        else:
            owners[name] = OWNER
    if owners != (row.field_owners or {}):
        row.field_owners = owners


def writable(row: Account | Access | None) -> Callable[[str], bool]:
    """A test of which fields the directory may change on ``row``, an account
    (personal fields) or an access (employer facts), (:func:`idp.provisioning.may_write`
    for the source ``ldap``)."""
    owned = provisioning.owners(row)
    return lambda field: provisioning.may_write(OWNER, owned.get(field))
