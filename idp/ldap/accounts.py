"""Account lifecycle steps the LDAP sync needs, inside the sync's page transaction.

Deactivation blocks sign-in (``status``), ends every session and revokes every
grant (so refresh tokens stop working and introspection says inactive);
reactivation restores sign-in. Each step is audited. Nothing here commits: the
caller's page transaction holds the change and its audit events together.

Statuses are the lifecycle's (:mod:`idp.accounts.lifecycle`), the field-ownership rule is
:mod:`idp.accounts.field_owners`; SCIM's own
deactivation works on SCIM directory records and commits per account, so the
sync's page-batched variant lives here.
"""

from __future__ import annotations

from collections.abc import Callable

from idp import audit
from idp.accounts import lifecycle as accounts
from idp.provisioning import service as provisioning
from idp.store.models import Access, Account

ACTIVE = accounts.Status.ACTIVE
DEACTIVATED = accounts.Status.DEACTIVATED
DELETED = accounts.Status.DELETED  # deprovisioned (anonymised) by SCIM
OWNER = "ldap"


def deactivate(account: Account, actor: audit.Actor, reason: str, unit_id: str) -> None:
    """Block sign-in, end all sessions, revoke all grants of ``account``; audited as
    concerning ``unit_id`` (the directory's unit). The lifecycle's step."""
    accounts.stage_deactivate(account, actor, unit_id, reason)


def reactivate(account: Account, actor: audit.Actor, unit_id: str) -> None:
    """Allow sign-in again for an account the sync deactivated; audited."""
    accounts.stage_reactivate(account, actor, unit_id)


def writable(row: Account | Access | None) -> Callable[[str], bool]:
    """A test of which fields the directory may change on ``row``, an account
    (personal fields) or an access (employer facts), (:func:`idp.provisioning.service.may_write`
    for the source ``ldap``)."""
    owned = provisioning.owners(row)
    return lambda field: provisioning.may_write(OWNER, owned.get(field))
