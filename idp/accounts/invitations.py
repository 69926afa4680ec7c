"""Pending directory records meet their holder: the join step of :mod:`idp.provisioning.ownership`.

A unit's SCIM client may provision any well-formed user, but an address outside the
unit's verified domains gives a *pending* record on a placeholder account that nobody
can sign in to. The holder of the address sees the record on their dashboard once
they have proven the mailbox with an e-mail code in this session, and may join it:

* the record, the unit membership (its roles merged into an existing one), the unit's
  group memberships and the profile values the unit's provisioning set move to the
  holder's own account; the record keeps its SCIM id, so the HR system notices
  nothing but the record being bound;
* the placeholder account is deleted;
* it is refused when the holder's account is already managed by a directory (a SCIM
  record or an LDAP link: one provisioning source per account), when the record is
  deactivated, when the address now lies in a domain another company verified, and
  when HR changed the record after the page was read (all in one transaction: a
  join never overwrites HR's newer change);
* afterwards the unit manages only the record: the person's address stays theirs, and
  HR's deactivation suspends only the unit's access (:mod:`idp.provisioning.service`).

Nothing happens without the holder's click: no unit reaches an account it does not own.
"""

from __future__ import annotations

from dataclasses import dataclass

from idp import audit
from idp.accounts import lifecycle as accounts
from idp.provisioning import ownership
from idp.store import invitations_repo
from idp.store.models import Account, AccountStatus, utcnow

SOURCE = "scim"


@dataclass(frozen=True)
class Invitation:
    """A pending record the holder of its address may join."""

    id: str  # the record's SCIM id
    unit_id: str
    unit_name: str


class JoinRefused(Exception):
    """Why a join cannot happen; ``reason`` is a stable code for the page's message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def open_for(account: Account) -> list[Invitation]:
    """The active pending records asserting this account's own, verified address."""
    if account.email is None or not account.email_verified:
        return []
    return [
        Invitation(id=scim_id, unit_id=unit_id, unit_name=name)
        for scim_id, unit_id, name in invitations_repo.pending_for(account.email)
    ]


def join(account: Account, record_id: str) -> Invitation:
    """Bind the pending record ``record_id`` to ``account`` (see the module
    docstring), in one transaction; :class:`JoinRefused` otherwise. The caller has
    checked that this session proved the mailbox."""
    found = next((i for i in open_for(account) if i.id == record_id), None)
    if found is None or account.email is None:  # open_for needs an address
        raise JoinRefused("gone")
    if ownership.standing(found.unit_id, account.email) is ownership.Standing.FOREIGN:
        raise JoinRefused("gone")  # another company verified the domain meanwhile
    if invitations_repo.managed_by_directory(account.id):
        raise JoinRefused("managed")
    try:
        with invitations_repo.atomic():
            placeholder = invitations_repo.placeholder_of(record_id)
            if placeholder is None or placeholder.status != AccountStatus.ACTIVE:
                raise JoinRefused("gone")
            version = placeholder.version
            _take_values(placeholder, account, found.unit_id)
            if not invitations_repo.rebind(
                placeholder, version, account.id, account.email, found.unit_id, utcnow()
            ):
                raise JoinRefused("gone")
            audit.record(
                audit.account_actor(account.id),
                "account.joined",
                account.id,
                {"unit_id": found.unit_id, "record": record_id},
            )
    except invitations_repo.Conflict:
        raise JoinRefused("managed") from None  # a parallel join gave it a record
    return found


def _take_values(placeholder: Account, account: Account, unit_id: str) -> None:
    """Move what the unit's provisioning owns from the placeholder to the holder,
    through the lifecycle: personal values to the account, the access and its facts
    to the holder's access (:func:`idp.accounts.lifecycle.take_joined_values`)."""
    accounts.take_joined_values(placeholder, account, unit_id, SOURCE)
